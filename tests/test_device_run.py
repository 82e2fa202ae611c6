"""device-run: one GPU slice's work, tested end to end on the CPU at smoke size."""
import json
import shutil

import pytest

import kdlib.data.memo as MEMO
from kdlib.runs.device_run import device_run
from kdlib.runs.plan import load_grid
from kdlib.runs.admit import import_records

from conftest import CIFAR_JPEG, CIFAR10H, FASHION

HAVE_CIFAR = (CIFAR_JPEG / "test.tar.gz").is_file() and (CIFAR10H / "cifar10h-probs.npy").is_file()
PROFILE = "cifar-smoke" if HAVE_CIFAR else "smoke"
needs_data = pytest.mark.skipif(not (HAVE_CIFAR or (FASHION / "train-images-idx3-ubyte.gz").is_file()),
                                reason="neither CIFAR-10 nor Fashion-MNIST here")


@needs_data
def test_device_run_end_to_end(tmp_path, monkeypatch):
    if HAVE_CIFAR:
        monkeypatch.setenv("KDLIB_DATA", str(CIFAR_JPEG.parent))
    MEMO.clear_data_memo()
    out = tmp_path / "out"
    seeds = load_grid()["profiles"][PROFILE]["seeds"]  # cifar-smoke: [0, 1]; smoke: [0]
    summary = device_run(PROFILE, seeds, budget=900, out=out, runs=tmp_path / "runs", device="cpu",
                         only=["E1", "E2"], results=None, default_estimate=1.0, log=lambda *_: None)
    files = sorted(p.name for p in out.iterdir())
    assert files == ["log.txt", "records.tar.gz", "summary.json"]
    assert len(files) <= 8 and sum(p.stat().st_size for p in out.iterdir()) < 60 * 2**20
    assert summary["stopped"] is None and {t["seed"] for t in summary["tasks"]} == set(seeds)
    # whole seeds in the book's order: E1's teachers, then E2's students, for seed 0 before seed 1
    names = [(t["seed"], t["task"]) for t in summary["tasks"]]
    assert names == sorted(names, key=lambda x: x[0])
    seed0 = [n for s, n in names if s == 0]
    assert seed0.index("teacher-main-resnet18-none") < seed0.index("students-main-resnet18-none-to-none-a0.5-T20")
    log = (out / "log.txt").read_text()
    assert "train {" in log and "packed" in log
    assert {e for t in summary["tasks"] for e in t["engines"]} == {"plain"}  # auto on a CPU
    assert summary["speed"]["teacher_epoch_s"] > 0 and set(summary["speed"]["seed_s"]) == {str(s) for s in seeds}
    assert "speed: teacher epoch median" in log
    assert "engine plain" in log
    # the archive is what `python -m kdlib import` takes
    report = import_records(out / "records.tar.gz", tmp_path / "results")
    runs = [r for r in report if r["kind"] in ("teacher", "student")]
    assert runs and {r["status"] for r in runs} == {"added"}
    assert len(runs) == sum(len(t["runs"]) for t in summary["tasks"])
    assert json.loads((out / "summary.json").read_text())["records"] == len(runs)
    # a later slice elsewhere: the teachers are records now (no weights). Their students on clean input (E2)
    # train from the records' float16 logits, and the records that taught them travel in the archive; those on
    # augmented input (E4) need the teachers online and are skipped, saying why
    results = tmp_path / "results"
    shutil.rmtree(results / PROFILE / "student")
    later = device_run(PROFILE, [0], budget=900, out=tmp_path / "out2", runs=tmp_path / "runs2", device="cpu",
                       only=["E2", "E4"], results=results, default_estimate=1.0, log=lambda *_: None)
    trained = {t["task"] for t in later["tasks"] if not t["cache_hit"]}
    assert {"students-main-resnet18-flipcrop-to-none-a0.5-T20", "students-main-noteacher-to-flipcrop"} <= trained
    skipped = {s["task"]: s["why"] for s in later["skipped"]}
    assert skipped["students-main-resnet18-none-to-flipcrop-a0.5-T20"].startswith("its input is augmented")
    assert all(n.startswith("students-main-resnet18-none-to-") for n in skipped) and not later["failed"]
    assert not (tmp_path / "runs2" / PROFILE / "teacher").exists()
    again = import_records(tmp_path / "out2" / "records.tar.gz", results)
    students = {r["id"]: r["status"] for r in again if r["kind"] == "student"}
    assert students and set(students.values()) == {"added"}
    assert {r["status"] for r in again if r["kind"] == "teacher"} == {"present"}  # the recorded teachers, unchanged
    MEMO.clear_data_memo()


