"""Runs survive kill -9 and give the same numbers; a run is locked while it trains; a NaN is
recorded in the run folder."""
import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest
import yaml

import kdlib.runs.pipeline as P
from kdlib.base.paths import GRID_PATH
from kdlib.runs.plan import load_grid, teacher_configs
from kdlib.runs.store import RunLockedError, RunStore
from kdlib.train.recipe import NumericalError

from conftest import REPO


def small_grid(tmp_path, epochs=6):
    grid = yaml.safe_load(GRID_PATH.read_text())
    prof = grid["profiles"]["smoke"]
    prof["datasets"]["main"].update({"subset": 30, "test_subset": 10})
    prof["recipes"]["teacher"].update({"epochs": epochs, "batch_size": 16})
    prof["recipes"]["student"].update({"epochs": epochs, "batch_size": 16})
    prof["models"]["alexnet"] = {"width": 4}
    path = tmp_path / "grid.yaml"
    path.write_text(yaml.safe_dump(grid))
    return path


def run_cli(grid, runs, *extra, wait=True):
    cmd = [sys.executable, "-m", "kdlib", "grid", "--profile", "smoke", "--grid", str(grid), "--runs", str(runs),
           "--device", "cpu", "--no-progress", "--only", "E4", *extra]
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    if wait:
        return subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True, timeout=600)
    return subprocess.Popen(cmd, cwd=REPO, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def metrics_by_id(runs):
    out = {}
    for f in Path(runs).rglob("metrics.json"):
        if (f.parent / "DONE").exists():
            out[f.parent.name] = json.loads(f.read_text())["test"]
    return out


def test_kill_9_at_random_points_then_resume_gives_identical_metrics(tmp_path):
    grid = small_grid(tmp_path)
    ref = run_cli(grid, tmp_path / "ref")
    assert ref.returncode == 0, ref.stderr[-2000:]
    expected = metrics_by_id(tmp_path / "ref")
    assert len(expected) >= 8  # E4: a teacher, 4 distilled and 4 teacher-less students
    rng = np.random.default_rng(0)
    runs = tmp_path / "killed"
    kills = 0
    for delay in sorted(rng.uniform(1.5, 8.0, size=3)):
        proc = run_cli(grid, runs, wait=False)
        time.sleep(delay)
        if proc.poll() is None:
            proc.send_signal(signal.SIGKILL)
            kills += 1
        proc.wait()
    assert kills >= 1
    # no half-written artifact: every file in the store parses (a kill mid-write leaves at most a
    # *.tmp file, which is never read and is swept when the run resumes)
    for f in runs.rglob("*.json"):
        json.loads(f.read_text())
    done = run_cli(grid, runs)
    assert done.returncode == 0, done.stderr[-2000:]
    got = metrics_by_id(runs)
    assert not list(runs.rglob("*.tmp"))
    assert got.keys() == expected.keys()
    for rid in expected:
        for key in ("accuracy", "nll", "ece", "f1"):
            assert got[rid][key] == expected[rid][key], (rid, key)


def test_a_training_run_holds_its_lock(tmp_path):
    grid = load_grid()
    (cfg,) = teacher_configs(grid, "smoke", "main", "lenet", "none")
    store = RunStore(tmp_path, "smoke")
    run = store.run(cfg)
    entered = threading.Event()
    release = threading.Event()

    def hold():
        with run.lock():
            entered.set()
            release.wait(10)

    t = threading.Thread(target=hold)
    t.start()
    entered.wait(5)
    with pytest.raises(RunLockedError, match="being trained by another process"):
        with run.lock(wait=False):
            pass
    release.set()
    t.join()
    P.run_teacher(cfg, store, "cpu", progress=False)  # free again: trains, once
    assert run.done and len(run.read_history()) == cfg["recipe"]["epochs"]


def test_nan_is_recorded_in_the_run_folder(tmp_path, monkeypatch):
    grid = load_grid()
    (cfg,) = teacher_configs(grid, "smoke", "main", "lenet", "none")
    store = RunStore(tmp_path, "smoke")

    def exploding_fit(*a, **k):
        raise NumericalError("teacher: loss is nan at epoch 1, step 3. Likely cause: ...")

    monkeypatch.setattr(P, "fit", exploding_fit)
    with pytest.raises(NumericalError):
        P.run_teacher(cfg, store, "cpu", progress=False)
    run = store.run(cfg)
    failure = json.loads((run.folder / "failure.json").read_text())
    assert "epoch 1, step 3" in failure["message"] and not run.done
