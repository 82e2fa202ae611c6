"""The grid end to end on the smoke profile: run store, cache hits, notebooks, Snakemake DAG."""
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import nbformat
import numpy as np
import pytest
import torch
import yaml

import kdlib.data.memo as MEMO
import kdlib.runs.evaluate as EV
import kdlib.runs.pipeline as P
from kdlib.base.paths import GRID_PATH
from kdlib.runs.plan import load_grid, plan, student_groups, teacher_configs
from kdlib.runs.execute import run_grid, run_task
from kdlib.book.notebooks import NOTEBOOKS, execute
from kdlib.runs.store import RunStore, run_id

from conftest import REPO


@pytest.fixture(scope="module")
def smoke_store(tmp_path_factory):
    root = tmp_path_factory.mktemp("runs")
    run_grid("smoke", runs=root, device="cpu", progress=False)
    return RunStore(root, "smoke")


def test_plan_covers_every_experiment():
    grid = load_grid()
    tasks = plan("smoke", grid)
    names = {t.name for t in tasks}
    assert {"teacher-main-resnet18-none", "teacher-main-resnet18-flipcrop-cutmix",
            "teacher-mnist-alexnet-mixup", "students-main-noteacher-to-none",
            "students-main-resnet18-flipcrop-mixup-to-flipcrop-mixup-a0.5-T20"} <= names
    exps = {e for t in tasks for e in t.experiments}
    assert exps == set(grid["profiles"]["smoke"]["experiments"]) == {"E1", "E2", "E3", "E4", "E5"}
    # the extensions are the smoke-ext profile's: together they plan every experiment of the grid
    ext = plan("smoke-ext", grid)
    assert exps | {e for t in ext for e in t.experiments} == set(grid["experiments"])
    # teachers come before the tasks that depend on them (students; E11's teachers stop at E1's accuracy)
    for tasks_ in (tasks, ext):
        order = [t.name for t in tasks_]
        for t in tasks_:
            for d in t.depends:
                assert order.index(d) < order.index(t.name)
    # E2's students are both archs; E4's no-teacher students cover every student regime
    e2 = [t for t in tasks if "E2" in t.experiments and t.kind == "students"]
    assert all(t.params["students"] == ["lenet", "alexnet"] for t in e2)
    assert len([t for t in tasks if t.name.startswith("students-main-noteacher")]) == 5


def test_smoke_grid_fills_the_store(smoke_store):
    teachers = smoke_store.runs("teacher")
    students = smoke_store.runs("student")
    assert len(teachers) == 8  # 5 ResNet-18 + 3 AlexNet teachers, one seed
    n_students = sum(len(t.params["students"]) for t in plan("smoke") if t.kind == "students")
    assert len(students) == n_students
    for run in teachers + students:
        for name in ("config.json", "history.csv", "metrics.json", "predictions.npz", "checkpoint.pt",
                     "provenance.json", "DONE"):
            assert (run.folder / name).is_file(), (run.folder, name)
        assert run.id == run_id(run.config)
        m = run.read_json("metrics.json")["test"]
        assert 0 <= m["accuracy"] <= 1 and "ece" in m and "discrimination_embedding" in m
        ckpt = torch.load(run.checkpoint, weights_only=True)
        assert {"model", "optimizer", "scheduler", "epoch", "loader", "rng"} <= set(ckpt)
        prov = run.read_json("provenance.json")
        assert prov["datasets"][0]["checksum"] and prov["versions"]["torch"] == torch.__version__
    distilled = [s for s in students if s.config["teacher"]]
    assert all("agreement_with_teacher" in s.read_json("metrics.json")["test"] for s in distilled)


def test_second_run_is_a_cache_hit(smoke_store, monkeypatch):
    monkeypatch.setattr(P, "fit", lambda *a, **k: pytest.fail("trained again instead of a cache hit"))
    run_grid("smoke", runs=smoke_store.root, device="cpu", progress=False)