def test_device_run_stops_before_the_budget(tmp_path):
    summary = device_run("smoke", [0], budget=5, out=tmp_path / "out", runs=tmp_path / "runs", device="cpu",
                         results=None, default_estimate=60.0, log=lambda *_: None)
    assert summary["tasks"] == [] and summary["stopped"].startswith("before teacher-main-resnet18-none seed 0")
    assert (tmp_path / "out" / "log.txt").is_file() and not (tmp_path / "runs").exists()


def test_seeds_outside_the_profile_are_refused(tmp_path):
    with pytest.raises(ValueError, match="not in profile 'smoke'.s seeds"):
        device_run("smoke", [7], budget=60, out=tmp_path / "out", runs=tmp_path / "runs", device="cpu",
                   log=lambda *_: None)
    assert not (tmp_path / "runs").exists()


@needs_data
def test_a_failing_task_is_logged_and_the_rest_still_runs_and_packs(tmp_path, monkeypatch):
    import kdlib.runs.execute as G

    if HAVE_CIFAR:
        monkeypatch.setenv("KDLIB_DATA", str(CIFAR_JPEG.parent))
    MEMO.clear_data_memo()
    real = G.run_task

    def flaky(task, **kw):
        if task.name == "teacher-main-resnet18-flipcrop":
            raise RuntimeError("CUDA error: an illegal memory access was encountered\nmore")
        return real(task, **kw)

    monkeypatch.setattr(G, "run_task", flaky)
    monkeypatch.setenv("KDLIB_ENGINE", "static")  # what device-run --engine static sets: every run takes it
    out = tmp_path / "out"
    summary = device_run(PROFILE, [0], budget=900, out=out, runs=tmp_path / "runs", device="cpu", only=["E1", "E2"],
                         results=None, default_estimate=1.0, log=lambda *_: None)
    assert {e for t in summary["tasks"] for e in t["engines"]} == {"static"}
    assert [f["task"] for f in summary["failed"]] == ["teacher-main-resnet18-flipcrop"]
    assert summary["failed"][0]["why"] == "RuntimeError: CUDA error: an illegal memory access was encountered"
    done = {t["task"] for t in summary["tasks"]}
    # every other task ran (the flip+crop students' task trains its missing teacher first)
    assert "teacher-main-resnet18-none" in done and "students-main-resnet18-none-to-none-a0.5-T20" in done
    assert "FAILED teacher-main-resnet18-flipcrop seed 0" in (out / "log.txt").read_text()
    assert all(t["epoch_seconds"] and all(v > 0 for v in t["epoch_seconds"].values()) for t in summary["tasks"])
    report = import_records(out / "records.tar.gz", tmp_path / "results")
    imported = {r["id"] for r in report if r["kind"] in ("teacher", "student")}
    assert {rid for t in summary["tasks"] for rid in t["runs"]} <= imported
    MEMO.clear_data_memo()


def test_an_interruption_still_packs_what_finished(tmp_path, monkeypatch):
    import kdlib.runs.execute as G

    real, calls = G.run_task, []

    def interrupted(task, **kw):
        calls.append(task.name)
        if len(calls) == 2:
            raise KeyboardInterrupt
        return real(task, **kw)

    if not (FASHION / "train-images-idx3-ubyte.gz").is_file():
        pytest.skip("Fashion-MNIST not installed")
    MEMO.clear_data_memo()
    monkeypatch.setattr(G, "run_task", interrupted)
    out = tmp_path / "out"
    with pytest.raises(KeyboardInterrupt):
        device_run("smoke", [0], budget=900, out=out, runs=tmp_path / "runs", device="cpu", results=None,
                   default_estimate=1.0, log=lambda *_: None)
    assert "stopped by KeyboardInterrupt" in (out / "log.txt").read_text()
    report = import_records(out / "records.tar.gz", tmp_path / "results")
    assert [r["kind"] for r in report if r["kind"] in ("teacher", "student")] == ["teacher"]
    MEMO.clear_data_memo()


