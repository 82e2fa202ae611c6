"""Decoding a located dataset split into uint8 images and int labels."""
from __future__ import annotations

import hashlib
import tarfile
import warnings
from pathlib import Path

import numpy as np

from .formats import (
    MAX_MEMBER_BYTES,
    DataError,
    read_capped,
    read_cifar_batches,
    read_idx,
    read_npy,
)
from .images import read_image_folder, read_image_tar, read_member, tar_members
from .registry import CLASSES, IMAGE_SHAPES, KNOWN_CHECKSUMS
from .resolver import _DatasetCandidate, _read_index_map

Decoded = tuple  # images, labels, files (or None), order ("original" | "folder"), meta


def _decode(name: str, split: str, cand: _DatasetCandidate, verify: bool) -> Decoded:
    """-> images, labels, files (or None), order, meta. Known checksums are checked by the caller,
    except the batches inside CIFAR-10's archive, checked here before they are unpickled."""
    if cand.kind == "idx":
        return _decode_idx(name, cand)
    if cand.kind == "cifar-py":
        blobs = [(str(p), read_capped(p, MAX_MEMBER_BYTES, "CIFAR-10 batch")) for p in cand.paths]
        images, labels = read_cifar_batches(blobs)
        return images, labels, None, "original", {}
    if cand.kind == "cifar-tgz":
        images, labels = read_cifar_batches(_cifar_archive_batches(cand.paths[0], split, verify))
        return images, labels, None, "original", {}
    images, labels, files, order, meta = _decode_folder(name, split, cand)
    if meta.get("dropped_duplicates") or meta.get("dropped_unreadable"):
        warnings.warn(f"CINIC-10 test-imagenet: dropped {meta['dropped_duplicates']} exact duplicates and "
                      f"{meta['dropped_unreadable']} unreadable files", stacklevel=3)
    return images, labels, files, order, meta


def _decode_idx(name: str, cand: _DatasetCandidate) -> Decoded:
    """An IDX pair (MNIST, Fashion-MNIST), checked to pair up and to have the dataset's image size and classes."""
    classes = CLASSES[name]
    images, labels = read_idx(cand.paths[0]), read_idx(cand.paths[1])
    if images.ndim != 3 or labels.ndim != 1 or images.shape[0] != labels.shape[0]:
        raise DataError(f"{cand.paths[0]} holds {images.shape}, {cand.paths[1]} holds {labels.shape}: "
                        f"they do not pair up as (N, H, W) images and (N,) labels")
    if images.shape[1:] != IMAGE_SHAPES[name][:2]:
        raise DataError(f"{cand.paths[0]} holds images of {images.shape[1]}x{images.shape[2]}, but {name}'s are "
                        f"{IMAGE_SHAPES[name][0]}x{IMAGE_SHAPES[name][1]}: it is not a copy of {name}. Replace it.")
    if labels.size and labels.max() >= len(classes):
        raise DataError(f"{cand.paths[1]} has label {labels.max()} but {name} has {len(classes)} classes")
    return images[..., None], labels.astype(np.int64), None, "original", {}


def _cifar_archive_batches(archive: Path, split: str, verify: bool) -> list[tuple[str, bytes]]:
    """The pickled batches of one split inside CIFAR-10's python archive, each checked before it is unpickled."""
    wanted = [f"data_batch_{i}" for i in range(1, 6)] if split == "train" else ["test_batch"]
    try:
        with tarfile.open(archive, "r:gz") as tar:
            members = {Path(m.name).name: m for m in tar_members(tar, archive)}
            missing = [w for w in wanted if w not in members]
            if missing:
                raise DataError(f"{archive} lacks {missing}; it is not the CIFAR-10 python archive")
            blobs = []
            for w in wanted:
                raw = read_member(tar, members[w], archive, MAX_MEMBER_BYTES, "CIFAR-10 batch")
                if verify:  # each batch's own checksum, before it is unpickled
                    digest = hashlib.md5(raw).hexdigest()
                    if digest != KNOWN_CHECKSUMS[("cifar10", w)][0][1]:
                        raise DataError(f"checksum mismatch for {w} inside {archive}; fetch the archive again")
                blobs.append((f"{archive}:{w}", raw))
    except (tarfile.TarError, OSError, EOFError) as err:
        raise DataError(f"cannot read archive {archive}: {err}. It is corrupt or truncated; fetch it again.") from None
    return blobs


def _decode_folder(name: str, split: str, cand: _DatasetCandidate) -> Decoded:
    """An image folder or its tar (the CIFAR-10 JPEG copy, CINIC-10), in the original order where an index map
    says it; CINIC-10's ImageNet test part without its CIFAR-derived, duplicate and unreadable files."""
    keep = None
    skip_unreadable = name == "cinic10" and split == "test-imagenet"
    folder_split = "test" if split == "test-imagenet" else split
    if skip_unreadable:
        keep = lambda c, f: "cifar" not in f.lower()  # noqa: E731 - CINIC names CIFAR-derived files cifar10-*
    size = IMAGE_SHAPES[name][:2]
    if cand.kind == "folder":
        images, labels, files, unreadable = read_image_folder(cand.paths[0], CLASSES[name], keep, skip_unreadable,
                                                              size)
    else:
        images, labels, files, unreadable = read_image_tar(cand.paths[0], folder_split, CLASSES[name], keep,
                                                           skip_unreadable, size)
    order, meta = "folder", {}
    if skip_unreadable:
        keep_rows, seen = [], set()
        for i in range(len(images)):
            h = hashlib.sha256(images[i].tobytes()).digest()
            if h not in seen:
                seen.add(h)
                keep_rows.append(i)
        meta["dropped_duplicates"] = int(len(images) - len(keep_rows))
        meta["dropped_unreadable"] = len(unreadable)
        images, labels, files = images[keep_rows], labels[keep_rows], files[keep_rows]
    if cand.index_map is not None:
        perm = _read_index_map(cand.index_map, files)
        images, labels, files = images[perm], labels[perm], files[perm]
        order = "original"
        uncertain = cand.index_map.parent / "uncertain_indices.npy"
        if uncertain.is_file():
            meta["uncertain_indices"] = read_npy(uncertain, MAX_MEMBER_BYTES).astype(np.int64)
    return images, labels, files, order, meta