def test_teacher_in_store_unchanged_by_its_students(smoke_store):
    grid = load_grid()
    (tcfg,) = teacher_configs(grid, "smoke", "main", "resnet18", "none")
    teacher = smoke_store.run(tcfg)
    before = torch.load(teacher.checkpoint, weights_only=True)["model"]
    groups = student_groups(grid, "smoke", "main", "resnet18", "none", ["lenet"], "flipcrop+mixup", 20.0, 0.5)
    extra = [{**c, "recipe": {**c["recipe"], "lr": 0.01}} for c in groups[0][1]]  # a new config: trains now
    P.run_students(extra, smoke_store, device="cpu", progress=False)
    after = torch.load(teacher.checkpoint, weights_only=True)["model"]
    assert all(torch.equal(before[k], after[k]) for k in before)  # weights and BN running stats


def test_cached_teacher_logits_in_store_equal_online(smoke_store):
    grid = load_grid()
    (tcfg,) = teacher_configs(grid, "smoke", "main", "resnet18", "flipcrop")
    run = smoke_store.run(tcfg)
    cached = run.read_arrays("train_logits.npz")["logits"]
    model = EV.load_model(run, "cpu")
    loader = P._train_loader(tcfg, "cpu", shuffle=True, augment="none")
    batch = next(iter(loader))
    with torch.no_grad():
        np.testing.assert_allclose(cached[batch.index.numpy()], model(batch.x).numpy(), rtol=1e-4, atol=1e-4)


def test_wrong_teacher_architecture_is_a_clear_error(smoke_store):
    grid = load_grid()
    (tcfg,) = teacher_configs(grid, "smoke", "main", "resnet18", "none")
    run = smoke_store.run(tcfg)
    wrong = type(run)(run.folder, {**tcfg, "model": {"name": "lenet"}})
    with pytest.raises(ValueError, match="does not fit.*another architecture or class count"):
        EV.load_model(wrong, "cpu")


def test_notebook_parameters_are_honoured_by_papermill(tmp_path, smoke_store):
    out = tmp_path / "t.ipynb"
    execute(NOTEBOOKS / "teacher.py", out, {"profile": "smoke", "model": "resnet18", "regime": "flipcrop+cutout",
                                            "runs": str(smoke_store.root), "device": "cpu"})
    nb = nbformat.read(out, as_version=4)
    injected = [c for c in nb.cells if "injected-parameters" in c.metadata.get("tags", [])]
    assert injected and "flipcrop+cutout" in injected[0].source
    text = "\n".join(o.get("text", "") + json.dumps(o.get("data", {})) for c in nb.cells if c.cell_type == "code"
                     for o in c.get("outputs", []))
    assert "cutout(length=16,n_holes=1)" in text  # the run it reports used the injected regime
    assert any("image/png" in o.get("data", {}) for c in nb.cells for o in c.get("outputs", []))


@pytest.mark.parametrize("params,needle", [({"regim": "none"}, "unknown parameter 'regim'.*'regime'"),
                                           ({"seeds": 3}, "parameter 'seeds'.*must be list")])
def test_bad_notebook_parameters_fail_clearly(tmp_path, params, needle):
    import papermill

    with pytest.raises(papermill.PapermillExecutionError, match=needle):
        execute(NOTEBOOKS / "teacher.py", tmp_path / "bad.ipynb", {"profile": "smoke", **params})
    assert not (tmp_path / "bad.ipynb").exists()  # no half-executed notebook left behind
    assert list(tmp_path.iterdir()) == []


def test_notebook_without_parameters_cell_is_refused(tmp_path):
    src = tmp_path / "nb.py"
    src.write_text((NOTEBOOKS / "teacher.py").read_text().replace(' tags=["parameters", "hide-input"]', ""))
    with pytest.raises(ValueError, match="no cell tagged 'parameters'"):
        execute(src, tmp_path / "out.ipynb", {})


def test_grid_typo_names_the_nearest_key(tmp_path):
    grid = yaml.safe_load(GRID_PATH.read_text())
    grid["experiments"]["E2"]["studnets"] = grid["experiments"]["E2"].pop("students")
    bad = tmp_path / "grid.yaml"
    bad.write_text(yaml.safe_dump(grid))
    with pytest.raises(ValueError, match="unknown key 'studnets'.*did you mean 'students'"):
        load_grid(bad)
    grid["experiments"]["E2"]["students"] = grid["experiments"]["E2"].pop("studnets")
    grid["profiles"]["smoke"]["recipes"]["teacher"]["epochs"] = -2
    bad.write_text(yaml.safe_dump(grid))
    with pytest.raises(ValueError, match="epochs must be an integer >= 1"):
        load_grid(bad)


