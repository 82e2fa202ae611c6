"""One front door to every dataset of the paper: ``load_dataset(name, split)``.

The resolver looks, in this order:

1. ``root``, or ``$KDLIB_DATA``, or ``./data`` (and dataset-named sub-folders of it);
2. system dataset folders, e.g. Debian's ``/usr/share/datasets/fashion-mnist/``
   (``apt-get install dataset-fashion-mnist``);
3. the official URL, only with ``download=True``, checked against its known checksum.

Otherwise it raises :class:`DatasetNotFoundError` listing every place it looked and what fixes it.

Decoded splits are cached as one ``.npz`` per split, keyed by the SHA-256 of the source files
(for a plain folder, of its file listing with sizes and modification times, symlinked class
folders followed; an empty folder is an error, not a key), in ``$KDLIB_CACHE`` or the project's
``data/cache`` (never in a dataset folder such as ``$KDLIB_DATA``). A cache is checked on load
against what the loader expects (arrays, shapes, dtypes, counts, label range, meta; the shapes
in its zip headers before anything is loaded) and against the digest it carries, a SHA-256 of
its arrays bound to the dataset, the split and the source key: an edited, damaged or foreign
cache (one pixel changed) is rebuilt with a warning naming the file, never used (a check against
edits and damage, not a signature: whoever can write the cache folder can write a matching digest
too). It is written
to a temporary file and renamed, so it is never half-written; temporary files of killed writes
are swept. A ``root`` passed in is only read, never written. Files whose checksum is known (CIFAR-10's archive and batches,
MNIST and Fashion-MNIST's IDX files, the CIFAR-10 JPEG copy, CIFAR-10H) are verified before
they are decoded; a mismatch is an error. CIFAR-10's pickles are unpickled only after that check,
and then only with an allow-list of types.
"""
from __future__ import annotations

import json
import warnings
from dataclasses import replace
from typing import TYPE_CHECKING

import numpy as np

from .cache import _atomic_savez, _cache_digest, _cache_dir, _cache_load, _sweep_stale
from .decode import _decode
from .download import download_dataset
from .registry import CLASSES, DATASETS, Dataset, _canonical
from .resolver import (
    _describe,
    _locate,
    _not_found,
    _source_key,
    _user_roots,
    _verify_all,
)

if TYPE_CHECKING:  # names for annotations only
    from pathlib import Path


__all__ = ["load_dataset", "dataset_available", "stratified_subset"]


def dataset_available(name: str, split: str, root: Path | str | None = None) -> bool:
    """Whether a copy of ``name``/``split`` is on this machine (no decoding, no download)."""
    name = _canonical(name)
    return _locate(name, split, root)[0] is not None


def load_dataset(name: str, split: str, root: Path | str | None = None, download: bool = False,
                 subset: int | None = None, seed: int = 0, verify: bool = True, cache: bool = True) -> Dataset:
    """Load ``split`` of dataset ``name`` as uint8 images and int64 labels.

    ``name``: ``cifar10``, ``cinic10``, ``mnist``, ``fashion-mnist``. ``split``: ``train``/``test``
    (CINIC-10: also ``valid`` and ``test-imagenet``, the test files not derived from CIFAR, with
    exact duplicates and unreadable files dropped and counted in ``meta``).
    ``subset``: keep that many images per class, chosen with ``seed`` (for CPU profiles and tests).
    ``verify``: check files of known checksum (on by default; off only to read a modified copy).
    """
    name = _canonical(name)
    if subset is not None and (isinstance(subset, bool) or not isinstance(subset, (int, np.integer)) or subset < 1):
        raise ValueError(f"subset must be a positive number of images per class, got {subset!r}")
    if split not in DATASETS[name]:
        raise ValueError(f"unknown split {split!r} for {name}; choose one of {list(DATASETS[name])}")
    cand, looked = _locate(name, split, root)
    if cand is None and download:
        download_dataset(name, _user_roots(root)[0])
        cand, looked = _locate(name, split, root)
    if cand is None:
        raise _not_found(name, split, looked, root)

    key = _source_key(cand)
    cache_path = _cache_dir() / f"{name}-{split}-{key[:16]}.npz"
    if cache:
        _sweep_stale(cache_path.parent)
    hit = _cache_load(cache_path, name, split, key) if cache and cache_path.is_file() else None
    source = _describe(cand)
    if hit is not None:
        meta = hit["meta"]
        if verify and not meta.get("verified"):
            # cached from an unverified read: the files must still pass their known checksums now
            meta["verified"] = _verify_all(name, cand)
        if "uncertain_indices" in hit:
            meta["uncertain_indices"] = hit["uncertain_indices"]
        ds = Dataset(name, split, hit["images"], hit["labels"], CLASSES[name], source, key,
                     meta.pop("order"), files=hit.get("files"), meta=meta)
    else:
        verified = _verify_all(name, cand) if verify else False
        images, labels, files, order, meta = _decode(name, split, cand, verify)
        meta["verified"] = verified
        ds = Dataset(name, split, images, labels, CLASSES[name], source, key, order, files=files, meta=meta)
        if cache:
            arrays = {"images": images, "labels": labels}
            if files is not None:
                arrays["files"] = files.astype(str)
            plain_meta = {k: v for k, v in meta.items() if k != "uncertain_indices"}
            if "uncertain_indices" in meta:
                arrays["uncertain_indices"] = meta["uncertain_indices"]
            arrays["meta"] = np.array(json.dumps({**plain_meta, "order": order}))
            arrays["digest"] = np.array(_cache_digest(arrays, name, split, key))
            try:
                _atomic_savez(cache_path, **arrays)
            except OSError as err:
                warnings.warn(f"could not write the cache {cache_path} ({err}); set $KDLIB_CACHE to a writable "
                              f"folder to make the next load instant", stacklevel=2)
    if subset is not None:
        ds = stratified_subset(ds, subset, seed)
    return ds


def stratified_subset(ds: Dataset, per_class: int, seed: int = 0) -> Dataset:
    """``per_class`` images of every class, drawn with ``seed``; rows keep their relative order."""
    if isinstance(per_class, bool) or not isinstance(per_class, (int, np.integer)) or per_class < 1:
        raise ValueError(f"subset must be a positive number of images per class, got {per_class!r}")
    rng = np.random.default_rng(seed)
    rows = []
    for c in range(ds.num_classes):
        members = np.flatnonzero(ds.labels == c)
        if len(members) < per_class:
            raise ValueError(f"subset={per_class} per class, but class {c} ({ds.classes[c]}) of {ds.name} "
                             f"{ds.split} has only {len(members)} images")
        rows.append(rng.choice(members, per_class, replace=False))
    rows = np.sort(np.concatenate(rows))
    meta = {**ds.meta, "subset_per_class": int(per_class), "subset_seed": int(seed)}
    return replace(ds, images=ds.images[rows], labels=ds.labels[rows], indices=ds.indices[rows],
                   files=None if ds.files is None else ds.files[rows], meta=meta)
