"""The catalogue of bad inputs: each gives an error that names the cause and the fix, and
leaves no partial artifact behind. The README's "Errors" table is this list."""
import gzip
import os
import tarfile
from pathlib import Path

import numpy as np
import pytest
import torch

import kdlib.data.datasets as D
import kdlib.data.formats as F
import kdlib.data.human as HUM
import kdlib.data.registry as REG
from kdlib.blocks.augment import build_augmentation
from kdlib.blocks.distill import kd_loss
from kdlib.runs.plan import load_grid, plan
from kdlib.runs.execute import run_task
from kdlib.blocks.models import build_model
from kdlib.book.notebooks import execute_task
from kdlib.runs.store import RunStore
from kdlib.train.recipe import Recipe
from conftest import grid_with


def write_idx_gz(path, arr):
    arr = np.asarray(arr, np.uint8)
    import struct
    with gzip.open(path, "wb") as f:
        f.write(bytes([0, 0, 8, arr.ndim]) + struct.pack(f">{arr.ndim}I", *arr.shape) + arr.tobytes())


def mnist_root(tmp_path, n=20):
    for prefix in ("train", "t10k"):
        write_idx_gz(tmp_path / f"{prefix}-images-idx3-ubyte.gz", np.zeros((n, 28, 28)))
        write_idx_gz(tmp_path / f"{prefix}-labels-idx1-ubyte.gz", np.arange(n) % 10)
    return tmp_path


def corrupt_tar(tmp_path):
    (tmp_path / "test.tar.gz").write_bytes(b"\x1f\x8b\x08\x00 this is not a tarball")
    return tmp_path


CASES = {
    "unknown model": (lambda t: build_model("resnet50"), ValueError, "unknown model 'resnet50'; choose one of"),
    "unknown regime": (lambda t: build_augmentation("randaugment"), ValueError,
                       "unknown augmentation regime 'randaugment'.*choose from"),
    "unknown regime parameter": (lambda t: build_augmentation("cutout(size=4)"), ValueError,
                                 "no parameter.*parameters are"),
    "negative cutout length": (lambda t: build_augmentation("cutout(length=-3)"), ValueError, "length must be"),
    "unknown dataset": (lambda t: D.load_dataset("imagenet", "train"), ValueError, "unknown dataset 'imagenet'"),
    "unknown split": (lambda t: D.load_dataset("cifar10", "val"), ValueError, "unknown split 'val'.*train"),
    "T <= 0": (lambda t: kd_loss(torch.zeros(2, 3), torch.zeros(2, 3), torch.tensor([0, 1]), temperature=0),
               ValueError, "temperature must be a finite number > 0"),
    "alpha outside [0,1]": (lambda t: kd_loss(torch.zeros(2, 3), torch.zeros(2, 3), torch.tensor([0, 1]), alpha=2),
                            ValueError, r"alpha must be in \[0, 1\]"),
    "negative epochs": (lambda t: Recipe(epochs=-1), ValueError, "epochs must be an integer >= 1"),
    "shapes that disagree": (lambda t: kd_loss(torch.zeros(2, 3), torch.zeros(2, 4), torch.tensor([0, 1])),
                             ValueError, "teacher_logits shape"),
    "dataset missing": (lambda t: D.load_dataset("mnist", "train", root=t / "empty"), REG.DatasetNotFoundError,
                        "no copy of mnist.*Looked in.*download=True"),
    "corrupt archive": (lambda t: D.load_dataset("cifar10", "test", root=corrupt_tar(t), verify=False), F.DataError,
                        "test.tar.gz.*corrupt or truncated.*fetch it again"),
    "wrong checksum": (lambda t: D.load_dataset("mnist", "test", root=mnist_root(t)), F.DataError,
                       "checksum mismatch.*Delete it and fetch it again"),
    "CIFAR-10H of the wrong shape": (
        lambda t: (np.save(t / "cifar10h-probs.npy", np.full((10, 10), 0.1)),
                   HUM.load_human_labels(root=t, verify=False)), F.DataError, r"must be \(10000, 10\)"),
    "CIFAR-10H rows not summing to 1": (
        lambda t: (np.save(t / "cifar10h-probs.npy", np.full((10000, 10), 0.5)),
                   HUM.load_human_labels(root=t, verify=False)), F.DataError, "rows must sum to 1"),
    "human labels for a dataset without them": (
        lambda t: HUM.human_labels_for(D.load_dataset("mnist", "test", root=mnist_root(t), verify=False),
                                     human=np.full((10000, 10), 0.1)), ValueError, "only for the CIFAR-10 test set"),
    "grid key typo": (lambda t: load_grid(grid_with(t, lambda g: g["experiments"]["E1"].update(
        {"teacher": g["experiments"]["E1"].pop("teachers")}))), ValueError, "unknown key 'teacher'.*'teachers'"),
    "unknown profile": (lambda t: plan("huge"), ValueError, "unknown profile 'huge'"),
    "grid with a bad regime": (lambda t: load_grid(grid_with(t, lambda g: g["experiments"]["E1"]["teachers"].update(
        {"regimes": ["none", "cutmixx"]}))), ValueError, "unknown augmentation regime 'cutmixx'"),
    "unknown notebook task": (lambda t: execute_task("teacher-main-vgg-none", "smoke"), ValueError,
                              "no task 'teacher-main-vgg-none'.*--plan"),
    "unwritable run store": (lambda t: ((t / "file").write_text("x"), run_task(
        {"kind": "teacher", "profile": "smoke", "dataset": "main", "model": "resnet18", "regime": "none"},
        runs=t / "file" / "runs")), PermissionError, "cannot write to.*--runs DIR or \\$KDLIB_RUNS"),
    "bad subset": (lambda t: D.load_dataset("mnist", "test", root=mnist_root(t), verify=False, subset=0),
                   ValueError, "subset must be a positive number"),
    "bad batch size": (lambda t: Recipe(epochs=1, batch_size=0), ValueError, "batch_size must be a positive integer"),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_bad_input_gives_a_clear_error_and_no_partial_artifact(case, tmp_path, monkeypatch):
    monkeypatch.setenv("KDLIB_CACHE", str(tmp_path / "cache"))
    monkeypatch.chdir(tmp_path)
    (tmp_path / "empty").mkdir()
    fn, exc, needle = CASES[case]
    before = {p for p in tmp_path.rglob("*")}
    with pytest.raises(exc, match=needle):
        fn(tmp_path)
    created = {p for p in tmp_path.rglob("*")} - before
    # partial artifacts: temporary files, or results that could be mistaken for finished ones
    leftovers = [p for p in created if p.suffix in (".tmp", ".part", ".pt", ".ipynb")
                 or p.name in ("DONE", "metrics.json", "predictions.npz")]
    assert not leftovers, leftovers


def test_the_catalogue_has_at_least_twenty_cases():
    assert len(CASES) >= 20