def test_unknown_profile():
    with pytest.raises(ValueError, match="unknown profile 'huge'.*quick"):
        plan("huge")


def test_read_only_run_store_is_a_clear_error(tmp_path):
    import os

    if os.geteuid() == 0:
        pytest.skip("root ignores file permissions")
    ro = tmp_path / "ro"
    ro.mkdir()
    ro.chmod(0o500)
    with pytest.raises(PermissionError, match="--runs DIR"):
        run_task({"kind": "teacher", "profile": "smoke", "dataset": "main", "model": "lenet", "regime": "none"},
                 runs=ro / "store")


@pytest.mark.skipif(shutil.which("snakemake", path=str(Path(sys.executable).parent)) is None,
                    reason="snakemake not installed")
def test_snakemake_dry_run_builds_the_dag(tmp_path):
    """Both parts: Part II (smoke) trains every task; Part I (paper) reports only the tasks with committed
    records and trains nothing. Run in a scratch working directory, never the checkout's book/."""
    from kdlib.runs.execute import task_status

    exe = Path(sys.executable).parent / "snakemake"
    res = subprocess.run([str(exe), "-n", "--cores", "1", "--snakefile", str(REPO / "Snakefile"), "-d", str(tmp_path),
                          "--config", "part1=paper", "part2=smoke"], cwd=tmp_path,
                         capture_output=True, text=True, timeout=300, env={**os.environ, "KDLIB_RUNS": str(tmp_path)})
    assert res.returncode == 0, res.stderr
    n_part2 = len(plan("smoke"))
    n_part1 = sum(1 for t in plan("paper") if task_status(t, runs=tmp_path)[0])
    assert n_part1 >= 9  # the H200 records: 5 teacher tasks, 4 student tasks
    jobs = {}
    for line in res.stdout.splitlines():
        parts = line.split()
        if len(parts) == 2 and parts[1].isdigit():
            jobs[parts[0]] = int(parts[1])
    assert jobs["teacher"] + jobs["students"] == n_part1 + n_part2, jobs
    assert jobs["chapter"] == 2 * 8 and jobs["audit"] == 1 and jobs["conclusion"] == 1
    assert "--no-train" in res.stdout or "teacher" in res.stdout


