"""Finding a dataset on disk: the roots searched, in order, and the error that lists them."""
from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .formats import MAX_MEMBER_BYTES, DataError, file_digest, read_capped
from .registry import (
    _FOLDERS,
    _MNIST_FILES,
    DOWNLOADS,
    KNOWN_CHECKSUMS,
    SYSTEM_DIRS,
    SYSTEM_FIX,
    DatasetNotFoundError,
)


def _user_roots(root) -> list[Path]:
    if root is not None:
        return [Path(root)]
    env = os.environ.get("KDLIB_DATA")
    return [Path(env)] if env else [Path("data")]


def _verify(dataset: str, path: Path, name: str | None = None):
    """Check a file against its known checksums; return True if known and matching, None if unknown."""
    name = name or path.name
    known = KNOWN_CHECKSUMS.get((dataset, name))
    if not known:
        return None
    for algorithm, digest, over in known:
        payload = over == "payload" and path.suffix == ".gz"
        if file_digest(path, algorithm, decompress_gzip=payload) == digest:
            return True
    raise DataError(
        f"checksum mismatch for {path}: it is not the official {name} of {dataset}. "
        f"Delete it and fetch it again (load_dataset(..., download=True)), or pass verify=False to read a modified copy."
    )


@dataclass
class _DatasetCandidate:
    kind: str
    paths: list
    index_map: Path | None = None


def _find(name: str, split: str, base: Path) -> _DatasetCandidate | None:
    if not base.is_dir():
        return None
    if name in ("mnist", "fashion-mnist"):
        stems = _MNIST_FILES[split]
        found = []
        for stem in stems:
            hit = next((base / f for f in (stem + ".gz", stem) if (base / f).is_file()), None)
            if hit is None:
                return None
            found.append(hit)
        return _DatasetCandidate("idx", found)
    if name == "cifar10":
        batches = base / "cifar-10-batches-py"
        files = [f"data_batch_{i}" for i in range(1, 6)] if split == "train" else ["test_batch"]
        if all((batches / f).is_file() for f in files):
            return _DatasetCandidate("cifar-py", [batches / f for f in files])
        if (base / "cifar-10-python.tar.gz").is_file():
            return _DatasetCandidate("cifar-tgz", [base / "cifar-10-python.tar.gz"])
    folder_split = "test" if split == "test-imagenet" else split
    index_map = None
    if name == "cifar10" and split == "test":
        index_map = next((p for p in (base / "test_index_to_file.txt", base / "alignment" / "test_index_to_file.txt")
                          if p.is_file()), None)
    if (base / folder_split).is_dir():
        return _DatasetCandidate("folder", [base / folder_split], index_map)
    for archive in (f"{folder_split}.tar.gz", f"{folder_split}.tgz", f"{folder_split}.tar"):
        if (base / archive).is_file():
            return _DatasetCandidate("tar", [base / archive], index_map)
    if name == "cinic10" and (base / "CINIC-10.tar.gz").is_file():
        return _DatasetCandidate("tar", [base / "CINIC-10.tar.gz"])
    return None


def _locate(name: str, split: str, root):
    looked = []
    for base in _user_roots(root):
        for sub in _FOLDERS[name]:
            d = base / sub if sub else base
            looked.append(str(d))
            hit = _find(name, split, d)
            if hit:
                return hit, looked
    for d in SYSTEM_DIRS[name]:
        looked.append(str(d))
        hit = _find(name, split, d)
        if hit:
            return hit, looked
    return None, looked


