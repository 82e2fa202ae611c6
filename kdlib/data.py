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

import hashlib
import json
import os
import shutil
import tarfile
import tempfile
import time
import urllib.request
import warnings
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np

from .formats import (MAX_MEMBER_BYTES, MAX_NPZ_BYTES, DataError, file_digest, read_capped, read_cifar_batches,
                      read_idx, read_image_folder, read_image_tar, read_member, read_npy, read_npz, tar_members)

__all__ = [
    "Dataset",
    "DataError",
    "DatasetNotFoundError",
    "load_dataset",
    "dataset_available",
    "load_human_labels",
    "human_labels_for",
    "stratified_subset",
    "DATASETS",
    "NORMALIZATION",
    "CLASSES",
]

CIFAR10_CLASSES = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]
CLASSES = {
    "cifar10": CIFAR10_CLASSES,
    "cinic10": CIFAR10_CLASSES,
    "mnist": [str(i) for i in range(10)],
    "fashion-mnist": ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag",
                      "Ankle boot"],
}
DATASETS = {
    "cifar10": ("train", "test"),
    "cinic10": ("train", "valid", "test", "test-imagenet"),
    "mnist": ("train", "test"),
    "fashion-mnist": ("train", "test"),
}
_ALIASES = {"cifar-10": "cifar10", "cinic-10": "cinic10", "fashion_mnist": "fashion-mnist",
            "fashionmnist": "fashion-mnist", "fmnist": "fashion-mnist"}
# Sub-folders of a data root that may hold a dataset.
_FOLDERS = {
    "cifar10": ["", "cifar10", "cifar-10", "cifar10-jpeg"],
    "cinic10": ["", "cinic10", "CINIC-10", "cinic-10"],
    "mnist": ["", "mnist", "MNIST", "MNIST/raw"],
    "fashion-mnist": ["", "fashion-mnist", "FashionMNIST", "FashionMNIST/raw"],
}
SYSTEM_DIRS = {
    "mnist": [Path("/usr/share/datasets/mnist")],
    "fashion-mnist": [Path("/usr/share/datasets/fashion-mnist")],
    "cifar10": [],
    "cinic10": [],
}
SYSTEM_FIX = {"fashion-mnist": "apt-get install dataset-fashion-mnist"}

# Per-channel mean and std used to normalise, by dataset (recorded in every run).
# CIFAR-10: the paper's code. CINIC-10: its authors' statistics (the paper evaluated CINIC with
# them); kdlib evaluates CINIC with the *training* set's statistics, see the book's Methods.
NORMALIZATION = {
    "cifar10": ((0.4914, 0.4822, 0.4465), (0.247, 0.243, 0.261)),
    "cinic10": ((0.47889522, 0.47227842, 0.43047404), (0.24205776, 0.23828046, 0.25874835)),
    "mnist": ((0.1307,), (0.3081,)),
    "fashion-mnist": ((0.2860,), (0.3530,)),
}

