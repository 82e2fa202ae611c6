"""The decoded-split cache: one checked ``.npz`` per split, keyed by its sources."""
from __future__ import annotations

import hashlib
import json
import os
import time
import warnings
from pathlib import Path

import numpy as np

from ..base.io import atomic_path
from ..base.paths import project_root
from .formats import MAX_NPZ_BYTES, read_npz
from .registry import CLASSES, IMAGE_SHAPES


# --------------------------------------------------------------------------- cache
def _cache_dir() -> Path:
    """``$KDLIB_CACHE``, else the project's ``data/cache`` (the checkout's, whatever the working folder; the
    working folder's ``data/cache`` for an installed kdlib). Never ``$KDLIB_DATA`` or a ``root`` passed in:
    those are dataset folders, only read."""
    env = os.environ.get("KDLIB_CACHE")
    if env:
        return Path(env)
    return project_root() / "data" / "cache"


_STALE_SECONDS = 3600  # a temporary file without a live writer is swept after this long


def _sweep_stale(folder: Path):
    """Delete ``*.tmp`` left in the cache by a killed write: its writer's pid (in the name) is gone,
    or, for a name without one, it is older than an hour."""
    if not folder.is_dir():
        return
    now = time.time()
    for tmp in folder.glob("*.tmp"):
        parts = tmp.name.split(".")
        pid = next((int(x[3:]) for x in parts if x.startswith("pid") and x[3:].isdigit()), None)
        try:
            if pid is not None:
                try:
                    os.kill(pid, 0)
                    continue  # its writer is alive
                except ProcessLookupError:
                    pass
                except PermissionError:
                    continue
            elif now - tmp.stat().st_mtime < _STALE_SECONDS:
                continue
            tmp.unlink()
        except OSError:
            pass


def _atomic_savez(path: Path, **arrays: np.ndarray) -> None:
    """The cache file written whole or not at all; the writer's pid in the temporary name (see the sweep)."""
    with atomic_path(path, pid=True, fix="point $KDLIB_CACHE at a disk with room") as tmp, open(tmp, "wb") as f:
        np.savez(f, **arrays)


def _cache_problem(out: dict, name: str) -> str | None:
    """Why a loaded cache is not what the loader expects (None when it is)."""
    for key in ("images", "labels", "meta"):
        if key not in out:
            return f"it lacks the array {key!r}"
    images, labels = out["images"], out["labels"]
    if images.dtype != np.uint8 or images.ndim != 4 or images.shape[1:] != IMAGE_SHAPES[name]:
        return f"images are {images.dtype} {images.shape}, expected uint8 (N, {', '.join(map(str, IMAGE_SHAPES[name]))})"
    if labels.dtype != np.int64 or labels.shape != (len(images),):
        return f"labels are {labels.dtype} {labels.shape} for {len(images)} images"
    if len(labels) == 0 or labels.min() < 0 or labels.max() >= len(CLASSES[name]):
        return f"labels lie outside [0, {len(CLASSES[name]) - 1}] or there are none"
    for key in ("files", "uncertain_indices"):
        if key in out and out[key].ndim != 1:
            return f"{key} has shape {out[key].shape}"
    if "files" in out and len(out["files"]) != len(images):
        return f"{len(out['files'])} file names for {len(images)} images"
    if "uncertain_indices" in out and out["uncertain_indices"].dtype.kind not in "iu":
        return f"uncertain_indices are {out['uncertain_indices'].dtype}"
    meta = out["meta"]
    if not isinstance(meta, dict) or meta.get("order") not in ("original", "folder"):
        return "its meta lacks the row order"
    return None


def _cache_digest(arrays: dict, name: str, split: str, key: str) -> str:
    """SHA-256 binding a cache's contents to its source: the dataset, the split, the source key (the
    checksum of the files it was decoded from) and every array's name, dtype, shape and bytes."""
    h = hashlib.sha256(f"kdlib dataset cache v1\0{name}\0{split}\0{key}\n".encode())
    for k in sorted(arrays):
        if k == "digest":
            continue
        a = np.ascontiguousarray(arrays[k])
        h.update(f"{k}\0{a.dtype.str}\0{a.shape}\n".encode())
        h.update(a.data)
    return h.hexdigest()


def _cache_load(path: Path, name: str, split: str, key: str):
    """The cached arrays, or None (with a warning) when the file is unreadable, not what the loader expects,
    or not what was written for this source (its contents do not hash to the digest it carries)."""
    try:
        raw = read_npz(path, MAX_NPZ_BYTES)  # shapes checked in the zip's headers before anything is loaded
        out = dict(raw)
        if "meta" in out:
            out["meta"] = json.loads(str(out["meta"]))
    except Exception as err:  # noqa: BLE001 - a bad cache file is rebuilt, never trusted
        warnings.warn(f"ignoring unreadable cache {path} ({err}); rebuilding it", stacklevel=3)
        return None
    problem = _cache_problem(out, name)
    if problem is None:
        stored = str(raw["digest"]) if "digest" in raw and raw["digest"].ndim == 0 else None
        if stored is None:
            problem = "it carries no digest of its contents (written before kdlib checked caches)"
        elif stored != _cache_digest(raw, name, split, key):
            problem = ("its contents do not hash to the digest it carries for this source (edited or damaged "
                       "after it was written, or written from other files)")
    if problem:
        warnings.warn(f"ignoring cache {path}: {problem}, not what the loader expects; rebuilding it", stacklevel=3)
        return None
    return out
