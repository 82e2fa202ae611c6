"""Hostile run folders and artifacts: a DONE without its files, a swapped config, truncated or
foreign files, a full disk. Each is reported naming the file and the fix, and nothing half-written
is taken for a result."""
import errno
import json
import os
import shutil
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch

import kdlib.runs.store as R
from kdlib.runs.plan import load_grid, student_groups, teacher_configs
from kdlib.runs.execute import run_task
from kdlib.runs.pipeline import read_train_logits
from kdlib.runs.store import ArtifactError, RunStore, run_id
from kdlib.base.io import atomic_write_bytes
from kdlib.train.checkpoints import atomic_torch_save, load_checkpoint_file


TEACHER = {"kind": "teacher", "profile": "smoke", "dataset": "main", "model": "resnet18", "regime": "none"}
STUDENTS = {"kind": "students", "profile": "smoke", "dataset": "main", "teacher_model": "resnet18",
            "teacher_regime": "none", "students": ["lenet"], "regime": "none", "temperature": 20.0, "alpha": 0.5}


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    root = tmp_path_factory.mktemp("runs")
    run_task(TEACHER, runs=root, device="cpu", progress=False, results=None)
    run_task(STUDENTS, runs=root, device="cpu", progress=False, results=None)
    return root


@pytest.fixture
def store(trained, tmp_path):
    root = tmp_path / "runs"
    shutil.copytree(trained, root)
    R._REPORTED.clear()
    return RunStore(root, "smoke", results=None)


def teacher_cfg(seed=0):
    return teacher_configs(load_grid(), "smoke", "main", "resnet18", "none", seeds=[seed])[0]


def student_cfg():
    return student_groups(load_grid(), "smoke", "main", "resnet18", "none", ["lenet"], "none", 20.0, 0.5,
                          seeds=[0])[0][1][0]


@pytest.mark.parametrize("missing", ["predictions.npz", "checkpoint.pt", "train_logits.npz", "metrics.json"])
def test_done_without_an_artifact_is_reported_once_and_retrained(store, missing):
    run = store.run(teacher_cfg())
    assert run.done
    (run.folder / missing).unlink()
    with pytest.warns(UserWarning, match=f"marked DONE but {missing} missing.*trained again"):
        assert not store.run(teacher_cfg()).done
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # reported once per folder, not at every look
        assert not store.run(teacher_cfg()).done
        assert run.id not in {r.id for r in store.runs("teacher")}
    run_task(TEACHER, runs=store.root, device="cpu", progress=False, results=None)
    again = store.run(teacher_cfg())
    assert again.done and (again.folder / missing).is_file()
    assert not list(again.folder.glob("*.tmp"))


def test_truncated_metrics_is_not_finished_and_its_read_names_the_file(store):
    run = store.run(teacher_cfg())
    path = run.folder / "metrics.json"
    path.write_text(path.read_text()[:40])
    with pytest.warns(UserWarning, match="metrics.json unreadable"):
        assert not store.run(teacher_cfg()).done
    with pytest.raises(ArtifactError, match=r"metrics.json is unreadable or truncated.*train it again"):
        run.read_json("metrics.json")
    (run.folder / "history.csv").write_text("epoch,loss\n1,abc\n")
    with pytest.raises(ArtifactError, match="history.csv is not a numeric CSV"):
        run.read_history()
    (run.folder / "predictions.npz").write_bytes(b"PK\x03\x04 truncated")
    with pytest.raises(ArtifactError, match="predictions.npz is unreadable"):
        run.read_predictions()


def test_swapped_config_is_not_reported_under_the_new_config(store):
    run = store.run(teacher_cfg(0))
    other = teacher_cfg(7)
    (run.folder / "config.json").write_text(json.dumps(other))
    with pytest.warns(UserWarning, match=f"config.json hashes to {run_id(other)}, not to the folder's id {run.id}"):
        listed = store.runs("teacher")
    assert all(r.config != other for r in listed)
    assert store.find(run_id(other)) is None and not store.run(other).done
    assert not store.run(teacher_cfg(0)).done
    # retraining the original config restores its own config.json
    run_task(TEACHER, runs=store.root, device="cpu", progress=False, results=None)
    assert json.loads((run.folder / "config.json").read_text()) == teacher_cfg(0)
    assert store.run(teacher_cfg(0)).done