# Known checksums: (dataset, file name) -> accepted (algorithm, hex digest, over) with
# over = "file" or "payload" (the decompressed content of a .gz, or a raw file's own bytes).
_FASHION_PAYLOAD = {
    "train-images-idx3-ubyte": "c59f468a2f672dc815687fe0f83887768d799fd8a3f3276145d20f83aa44d888",
    "train-labels-idx1-ubyte": "bad3541b69d912435c50bb6ba87bec294ff4f6a2e1246121d8633921760443d9",
    "t10k-images-idx3-ubyte": "5b4141f0afbad91edebe8549f8fcffe087ea10ca49f1dbef5c9a5cd8815ce37b",
    "t10k-labels-idx1-ubyte": "0402a96d92fd2663957122ceb108a494c5af83dab82d92729df917d7dec38c34",
}
_FASHION_GZ_MD5 = {
    "train-images-idx3-ubyte": "8d4fb7e6c68d591d4c3dfef9ec88bf0d",
    "train-labels-idx1-ubyte": "25c81989df183df01b3e8a0aad5dffbe",
    "t10k-images-idx3-ubyte": "bef4ecab320f06d8554ea6380940ec79",
    "t10k-labels-idx1-ubyte": "bb300cfdad3c16e7a12a480ee83cd310",
}
_MNIST_GZ_MD5 = {
    "train-images-idx3-ubyte": "f68b3c2dcbeaaa9fbdd348bbdeb94873",
    "train-labels-idx1-ubyte": "d53e105ee54ea40749a09fcbcd1e9432",
    "t10k-images-idx3-ubyte": "9fb629c4189551a2d022fa330f9573f3",
    "t10k-labels-idx1-ubyte": "ec29112dd5afa0611ce80d1b7f02629c",
}
KNOWN_CHECKSUMS: dict[tuple[str, str], list[tuple[str, str, str]]] = {
    ("cifar10", "cifar-10-python.tar.gz"): [("md5", "c58f30108f718f92721af3b95e74349a", "file")],
    ("cifar10", "data_batch_1"): [("md5", "c99cafc152244af753f735de768cd75f", "file")],
    ("cifar10", "data_batch_2"): [("md5", "d4bba439e000b95fd0a9bffe97cbabec", "file")],
    ("cifar10", "data_batch_3"): [("md5", "54ebc095f3ab1f0389bbae665268c751", "file")],
    ("cifar10", "data_batch_4"): [("md5", "634d18415352ddfa80567beed471001a", "file")],
    ("cifar10", "data_batch_5"): [("md5", "482c414d41f54cd18b22e5b47cb7c3cb", "file")],
    ("cifar10", "test_batch"): [("md5", "40351d587109b95175f43aff81a1287e", "file")],
    # the JPEG copy of CIFAR-10 (ImageFolder tarballs train.tar.gz/test.tar.gz, with test_index_to_file.txt)
    ("cifar10", "train.tar.gz"): [("sha256", "559eda2880952d38727691d69745ffa58c35254d328e5ebadda3d246a18d8575", "file")],
    ("cifar10", "test.tar.gz"): [("sha256", "ef77e08e6730c2b5ece0bb191cc8e3e354ad39462653a4b481b675c8e70a300a", "file")],
    ("cifar10h", "cifar10h-probs.npy"): [("sha256", "436ae98620e00073f9d08585ac870573b588853e7af9f54eb1647408114af77d", "file")],
    ("cifar10h", "cifar10h-counts.npy"): [("sha256", "9b36b4550349af56c79083356312eb4af856cc5fd3caf1f669d40b9d0bbb69ff", "file")],
}
# The committed test fixture tests/fixtures/data/fashion-mnist/ (scripts/make_idx_fixture.py: the first 30
# training and 20 test images of every class of the official files, same IDX format and names), on which the
# smoke profile runs where Debian's copy is absent. Its payload digests are accepted beside the official ones.
FIXTURE_CHECKSUMS = {
    "train-images-idx3-ubyte": "ec49a9be4334b259595f886d8da28fddd192461655e707ee9f017511d29774bd",
    "train-labels-idx1-ubyte": "e6c106319a238f9eea628d779b43a69c8bd6d080f473c4da1983cdfb6fe3c504",
    "t10k-images-idx3-ubyte": "c5778dde4e96eeb34657888930a98f527ac6b0cb35e9e969ba53f01dfce868bd",
    "t10k-labels-idx1-ubyte": "3bf96d4b7566f51d8726eb6088e70eb796c98349a6135181dddfcc5bc590cf72",
}
for _stem in _MNIST_GZ_MD5:
    KNOWN_CHECKSUMS[("mnist", _stem + ".gz")] = [("md5", _MNIST_GZ_MD5[_stem], "file")]
    KNOWN_CHECKSUMS[("fashion-mnist", _stem + ".gz")] = [
        ("md5", _FASHION_GZ_MD5[_stem], "file"), ("sha256", _FASHION_PAYLOAD[_stem], "payload"),
        ("sha256", FIXTURE_CHECKSUMS[_stem], "payload")]
    KNOWN_CHECKSUMS[("fashion-mnist", _stem)] = [("sha256", _FASHION_PAYLOAD[_stem], "payload"),
                                                 ("sha256", FIXTURE_CHECKSUMS[_stem], "payload")]

