"""Every gap the book lists can be filled by the command it prints, or says why not (issue 20, item 2).

A store like Part I's: seed 0 finished elsewhere and kept as committed records (no weights), some of its
students missing, seed 1 not run at all. The book's listing (kdlib.book.fill.fill_plan / fill_commands) is
then *executed*: each printed command is parsed and run with device-run on the CPU, and it must train
exactly the runs listed for it, while the runs listed as not fillable stay missing and are skipped by
device-run for the reason the listing gives."""
import shlex
import shutil

import pytest
import yaml

import kdlib.data.memo as MEMO
from kdlib.runs.device_run import device_run
from kdlib.runs.plan import load_grid, task_configs, plan
from kdlib.runs.admit import import_records
from kdlib.book.fill import NOT_FILLABLE, fill_commands, fill_plan, missing_runs
from kdlib.runs.store import RunStore, run_id

from conftest import CIFAR_JPEG, CIFAR10H

HAVE_CIFAR = (CIFAR_JPEG / "test.tar.gz").is_file() and (CIFAR10H / "cifar10h-probs.npy").is_file()
PROFILE = "cifar-smoke" if HAVE_CIFAR else "smoke"  # cifar-smoke: the paper profile's code paths
EXPERIMENTS = ["E1", "E2", "E4"]  # E2 students learn from cached logits, E4's from the teacher online


def parse(command: str) -> dict:
    """The device-run arguments of a printed command (what a reader would paste)."""
    words = shlex.split(command.split("#")[0])
    assert words[:4] == ["python", "-m", "kdlib", "device-run"], command
    args, key = {}, None
    for w in words[4:]:
        if w.startswith("--"):
            key = w[2:]
            args[key] = []
        else:
            args[key].append(w)
    return args


def config_of(grid, task_name, model, seed):
    task = next(t for t in plan(PROFILE, grid) if t.name == task_name)
    return next(c for c in task_configs(task, grid, [seed]) if c["model"]["name"] == model)


@pytest.fixture()
def partial_store(tmp_path, monkeypatch):
    if HAVE_CIFAR:
        monkeypatch.setenv("KDLIB_DATA", str(CIFAR_JPEG.parent))
    MEMO.clear_data_memo()
    grid = load_grid()
    grid["profiles"][PROFILE]["seeds"] = [0, 1]
    grid["profiles"][PROFILE]["experiments"] = EXPERIMENTS
    grid_path = tmp_path / "grid.yaml"
    grid_path.write_text(yaml.safe_dump(grid, sort_keys=False))
    # seed 0, made "on another machine": its records come back without weights
    device_run(PROFILE, [0], budget=3600, out=tmp_path / "slice0", runs=tmp_path / "elsewhere", device="cpu",
               only=EXPERIMENTS, results=None, grid_path=grid_path, default_estimate=1.0, log=lambda *_: None)
    results = tmp_path / "results"
    report = import_records(tmp_path / "slice0" / "records.tar.gz", results)
    assert {r["status"] for r in report if r["kind"] in ("teacher", "student")} == {"added"}
    # three of seed 0's students were lost: a cached-logit student, an online-teacher student, one with no teacher
    lost = {"cached": config_of(grid, "students-main-resnet18-flipcrop-mixup-to-none-a0.5-T20", "lenet", 0),
            "online": config_of(grid, "students-main-resnet18-none-to-flipcrop-a0.5-T20", "lenet", 0),
            "alone": config_of(grid, "students-main-noteacher-to-flipcrop", "lenet", 0)}
    for cfg in lost.values():
        shutil.rmtree(results / PROFILE / "student" / run_id(cfg))
    yield {"grid": grid, "grid_path": grid_path, "results": results, "runs": tmp_path / "runs", "lost": lost,
           "tmp": tmp_path}
    MEMO.clear_data_memo()


def test_every_listed_command_trains_exactly_the_runs_listed_for_it(partial_store):
    s = partial_store
    grid, lost = s["grid"], s["lost"]
    store = RunStore(s["runs"], PROFILE, results=s["results"])
    rows = fill_plan(store, grid, experiments=EXPERIMENTS)
    by_id = {r["id"]: r for r in rows}
    # seed 1 is missing whole, and all of it is fillable; of seed 0 exactly the lost three are missing
    seed1 = {run_id(c) for t in plan(PROFILE, grid) if set(t.experiments) & set(EXPERIMENTS)
             for c in task_configs(t, grid, [1])}
    assert {i for i, r in by_id.items() if r["seed"] == 1} == seed1
    assert {i for i, r in by_id.items() if r["seed"] == 0} == {run_id(c) for c in lost.values()}
    assert all(r["fillable"] for r in rows if r["seed"] == 1)
    # the student with no teacher, and the one that learns from the record's training-set logits, can be made;
    # the one that needs its teacher online on augmented inputs cannot: the record has no weights
    assert by_id[run_id(lost["alone"])]["fillable"]
    assert by_id[run_id(lost["cached"])]["fillable"]
    online = by_id[run_id(lost["online"])]
    assert not online["fillable"] and online["why"] == NOT_FILLABLE and online["teacher"] == lost["online"]["teacher"]

    commands = fill_commands(rows, PROFILE, gpu=True)
    skipped = []
    assert sorted(i for c in commands for i in c["ids"]) == sorted(r["id"] for r in rows if r["fillable"])
    for k, cmd in enumerate(commands):
        args = parse(cmd["command"])
        assert args["profile"] == [PROFILE]
        summary = device_run(PROFILE, [int(x) for x in args["seeds"]], budget=float(args["budget"][0]) * 10,
                             out=s["tmp"] / f"fill{k}", runs=s["runs"], device="cpu", only=args.get("only"),
                             results=s["results"], grid_path=s["grid_path"], default_estimate=1.0,
                             log=lambda *_: None)
        trained = {rid for t in summary["tasks"] for rid in t["train_seconds"]}
        assert trained == set(cmd["ids"]), cmd["command"]
        assert not summary["failed"] and summary["stopped"] is None
        skipped += [(x["task"], x["seed"]) for x in summary["skipped"]]
    # what is left is what the listing said could not be filled, and device-run skipped it for that reason
    left = fill_plan(RunStore(s["runs"], PROFILE, results=s["results"]), grid, experiments=EXPERIMENTS)
    assert [r["id"] for r in left] == [online["id"]]
    assert skipped == [(online["task"], 0)]
    # the per-task listing of the chapters says the same
    gaps = missing_runs(RunStore(s["runs"], PROFILE, results=s["results"]), grid, gpu=True, experiments=EXPERIMENTS)
    assert [(g["task"], g["fillable"], g["command"]) for g in gaps] == [(online["task"], 0, "-")]
    assert gaps[0]["cannot be filled"].startswith("1 (seed 0): ")