def test_the_device_script_leaves_at_most_8_importable_files(tmp_path):
    """The GPU tool returns 8 files from $OUT; a 9th is left behind without an error (it cost a slice once)."""
    import os
    import subprocess
    import sys
    from pathlib import Path

    if not (FASHION / "train-images-idx3-ubyte.gz").is_file():
        pytest.skip("Fashion-MNIST not installed")
    root = Path(__file__).resolve().parents[1]
    out = tmp_path / "out"
    env = dict(os.environ, PY=sys.executable, SCALE="tiny", OUT=str(out), WORK=str(tmp_path / "work"), BENCH="1",
               FILL0="1", LONG="1", BUDGET="300", KDLIB_RUNS=str(tmp_path / "runs"), KDLIB_DATA=str(FASHION.parent))
    proc = subprocess.run(["bash", str(root / "scripts" / "device_check.sh")], env=env, capture_output=True, text=True,
                          timeout=600)
    files = sorted(p.name for p in out.iterdir())
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    assert files == ["bench.json", "log.txt", "long.tar.gz", "records.tar.gz", "summary.json"]
    assert "WARNING" not in proc.stdout
    assert json.loads((out / "bench.json").read_text())["levers"]["measured_peak"]["flop_per_s"] > 0
    assert {r["status"] for r in import_records(out / "records.tar.gz", tmp_path / "res")} == {"added"}
    long = import_records(out / "long.tar.gz", tmp_path / "res")
    assert [r["profile"] for r in long if r["kind"] == "teacher"] == ["smoke"]
    log = (out / "log.txt").read_text()
    assert "== main/log.txt" in log and "long teacher done" in log


def test_the_speed_summary_is_the_targets_figures():
    from kdlib.runs.device_run import speed_summary

    tasks = [
        {"task": "teacher-main-resnet18-none", "seed": 1, "seconds": 20.0, "cache_hit": False,
         "epoch_seconds": {"a": 0.5}},
        {"task": "teacher-main-resnet18-flipcrop", "seed": 1, "seconds": 30.0, "cache_hit": False,
         "epoch_seconds": {"b": 0.7}},
        {"task": "teacher-main-resnet18-mixup", "seed": 2, "seconds": 25.0, "cache_hit": False,
         "epoch_seconds": {"c": 0.9}},
        {"task": "students-main-resnet18-none-to-none-a0.5-T20", "seed": 1, "seconds": 8.0, "cache_hit": False,
         "epoch_seconds": {"d": 0.2, "e": 0.2}},
        {"task": "students-main-resnet18-flipcrop-to-none-a0.5-T20", "seed": 1, "seconds": 12.0, "cache_hit": False,
         "epoch_seconds": {"f": 0.3}},
        {"task": "teacher-main-resnet18-cutmix", "seed": 1, "seconds": 0.1, "cache_hit": True, "epoch_seconds": {}},
    ]
    # medians by hand: teacher epochs [0.5, 0.7, 0.9] -> 0.7; groups [8, 12] -> the upper middle, 12;
    # per seed: 20 + 30 + 8 + 12 = 70 for seed 1 (the cache hit does not count), 25 for seed 2
    assert speed_summary(tasks) == {"teacher_epoch_s": 0.7, "student_group_s": 12.0, "seed_s": {"1": 70.0, "2": 25.0}}
    assert speed_summary([]) == {"teacher_epoch_s": None, "student_group_s": None, "seed_s": {}}


# ---------------------------------------------------------------------------- the order of a slice's work
def _core(task) -> bool:
    return bool({"E1", "E2"} & set(task.experiments))