_MNIST_FILES = {"train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
                "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")}
DOWNLOADS = {
    "cifar10": [("https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz", "cifar-10-python.tar.gz")],
    "mnist": [(f"https://ossci-datasets.s3.amazonaws.com/mnist/{f}.gz", f + ".gz")
              for pair in _MNIST_FILES.values() for f in pair],
    "fashion-mnist": [(f"http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/{f}.gz", f + ".gz")
                      for pair in _MNIST_FILES.values() for f in pair],
    "cinic10": [("https://datashare.ed.ac.uk/bitstream/handle/10283/3192/CINIC-10.tar.gz", "CINIC-10.tar.gz")],
    "cifar10h": [("https://raw.githubusercontent.com/jcpeterson/cifar-10h/master/data/cifar10h-probs.npy",
                  "cifar10h-probs.npy"),
                 ("https://raw.githubusercontent.com/jcpeterson/cifar-10h/master/data/cifar10h-counts.npy",
                  "cifar10h-counts.npy")],
}


class DatasetNotFoundError(DataError, FileNotFoundError):
    """No copy of the dataset was found; the message lists where the resolver looked."""


@dataclass
class Dataset:
    """A decoded split: ``images`` uint8 (N, H, W, C), ``labels`` int64 (N,).

    ``order`` is ``"original"`` when rows follow the dataset's canonical order (needed to join
    CIFAR-10H), ``"folder"`` for an ImageFolder copy without an index map. ``indices`` are the rows'
    positions in the full split (a subset keeps them), ``source`` says which files were read
    and ``checksum`` is the cache key computed from them.
    """

    name: str
    split: str
    images: np.ndarray
    labels: np.ndarray
    classes: list
    source: str
    checksum: str
    order: str = "original"
    indices: np.ndarray | None = None
    files: np.ndarray | None = None
    meta: dict = field(default_factory=dict)

    def __post_init__(self):
        if self.indices is None:
            self.indices = np.arange(len(self.labels), dtype=np.int64)

    def __len__(self):
        return int(self.labels.shape[0])

    def __repr__(self):
        return (f"Dataset({self.name!r}, {self.split!r}, n={len(self)}, shape={tuple(self.images.shape[1:])}, "
                f"order={self.order!r}, source={self.source!r})")

    @property
    def num_classes(self) -> int:
        return len(self.classes)

    def provenance(self) -> dict:
        return {"dataset": self.name, "split": self.split, "n": len(self), "source": self.source,
                "checksum": self.checksum, "order": self.order, **{k: v for k, v in self.meta.items()
                                                                     if k != "uncertain_indices"}}


# --------------------------------------------------------------------------- resolver
def _canonical(name: str) -> str:
    if not isinstance(name, str):
        raise ValueError(f"dataset name must be a string, got {name!r}")
    key = _ALIASES.get(name.lower(), name.lower())
    if key not in DATASETS:
        raise ValueError(f"unknown dataset {name!r}; choose one of {sorted(DATASETS)}")
    return key


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
class _Candidate:
    kind: str
    paths: list
    index_map: Path | None = None


def _find(name: str, split: str, base: Path) -> _Candidate | None:
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
        return _Candidate("idx", found)
    if name == "cifar10":
        batches = base / "cifar-10-batches-py"
        files = [f"data_batch_{i}" for i in range(1, 6)] if split == "train" else ["test_batch"]
        if all((batches / f).is_file() for f in files):
            return _Candidate("cifar-py", [batches / f for f in files])
        if (base / "cifar-10-python.tar.gz").is_file():
            return _Candidate("cifar-tgz", [base / "cifar-10-python.tar.gz"])
    folder_split = "test" if split == "test-imagenet" else split
    index_map = None
    if name == "cifar10" and split == "test":
        index_map = next((p for p in (base / "test_index_to_file.txt", base / "alignment" / "test_index_to_file.txt")
                          if p.is_file()), None)
    if (base / folder_split).is_dir():
        return _Candidate("folder", [base / folder_split], index_map)
    for archive in (f"{folder_split}.tar.gz", f"{folder_split}.tgz", f"{folder_split}.tar"):
        if (base / archive).is_file():
            return _Candidate("tar", [base / archive], index_map)
    if name == "cinic10" and (base / "CINIC-10.tar.gz").is_file():
        return _Candidate("tar", [base / "CINIC-10.tar.gz"])
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