def _not_found(name, split, looked, root):
    dest = _user_roots(root)[0]
    fixes = []
    if name in SYSTEM_FIX:
        fixes.append(f"`{SYSTEM_FIX[name]}` (Debian's package, offline)")
    if name in DOWNLOADS:
        fixes.append(f"load_dataset({name!r}, {split!r}, download=True) to fetch it into {dest}")
    expected = {
        "cifar10": "cifar-10-batches-py/, cifar-10-python.tar.gz, or an ImageFolder copy train/ test/ "
                   "(folders or train.tar.gz/test.tar.gz)",
        "cinic10": "train/ valid/ test/ class folders of PNGs, or CINIC-10.tar.gz",
        "mnist": "the IDX files train-images-idx3-ubyte.gz, train-labels-idx1-ubyte.gz, t10k-...",
        "fashion-mnist": "the IDX files train-images-idx3-ubyte.gz, train-labels-idx1-ubyte.gz, t10k-...",
    }[name]
    fixes.append(f"put {expected} in {dest} (or pass root=..., or set $KDLIB_DATA)")
    return DatasetNotFoundError(
        f"no copy of {name} ({split}) found. Looked in: {', '.join(looked)}. Fix: " + "; or ".join(fixes) + "."
    )


# --------------------------------------------------------------------------- decoding
def _folder_files(folder: Path) -> list[Path]:
    """Every file under ``folder``, following symlinked sub-folders (class folders may be links), sorted."""
    out, seen = [], set()
    for dirpath, dirnames, filenames in os.walk(folder, followlinks=True):
        real = os.path.realpath(dirpath)
        if real in seen:  # a link loop: each real folder is walked once
            dirnames[:] = []
            continue
        seen.add(real)
        out.extend(Path(dirpath) / f for f in filenames if (Path(dirpath) / f).is_file())
    return sorted(out)


def _source_key(cand: _DatasetCandidate) -> str:
    h = hashlib.sha256()
    for p in cand.paths:
        if p.is_dir():  # a folder: its listing with sizes and mtimes (hashing every image each load is slow)
            files = _folder_files(p)
            if not files:
                raise DataError(f"{p} holds no files; it is not a copy of the dataset (an empty listing has no "
                                f"content to key a cache by). Put the class folders there or point root elsewhere.")
            for f in files:
                st = f.stat()
                h.update(f"{f.relative_to(p)}\0{st.st_size}\0{st.st_mtime_ns}\n".encode())
        else:
            h.update(file_digest(p).encode())
    if cand.index_map is not None:
        h.update(file_digest(cand.index_map).encode())
    return h.hexdigest()


def _read_index_map(path: Path, files: np.ndarray) -> np.ndarray:
    """Rows of ``files`` in original order, from ``index<TAB>class/file`` lines."""
    position = {f: i for i, f in enumerate(files.tolist())}
    order = np.full(len(files), -1, dtype=np.int64)
    try:
        lines = read_capped(path, MAX_MEMBER_BYTES, "index map").decode().splitlines()
    except UnicodeDecodeError as err:
        raise DataError(f"cannot read index map {path}: {err}") from None
    for n, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            idx, rel = line.split("\t")
            idx = int(idx)
        except ValueError:
            raise DataError(f"{path}:{n}: expected 'index<TAB>class/file', got {line!r}") from None
        if not (0 <= idx < len(files)) or rel not in position or order[idx] != -1:
            raise DataError(f"{path}:{n}: index {idx} or file {rel!r} is out of range, unknown or repeated")
        order[idx] = position[rel]
    if (order < 0).any() or len(set(order.tolist())) != len(files):
        raise DataError(f"{path} does not map every one of the {len(files)} images exactly once; replace it")
    return order


def _verify_all(name: str, cand: _DatasetCandidate) -> bool:
    """Verify every file of known checksum (raises on a mismatch); True if all files were known."""
    results = [_verify(name, p) for p in cand.paths if p.is_file()]
    return bool(results) and all(r is True for r in results)


def _describe(cand: _DatasetCandidate) -> str:
    first = cand.paths[0]
    text = {
        "idx": f"IDX {first} + {cand.paths[-1]}",
        "cifar-py": f"CIFAR-10 python batches in {first.parent}",
        "cifar-tgz": f"CIFAR-10 python archive {first}",
        "folder": f"ImageFolder {first}",
        "tar": f"ImageFolder tarball {first}",
    }[cand.kind]
    if cand.index_map is not None:
        text += f" in original order by {cand.index_map}"
    return text
