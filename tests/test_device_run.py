"""device-run: one GPU slice's work, tested end to end on the CPU at smoke size."""
import json

import pytest

import kdlib.pipeline as P
from kdlib.device_run import device_run
from kdlib.grid import load_grid
from kdlib.records import import_records

from conftest import CIFAR_JPEG, CIFAR10H, FASHION

HAVE_CIFAR = (CIFAR_JPEG / "test.tar.gz").is_file() and (CIFAR10H / "cifar10h-probs.npy").is_file()
PROFILE = "cifar-smoke" if HAVE_CIFAR else "smoke"
needs_data = pytest.mark.skipif(not (HAVE_CIFAR or (FASHION / "train-images-idx3-ubyte.gz").is_file()),
                                reason="neither CIFAR-10 nor Fashion-MNIST here")


@needs_data
def test_device_run_end_to_end(tmp_path, monkeypatch):
    if HAVE_CIFAR:
        monkeypatch.setenv("KDLIB_DATA", str(CIFAR_JPEG.parent))
    P.clear_data_memo()
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
    P.clear_data_memo()


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
    import kdlib.grid as G

    if HAVE_CIFAR:
        monkeypatch.setenv("KDLIB_DATA", str(CIFAR_JPEG.parent))
    P.clear_data_memo()
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
    P.clear_data_memo()


def test_an_interruption_still_packs_what_finished(tmp_path, monkeypatch):
    import kdlib.grid as G

    real, calls = G.run_task, []

    def interrupted(task, **kw):
        calls.append(task.name)
        if len(calls) == 2:
            raise KeyboardInterrupt
        return real(task, **kw)

    if not (FASHION / "train-images-idx3-ubyte.gz").is_file():
        pytest.skip("Fashion-MNIST not installed")
    P.clear_data_memo()
    monkeypatch.setattr(G, "run_task", interrupted)
    out = tmp_path / "out"
    with pytest.raises(KeyboardInterrupt):
        device_run("smoke", [0], budget=900, out=out, runs=tmp_path / "runs", device="cpu", results=None,
                   default_estimate=1.0, log=lambda *_: None)
    assert "stopped by KeyboardInterrupt" in (out / "log.txt").read_text()
    report = import_records(out / "records.tar.gz", tmp_path / "results")
    assert [r["kind"] for r in report if r["kind"] in ("teacher", "student")] == ["teacher"]
    P.clear_data_memo()


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
    from kdlib.device_run import speed_summary

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