def _source_key(cand: _Candidate) -> str:
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


def _verify_all(name: str, cand: _Candidate) -> bool:
    """Verify every file of known checksum (raises on a mismatch); True if all files were known."""
    results = [_verify(name, p) for p in cand.paths if p.is_file()]
    return bool(results) and all(r is True for r in results)


def _describe(cand: _Candidate) -> str:
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


def _decode(name: str, split: str, cand: _Candidate, verify: bool):
    """-> images, labels, files (or None), order, meta. Known checksums are checked by the caller,
    except the batches inside CIFAR-10's archive, checked here before they are unpickled."""
    classes = CLASSES[name]
    meta: dict = {}
    if cand.kind == "idx":
        images, labels = read_idx(cand.paths[0]), read_idx(cand.paths[1])
        if images.ndim != 3 or labels.ndim != 1 or images.shape[0] != labels.shape[0]:
            raise DataError(f"{cand.paths[0]} holds {images.shape}, {cand.paths[1]} holds {labels.shape}: "
                            f"they do not pair up as (N, H, W) images and (N,) labels")
        if images.shape[1:] != IMAGE_SHAPES[name][:2]:
            raise DataError(f"{cand.paths[0]} holds images of {images.shape[1]}x{images.shape[2]}, but {name}'s are "
                            f"{IMAGE_SHAPES[name][0]}x{IMAGE_SHAPES[name][1]}: it is not a copy of {name}. Replace it.")
        if labels.size and labels.max() >= len(classes):
            raise DataError(f"{cand.paths[1]} has label {labels.max()} but {name} has {len(classes)} classes")
        return images[..., None], labels.astype(np.int64), None, "original", meta
    if cand.kind == "cifar-py":
        blobs = [(str(p), read_capped(p, MAX_MEMBER_BYTES, "CIFAR-10 batch")) for p in cand.paths]
        images, labels = read_cifar_batches(blobs)
        return images, labels, None, "original", meta
    if cand.kind == "cifar-tgz":
        archive = cand.paths[0]
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
        images, labels = read_cifar_batches(blobs)
        return images, labels, None, "original", meta
    # image folders (CIFAR-10 JPEG copy, CINIC-10)
    keep = None
    skip_unreadable = name == "cinic10" and split == "test-imagenet"
    folder_split = "test" if split == "test-imagenet" else split
    if skip_unreadable:
        keep = lambda c, f: "cifar" not in f.lower()  # noqa: E731 - CINIC names CIFAR-derived files cifar10-*
    size = IMAGE_SHAPES[name][:2]
    if cand.kind == "folder":
        images, labels, files, unreadable = read_image_folder(cand.paths[0], classes, keep, skip_unreadable, size)
    else:
        images, labels, files, unreadable = read_image_tar(cand.paths[0], folder_split, classes, keep, skip_unreadable,
                                                           size)
    order = "folder"
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
        if meta["dropped_duplicates"] or unreadable:
            warnings.warn(f"CINIC-10 test-imagenet: dropped {meta['dropped_duplicates']} exact duplicates and "
                          f"{len(unreadable)} unreadable files", stacklevel=3)
    if cand.index_map is not None:
        perm = _read_index_map(cand.index_map, files)
        images, labels, files = images[perm], labels[perm], files[perm]
        order = "original"
        uncertain = cand.index_map.parent / "uncertain_indices.npy"
        if uncertain.is_file():
            meta["uncertain_indices"] = read_npy(uncertain, MAX_MEMBER_BYTES).astype(np.int64)
    return images, labels, files, order, meta


