"""The dataset sidecar: what the chapters need from a test set when the dataset is absent."""
from __future__ import annotations

import sys
import zipfile
from pathlib import Path

import numpy as np

from ..base.io import atomic_write_bytes
from .compact import EXPLORER_PER_CLASS, RecordError, _npz_bytes, embedding_subset

__all__ = ["write_dataset_sidecar", "read_dataset_sidecar"]


def sidecar_path(results_root: Path | str, profile: str, dataset: str) -> Path:
    return Path(results_root) / profile / "datasets" / f"{dataset}-test.npz"


def write_dataset_sidecar(results_root: Path | str, profile: str, grid: dict | None = None, overwrite: bool = False) -> Path | None:
    """Labels, indices, human labels (CIFAR-10) and explorer images of the profile's main test split."""
    from ..data.formats import DataError
    from ..data.human import human_labels_for, load_human_labels
    from ..data.memo import split_of
    from ..data.registry import CLASSES
    from .plan import load_grid, resolve_dataset

    grid = grid or load_grid()
    spec = resolve_dataset(grid, profile, "main")
    path = sidecar_path(results_root, profile, spec["name"])
    if path.is_file() and not overwrite:
        return path
    test = split_of(spec, "test", "test_subset")
    arrays = {"labels": test.labels.astype(np.int16), "indices": test.indices.astype(np.int32),
              "classes": np.array(CLASSES[spec["name"]])}
    if spec["name"] == "cifar10":
        try:
            arrays["human"] = human_labels_for(test, load_human_labels()).astype(np.float16)
        except (DataError, ValueError) as err:
            print(f"note: sidecar without CIFAR-10H ({err})", file=sys.stderr)
    pick = embedding_subset(test.labels, EXPLORER_PER_CLASS)
    arrays["image_index"] = pick.astype(np.int32)
    arrays["images"] = np.ascontiguousarray(test.images[pick]).astype(np.uint8)
    atomic_write_bytes(path, _npz_bytes(arrays))
    return path


def read_dataset_sidecar(results_root: Path | str, profile: str, dataset: str) -> dict | None:
    path = sidecar_path(results_root, profile, dataset)
    if not path.is_file():
        return None
    fix = (f"restore it with git (git checkout -- {path}) or rebuild it where the dataset is present "
           f"(python -m kdlib export --profile {profile})")
    try:
        with np.load(path, allow_pickle=False) as z:
            out = {k: z[k] for k in z.files}
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as err:
        raise RecordError(f"{path} is not a readable dataset sidecar ({type(err).__name__}: {err}); {fix}") from None
    missing = {"labels", "indices", "classes"} - set(out)
    n = len(out.get("labels", ()))
    if missing or len(out["indices"]) != n or ("human" in out and out["human"].shape != (n, len(out["classes"]))):
        raise RecordError(f"{path} lacks {sorted(missing)} or its arrays disagree in length; {fix}" if missing else
                          f"{path}: its labels, indices and human labels disagree in shape; {fix}")
    out["labels"] = out["labels"].astype(np.int64)
    out["indices"] = out["indices"].astype(np.int64)
    if "human" in out:
        h = out["human"].astype(np.float32)
        out["human"] = h / np.clip(h.sum(1, keepdims=True), 1e-12, None)
    out["classes"] = [str(c) for c in out["classes"]]
    return out