def test_snakemake_rejects_a_mistyped_config_key(tmp_path):
    exe = Path(sys.executable).parent / "snakemake"
    res = subprocess.run([str(exe), "-n", "--cores", "1", "--snakefile", str(REPO / "Snakefile"), "-d", str(tmp_path),
                          "--config", "profil=smoke"], cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert res.returncode != 0 and "unknown --config key" in (res.stdout + res.stderr)


from conftest import CIFAR_JPEG, CIFAR10H, needs_cifar, needs_cifar10h  # noqa: E402


@needs_cifar
@needs_cifar10h
def test_cifar_profile_with_human_labels_end_to_end(tmp_path, monkeypatch):
    """The paper profile's code paths at smoke size: CIFAR-10 in original order, CIFAR-10H metrics,
    the chapters' human-label branches."""
    from kdlib.book.notebooks import execute_chapter

    monkeypatch.setenv("KDLIB_DATA", str(CIFAR_JPEG.parent))
    MEMO.clear_data_memo()
    run_grid("cifar-smoke", runs=tmp_path / "runs", device="cpu", progress=False, only=["E1", "E2"], seeds=[0])
    store = RunStore(tmp_path / "runs", "cifar-smoke")
    teacher = store.runs("teacher")[0]
    m = teacher.read_json("metrics.json")["test"]
    assert {"kl_to_human", "class_kl_to_human", "kl_to_human_certain", "n_certain"} <= set(m)
    assert "test_human" in teacher.read_arrays("predictions.npz")
    def outputs(path):
        nb = nbformat.read(path, 4)
        return "\n".join(json.dumps(o) for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", []))

    for chapter in ("results", "dichotomy", "fidelity"):
        out = execute_chapter(chapter, "cifar-smoke", runs=store.root, output=tmp_path / f"{chapter}.ipynb")
        assert "CIFAR-10H is not here" not in outputs(out)
    dich = outputs(tmp_path / "dichotomy.ipynb")
    assert "image/png" in dich and "No embeddings in these runs" not in dich  # full runs keep embeddings
    # five teachers, each with a LeNet and an AlexNet student: one figure of agreement and accuracy (a column
    # per student model), then one predictor-scatter figure per student model
    fid = outputs(tmp_path / "fidelity.ipynb")
    assert "Spearman" in fid and "KL to CIFAR-10H" in fid and fid.count("image/png") == 1 + 2
    MEMO.clear_data_memo()


@pytest.mark.skipif(shutil.which("snakemake", path=str(Path(sys.executable).parent)) is None,
                    reason="snakemake not installed")
def test_snakemake_reruns_exactly_what_a_change_affects(tmp_path):
    """In a fresh checkout: two run reports made for real (logs hold papermill's progress); then a student
    recipe edited in grid.yaml plans only the student report (its run ids, a params value, changed), and an
    edited teacher notebook plans only the teacher report."""
    from conftest import fresh_checkout

    root = fresh_checkout(tmp_path / "clone")
    exe = Path(sys.executable).parent / "snakemake"
    targets = ["book/runs/part2/teacher-main-resnet18-none.ipynb", "book/runs/part2/students-main-noteacher-to-none.ipynb"]
    env = {**os.environ, "KDLIB_RUNS": str(tmp_path / "runs")}

    def snakemake(*args):
        res = subprocess.run([str(exe), *targets, "--cores", "1", *args, "--config", "part1=paper", "part2=smoke",
                              "train=II"], cwd=root, capture_output=True, text=True, timeout=600, env=env)
        assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-3000:]
        return res.stdout + res.stderr

    def planned():
        out = snakemake("-n")
        return sorted(line.split("output:")[1].strip() for line in out.splitlines() if line.strip().startswith("output:"))

    snakemake()
    log = (root / "logs" / "part2" / "teacher-main-resnet18-none.log").read_text()
    assert "Executing" in log and "teacher-main-resnet18-none" in log
    assert planned() == []
    grid = yaml.safe_load((root / "grid.yaml").read_text())
    grid["profiles"]["smoke"]["recipes"]["student"]["lr"] = 0.02
    (root / "grid.yaml").write_text(yaml.safe_dump(grid, sort_keys=False))
    assert planned() == [targets[1]]
    src = root / "notebooks" / "teacher.py"
    src.write_text(src.read_text() + "\n")
    assert planned() == sorted(targets)  # the student report still waits from the grid edit


def test_slurm_profile_is_complete_and_parses(tmp_path):
    """profiles/slurm: the executor, a GPU per run report, runtimes and memory; the README's cluster command
    uses it. Snakemake parses it (with the local executor here: the Slurm plugin lives on the login node)."""
    prof = yaml.safe_load((REPO / "profiles" / "slurm" / "config.yaml").read_text())
    assert prof["executor"] == "slurm"
    assert {"runtime", "mem_mb"} <= set(prof["default-resources"])
    for rule in ("teacher", "students"):
        assert prof["set-resources"][rule]["gpu"] == 1 and {"runtime", "mem_mb"} <= set(prof["set-resources"][rule])
    assert "snakemake --profile profiles/slurm" in (REPO / "README.md").read_text()
    local = tmp_path / "profile"
    local.mkdir()
    # the slurm-* options belong to the executor plugin, which only the login node has (requirements-cluster.txt)
    local_prof = {k: v for k, v in prof.items() if not k.startswith("slurm-")}
    (local / "config.yaml").write_text(yaml.safe_dump({**local_prof, "executor": "local"}))
    res = subprocess.run([str(Path(sys.executable).parent / "snakemake"), "-n", "--profile", str(local),
                          "--snakefile", str(REPO / "Snakefile"), "-d", str(tmp_path), "--config", "part1=paper",
                          "part2=smoke"], cwd=tmp_path, capture_output=True, text=True, timeout=300,
                         env={**os.environ, "KDLIB_RUNS": str(tmp_path)})
    assert res.returncode == 0, res.stderr[-3000:]
    assert f"runtime={prof['set-resources']['teacher']['runtime']}" in res.stdout and "gpu=1" in res.stdout