# --------------------------------------------------------------------------- cache
def _cache_dir() -> Path:
    """``$KDLIB_CACHE``, else the project's ``data/cache`` (the checkout's, whatever the working folder; the
    working folder's ``data/cache`` for an installed kdlib). Never ``$KDLIB_DATA`` or a ``root`` passed in:
    those are dataset folders, only read."""
    env = os.environ.get("KDLIB_CACHE")
    if env:
        return Path(env)
    return _project_root() / "data" / "cache"


def _project_root() -> Path:
    """The checkout kdlib runs from (it holds grid.yaml), else the working folder (an installed kdlib)."""
    project = Path(__file__).resolve().parents[1]
    return project if (project / "grid.yaml").is_file() else Path.cwd()


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


def _atomic_savez(path: Path, **arrays):
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f"{path.name}.pid{os.getpid()}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            np.savez(f, **arrays)
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


# image shape (H, W, C) of every dataset: a cache or a copy of another size is not that dataset
IMAGE_SHAPES = {"cifar10": (32, 32, 3), "cinic10": (32, 32, 3), "mnist": (28, 28, 1), "fashion-mnist": (28, 28, 1)}
# images of every official split, and of its smallest class (MNIST's classes differ in size; test-imagenet
# is CINIC-10's 7,000 ImageNet images per class before exact duplicates are dropped): the bounds on subsets
# and batch sizes that kdlib.gridcheck derives from the data
SPLIT_SIZES = {
    "cifar10": {"train": (50_000, 5_000), "test": (10_000, 1_000)},
    "cinic10": {"train": (90_000, 9_000), "valid": (90_000, 9_000), "test": (90_000, 9_000),
                "test-imagenet": (70_000, 7_000)},
    "mnist": {"train": (60_000, 5_421), "test": (10_000, 892)},
    "fashion-mnist": {"train": (60_000, 6_000), "test": (10_000, 1_000)},
}


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


def dataset_available(name: str, split: str, root=None) -> bool:
    """Whether a copy of ``name``/``split`` is on this machine (no decoding, no download)."""
    name = _canonical(name)
    return _locate(name, split, root)[0] is not None


def load_dataset(name: str, split: str, root=None, download: bool = False, subset: int | None = None,
                 seed: int = 0, verify: bool = True, cache: bool = True) -> Dataset:
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


# --------------------------------------------------------------------------- downloads
def _fetch_url(url: str, dest: Path, timeout: float = 60.0):
    """Stream ``url`` into ``dest`` (a temporary path chosen by the caller)."""
    with urllib.request.urlopen(url, timeout=timeout) as response, open(dest, "wb") as out:
        shutil.copyfileobj(response, out)


def download_dataset(name: str, dest) -> list[Path]:
    """Fetch the official files of ``name`` into ``dest``, verifying known checksums.

    Each file is written to a temporary name and renamed only after its checksum matched.
    """
    if name not in DOWNLOADS:
        raise ValueError(f"no download is known for {name!r}; known: {sorted(DOWNLOADS)}")
    dest = Path(dest)
    dest.mkdir(parents=True, exist_ok=True)
    done = []
    for url, filename in DOWNLOADS[name]:
        target = dest / filename
        if target.is_file():
            continue
        fd, tmp = tempfile.mkstemp(prefix=filename + ".", suffix=".part", dir=dest)
        os.close(fd)
        tmp = Path(tmp)
        try:
            try:
                _fetch_url(url, tmp)
            except OSError as err:
                raise DataError(f"download of {url} failed ({err}). Without network, copy {filename} into {dest} "
                                f"by hand.") from None
            _verify(name, tmp, filename)
            os.replace(tmp, target)
        finally:
            if tmp.exists():
                tmp.unlink()
        done.append(target)
    return done


# --------------------------------------------------------------------------- CIFAR-10H
def _human_roots(root):
    bases = _user_roots(root)
    return [d for b in bases for d in (b, b / "cifar10h", b / "cifar-10h")]


def load_human_labels(root=None, counts: bool = False, verify: bool = True, download: bool = False):
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


def human_labels_for(dataset: Dataset, human: np.ndarray | None = None, root=None) -> np.ndarray:
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