def test_short_or_object_train_logits_are_clear_errors(store):
    run = store.run(teacher_cfg())
    n = len(read_train_logits(run, 100))
    assert n == 100  # smoke: 10 images per class
    run.write_arrays("train_logits.npz", logits=np.zeros((n - 3, 10), np.float32))
    with pytest.raises(ArtifactError, match=r"train_logits.npz: logits of shape \(97, 10\).*short"):
        read_train_logits(run, n)
    np.savez(run.folder / "train_logits.npz", logits=np.array([{"a": 1}] * n, dtype=object))
    with pytest.raises(ArtifactError, match="train_logits.npz is unreadable.*objects rather than numbers"):
        read_train_logits(run, n)
    # the students that need it stop with that error, not a raw one, and leave nothing finished
    shutil.rmtree(store.run(student_cfg()).folder)
    with pytest.raises(ArtifactError, match="train_logits.npz"):
        run_task(STUDENTS, runs=store.root, device="cpu", progress=False, results=None)
    assert not store.run(student_cfg()).done


class Foreign:
    pass


def test_tampered_checkpoint_is_refused_without_torchs_advice(tmp_path):
    path = tmp_path / "checkpoint.pt"
    torch.save({"model": {}, "payload": Foreign()}, path)
    with pytest.raises(ValueError) as err:
        load_checkpoint_file(path)
    msg = str(err.value)
    assert str(path) in msg and "refused" in msg and "train the run again" in msg
    assert "weights_only" not in msg


def test_truncated_and_unreadable_checkpoints_name_the_file(tmp_path, monkeypatch):
    path = tmp_path / "checkpoint.pt"
    torch.save({"model": {"w": torch.zeros(3)}}, path)
    path.write_bytes(path.read_bytes()[:50])
    with pytest.raises(ValueError, match=f"checkpoint {path} is truncated.*train the run again"):
        load_checkpoint_file(path)

    def denied(*a, **k):
        raise PermissionError(errno.EACCES, "Permission denied")

    monkeypatch.setattr(torch, "load", denied)
    with pytest.raises(PermissionError, match=f"cannot read checkpoint {path}.*chmod u\\+r"):
        load_checkpoint_file(path)


def test_full_disk_during_torch_save_names_the_file_and_the_fix(tmp_path, monkeypatch):
    def full(obj, f, *a, **k):
        with open(f, "wb") as fh:
            fh.write(b"partial")
        raise RuntimeError("[enforce fail at inline_container.cc:595] . unexpected pos 4608 vs 4502")

    monkeypatch.setattr(torch, "save", full)
    target = tmp_path / "run" / "checkpoint.pt"
    with pytest.raises(OSError) as err:
        atomic_torch_save({"a": 1}, target)
    assert err.value.errno == errno.ENOSPC
    assert str(target) in str(err.value) and "disk is full" in str(err.value) and "$KDLIB_RUNS" in str(err.value)
    assert "inline_container" not in str(err.value).split("(")[0]
    assert list((tmp_path / "run").iterdir()) == []  # nothing half-written


def test_full_disk_during_an_artifact_write(tmp_path, monkeypatch):
    def full(fd):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(os, "fsync", full)
    with pytest.raises(OSError, match=r"cannot write .*metrics.json: the disk is full.*--runs DIR"):
        atomic_write_bytes(tmp_path / "metrics.json", b"{}")
    assert list(tmp_path.iterdir()) == []


def test_provenance_records_the_profiles_thread_count(store):
    before = torch.get_num_threads()
    prov = store.run(teacher_cfg()).read_json("provenance.json")
    assert prov["threads"]["torch"] == load_grid()["profiles"]["smoke"]["threads"] == 1
    assert torch.get_num_threads() == before  # restored after the task


def test_provenance_records_what_a_cpu_result_depends_on(monkeypatch):
    # results that depend on the processor are recorded, not asserted equal (issue 23)
    from kdlib.runs.provenance import provenance

    monkeypatch.setenv("OPENBLAS_CORETYPE", "Haswell")
    cpu = provenance("cpu", [], {})["cpu"]
    assert cpu["OPENBLAS_CORETYPE"] == "Haswell"
    assert cpu["capability"] == torch.backends.cpu.get_cpu_capability()
    info = Path("/proc/cpuinfo")
    models = [x.split(":", 1)[1].strip() for x in info.read_text().splitlines() if x.startswith("model name")] \
        if info.exists() else []
    if models:
        assert cpu["model"] == models[0]
    monkeypatch.delenv("OPENBLAS_CORETYPE")
    assert "OPENBLAS_CORETYPE" not in provenance("cpu", [], {})["cpu"]