def test_work_runs_the_core_claims_for_every_seed_first():
    """E1+E2 of seed 0, E1+E2 of seed 1, then E4/E5/E3 of seed 0, of seed 1; within each, teachers first."""
    from kdlib.runs.device_run import work_order
    from kdlib.runs.plan import plan

    grid = load_grid()
    tasks = plan("smoke", grid)
    core = {t.name for t in tasks if _core(t)}
    rest = {t.name for t in tasks if not _core(t)}
    assert core and rest and {e for t in tasks if not _core(t) for e in t.experiments} <= {"E3", "E4", "E5"}
    work = work_order("smoke", grid, [0, 1])
    blocks = [(1, 0, core), (1, 1, core), (2, 0, rest), (2, 1, rest)]
    assert len(work) == sum(len(names) for _, _, names in blocks)
    at = 0
    for phase, seed, names in blocks:
        block = work[at: at + len(names)]
        at += len(names)
        assert {(p, s) for p, s, _ in block} == {(phase, seed)} and {t.name for _, _, t in block} == names
        order = [t.name for _, _, t in block]
        for i, (_, _, t) in enumerate(block):  # a task's teachers, where they run in the same block, run before it
            assert all(order.index(d) < i for d in t.depends if d in order)
    # phase 1 is E1's teachers, then E2's students; phase 2 the book's order: E4, then E5, then E3
    first = [t for p, s, t in work if (p, s) == (1, 0)]
    assert [t.kind for t in first] == sorted((t.kind for t in first), key=lambda k: k != "teacher")
    second = [min(t.experiments, key=["E4", "E5", "E3"].index) for p, s, t in work if (p, s) == (2, 0)]
    assert second == sorted(second, key=["E4", "E5", "E3"].index)
    # the extensions come last, after the paper's experiments of every seed
    ext = work_order("smoke-ext", grid, [0, 1])
    phases = [p for p, _, _ in ext]
    assert phases == sorted(phases) and set(phases) == {1, 2, 3}
    assert {e for p, _, t in ext if p == 3 for e in t.experiments} <= {"E6", "E7", "E8", "E9", "E10", "E11", "E12", "E13"}
    assert [s for p, s, _ in ext if p == 3] == sorted(s for p, s, _ in ext if p == 3)


class _FakeRun:
    record = False

    def __init__(self, rid):
        self.id = rid

    def provenance(self):
        return {"wall_seconds": {"train": 10.0}, "engine": "plain"}

    def read_history(self):
        return [{"seconds": 1.0}]


@pytest.mark.parametrize("into", ["phase 1, seed 1", "phase 2, seed 0"])
def test_a_budget_that_stops_mid_way_leaves_whole_core_seeds(tmp_path, monkeypatch, into):
    """Every task takes 10 s of a fake clock: the budget lets k tasks run, and the slice stops before the next;
    the E1+E2 tasks of every seed before it are all there, and nothing of a later phase ran before them."""
    from types import SimpleNamespace

    import kdlib.runs.device_run as D
    import kdlib.runs.execute as G
    from kdlib.runs.plan import plan

    from conftest import grid_with

    path = grid_with(tmp_path, lambda g: g["profiles"]["smoke"].update(seeds=[0, 1]))
    clock = [0.0]
    monkeypatch.setattr(D, "time", SimpleNamespace(perf_counter=lambda: clock[0]))

    def fake(task, seeds, **kw):
        clock[0] += 10.0
        return [_FakeRun(f"{task.name}/{seeds[0]}")]

    monkeypatch.setattr(G, "run_task", fake)
    core = [t.name for t in plan("smoke", load_grid(path)) if _core(t)]
    k = len(core) + 4 if into == "phase 1, seed 1" else 2 * len(core) + 3
    # reserve 15 s, estimates 10 s: task k runs (10(k-1) + 10 <= budget - 15), task k+1 does not
    summary = D.device_run("smoke", [0, 1], budget=10 * k + 20, out=tmp_path / "out", runs=tmp_path / "runs",
                           device="cpu", results=None, default_estimate=10.0, grid_path=path, log=lambda *_: None)
    ran = [(t["phase"], t["seed"], t["task"]) for t in summary["tasks"]]
    assert len(ran) == k and summary["stopped"].startswith("before ")
    assert f"(phase {into[6]})" in summary["stopped"] and f"seed {into[-1]}" in summary["stopped"]
    assert [n for p, s, n in ran if s == 0 and p == 1] == core  # seed 0's core claims: complete
    if into == "phase 2, seed 0":
        assert [n for p, s, n in ran if s == 1 and p == 1] == core  # seed 1's too, before any E4/E5/E3 run
        assert ran.index(next(r for r in ran if r[0] == 2)) == 2 * len(core)
    else:
        assert not [r for r in ran if r[0] == 2]
    log = (tmp_path / "out" / "log.txt").read_text()
    assert "phase 1 (E1 E2) seed 0 done" in log and "(budget)" in log
