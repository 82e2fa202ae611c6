"""CIFAR-10H: the human soft labels of the CIFAR-10 test set."""
from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from .download import download_dataset
from .formats import DataError, read_npy
from .registry import Dataset, DatasetNotFoundError
from .resolver import _user_roots, _verify

if TYPE_CHECKING:  # names for annotations only
    from pathlib import Path


__all__ = ["load_human_labels", "human_labels_for"]


# --------------------------------------------------------------------------- CIFAR-10H
def _human_roots(root):
    bases = _user_roots(root)
    return [d for b in bases for d in (b, b / "cifar10h", b / "cifar-10h")]


def load_human_labels(root: Path | str | None = None, counts: bool = False, verify: bool = True,
                      download: bool = False) -> np.ndarray | tuple[np.ndarray, np.ndarray]:
    """CIFAR-10H human soft labels, (10000, 10) float64, rows in the original CIFAR-10 test order.

    With ``counts=True`` returns ``(probs, counts)``. Validated for shape, finiteness and row sums.
    """
    wanted = ["cifar10h-probs.npy"] + (["cifar10h-counts.npy"] if counts else [])
    looked = [str(d) for d in _human_roots(root)]
    folder = next((d for d in _human_roots(root) if all((d / w).is_file() for w in wanted)), None)
    if folder is None and download:
        download_dataset("cifar10h", _user_roots(root)[0])
        folder = next((d for d in _human_roots(root) if all((d / w).is_file() for w in wanted)), None)
    if folder is None:
        raise DatasetNotFoundError(
            f"CIFAR-10H ({', '.join(wanted)}) not found. Looked in: {', '.join(looked)}. Fix: copy the files from "
            f"the cifar-10h repository's data/ folder there, pass root=..., or load_human_labels(download=True)."
        )
    arrays = []
    for w in wanted:
        path = folder / w
        if verify:
            _verify("cifar10h", path)
        arr = read_npy(path, 10000 * 10 * 8)  # the header's shape checked first: (10000, 10) of at most 8 bytes
        if arr.shape != (10000, 10):
            raise DataError(f"{path} has shape {arr.shape}; CIFAR-10H must be (10000, 10). Replace the file.")
        arr = arr.astype(np.float64)
        if not np.all(np.isfinite(arr)) or arr.min() < 0:
            raise DataError(f"{path} holds negative or non-finite values; replace the file.")
        arrays.append(arr)
    probs = arrays[0]
    dev = np.abs(probs.sum(axis=1) - 1).max()
    if dev > 1e-6:
        raise DataError(f"{folder / wanted[0]}: rows must sum to 1 (max deviation {dev:.3g}); replace the file.")
    if counts:
        c = arrays[1]
        if not np.allclose(c / c.sum(axis=1, keepdims=True), probs, atol=1e-6):
            raise DataError(f"{folder} counts and probs disagree; replace both files from one release.")
        return probs, c.astype(np.int64)
    return probs


def human_labels_for(dataset: Dataset, human: np.ndarray | None = None, root: Path | str | None = None) -> np.ndarray:
    """CIFAR-10H rows aligned with ``dataset``'s rows (a subset keeps its original indices)."""
    if dataset.name != "cifar10" or dataset.split != "test":
        raise ValueError(f"human soft labels exist only for the CIFAR-10 test set, not {dataset.name} {dataset.split}")
    if dataset.order != "original":
        raise DataError(
            f"{dataset.source} is in folder order, so its rows cannot be joined to CIFAR-10H. Fix: put the index "
            f"map test_index_to_file.txt (one 'index<TAB>class/file' line per image) beside the copy or in its "
            f"alignment/ folder."
        )
    human = load_human_labels(root=root) if human is None else np.asarray(human)
    if human.shape[0] != 10000:
        raise ValueError(f"human labels have {human.shape[0]} rows; CIFAR-10H has 10000")
    return human[dataset.indices]
