"""Readers for the on-disk formats of the paper's datasets: bytes in, uint8 arrays out.

* IDX (MNIST, Fashion-MNIST), raw or gzip-compressed;
* CIFAR-10's pickled python batches, unpickled with an allow-list of types;
* ImageFolder copies (``<split>/<class>/<file>``) as folders or tarballs, e.g. the CIFAR-10
  JPEG copy and CINIC-10.

Every reader raises :class:`DataError` naming the file and the fix when a file is corrupt,
truncated or not in the expected format. The resolver in :mod:`kdlib.data` decides which file
to read; this module only reads.
"""
from __future__ import annotations

import gzip
import hashlib
import io
import math
import pickle
import struct
import tarfile
import warnings
import zlib
from pathlib import Path

import numpy as np

__all__ = [
    "DataError",
    "read_idx",
    "read_cifar_batches",
    "read_image_folder",
    "read_image_tar",
    "decode_image",
    "file_digest",
    "IMAGE_SUFFIXES",
    "MAX_IDX_BYTES",
    "MAX_IMAGE_BYTES",
    "MAX_MEMBER_BYTES",
]

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp")


class DataError(ValueError):
    """A dataset file is missing, corrupt, of the wrong shape or checksum."""


def file_digest(path, algorithm: str = "sha256", decompress_gzip: bool = False) -> str:
    """Hex digest of a file (of its gzip payload when ``decompress_gzip``)."""
    h = hashlib.new(algorithm)
    opener = gzip.open if decompress_gzip else open
    try:
        with opener(path, "rb") as f:
            for chunk in iter(lambda: f.read(1 << 20), b""):
                h.update(chunk)
    except (OSError, EOFError, zlib.error) as err:
        raise DataError(f"cannot read {path}: {err}. The file is corrupt or truncated; delete it and fetch it again.") from None
    return h.hexdigest()


# --------------------------------------------------------------------------- IDX
_IDX_DTYPES = {0x08: np.uint8, 0x09: np.int8, 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}


MAX_IDX_BYTES = 1 << 30  # 1 GiB of payload: MNIST's largest file holds 47 MB
MAX_IMAGE_BYTES = 16 << 20  # one encoded image (a CIFAR JPEG is ~1 KB, a CINIC PNG ~3 KB)
MAX_MEMBER_BYTES = 256 << 20  # one member of a dataset archive read into memory (a CIFAR batch is 31 MB)


def read_idx(path, max_bytes: int = MAX_IDX_BYTES) -> np.ndarray:
    """Read an IDX file (``.gz`` or raw): magic 0x0000 <type> <ndim>, big-endian dims, data.

    The header is read first and the declared size checked (in Python integers, which do not
    overflow) against ``max_bytes`` before anything is allocated; the payload is then streamed,
    so a gzip that expands far beyond its header's promise stops at the promise."""
    path = Path(path)
    try:
        opener = gzip.open if path.suffix == ".gz" else open
        with opener(path, "rb") as f:
            head = f.read(4)
            if len(head) < 4 or head[0] != 0 or head[1] != 0 or head[2] not in _IDX_DTYPES:
                raise DataError(f"{path} is not an IDX file (bad magic number {head.hex() or 'empty'}); replace it.")
            ndim = head[3]
            raw_dims = f.read(4 * ndim)
            if len(raw_dims) < 4 * ndim:
                raise DataError(f"{path}: IDX header truncated; replace the file.")
            dims = struct.unpack(f">{ndim}I", raw_dims)
            dtype = np.dtype(_IDX_DTYPES[head[2]])
            expected = math.prod(dims) * dtype.itemsize
            if expected > max_bytes:
                raise DataError(f"{path}: IDX header declares dimensions {dims} ({expected:,} bytes), more than the "
                                f"{max_bytes:,} bytes any dataset of the paper needs; the file is corrupt or hostile. "
                                f"Replace it.")
            data = f.read(expected + 1)  # one byte more: trailing data means a wrong header
    except DataError:
        raise
    except (OSError, EOFError, zlib.error) as err:
        raise DataError(f"cannot read IDX file {path}: {err}. It is corrupt or truncated; replace it.") from None
    if len(data) != expected:
        raise DataError(
            f"{path}: IDX header promises {dims} ({expected} bytes of data) but the file holds "
            f"{len(data) if len(data) <= expected else 'more'}; it is truncated or corrupt. Replace it."
        )
    return np.frombuffer(data, dtype=dtype).reshape(dims).astype(dtype.newbyteorder("="))


# --------------------------------------------------------------------------- CIFAR-10 pickles
class _SafeUnpickler(pickle.Unpickler):
    """Only what CIFAR's batches contain: dicts, lists, bytes, numpy arrays."""

    _ALLOWED = {
        ("numpy.core.multiarray", "_reconstruct"),
        ("numpy._core.multiarray", "_reconstruct"),
        ("numpy", "ndarray"),
        ("numpy", "dtype"),
        ("_codecs", "encode"),
        ("copy_reg", "_reconstructor"),
        ("copyreg", "_reconstructor"),
        ("__builtin__", "object"),
        ("builtins", "object"),
    }

    def find_class(self, module, name):
        if (module, name) not in self._ALLOWED:
            raise pickle.UnpicklingError(f"refusing to unpickle {module}.{name}")
        return super().find_class(module, name)


def _unpickle(raw: bytes, where: str) -> dict:
    try:
        obj = _SafeUnpickler(io.BytesIO(raw), encoding="bytes").load()
    except Exception as err:  # noqa: BLE001 - any unpickling failure means a bad file
        raise DataError(f"{where} is not a valid CIFAR-10 batch ({err}); replace the file.") from None
    if not isinstance(obj, dict):
        raise DataError(f"{where} is not a CIFAR-10 batch (no dict inside); replace the file.")
    return {k.decode() if isinstance(k, bytes) else k: v for k, v in obj.items()}


def _batch_arrays(batch: dict, where: str):
    if "data" not in batch or "labels" not in batch:
        raise DataError(f"{where} lacks 'data' or 'labels'; it is not a CIFAR-10 batch.")
    data = np.asarray(batch["data"], dtype=np.uint8)
    labels = np.asarray(batch["labels"], dtype=np.int64)
    if data.ndim != 2 or data.shape[1] != 3072 or data.shape[0] != labels.shape[0]:
        raise DataError(f"{where}: data of shape {data.shape} with {labels.shape[0]} labels; expected (N, 3072).")
    return data.reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1), labels


def read_cifar_batches(blobs: list[tuple[str, bytes]]):
    """Decode CIFAR-10 python batches given as ``(name, raw bytes)``; checksums are the caller's job."""
    images, labels = [], []
    for where, raw in blobs:
        x, y = _batch_arrays(_unpickle(raw, where), where)
        images.append(x)
        labels.append(y)
    return np.concatenate(images), np.concatenate(labels)


# --------------------------------------------------------------------------- image folders
def decode_image(raw: bytes, where: str, channels: int = 3, size: tuple[int, int] | None = None) -> np.ndarray:
    """Decode one image to uint8 (H, W, C). ``size`` (H, W): refuse another size from the header,
    before the pixels are decoded. Every decoder error, a decompression bomb included, is a
    DataError naming the file."""
    from PIL import Image

    if len(raw) > MAX_IMAGE_BYTES:
        raise DataError(f"image {where} is {len(raw):,} bytes, more than {MAX_IMAGE_BYTES:,}; it is not a dataset image")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(raw)) as im:
                if size is not None and (im.height, im.width) != tuple(size):
                    raise DataError(f"image {where} is {im.width}x{im.height}, but the dataset's images are "
                                    f"{size[1]}x{size[0]}: this is not a copy of that dataset (or it was resized). "
                                    f"Point the loader at an unmodified copy.")
                im = im.convert("RGB" if channels == 3 else "L")
                arr = np.asarray(im, dtype=np.uint8)
    except DataError:
        raise
    except Exception as err:  # noqa: BLE001 - PIL raises many types (DecompressionBombError, struct.error, ...)
        raise DataError(f"cannot decode image {where}: {type(err).__name__}: {err}") from None
    return arr[..., None] if arr.ndim == 2 else arr


def _collect(entries, classes, where, keep=None, skip_unreadable=False, size=None):
    """entries: iterable of (class_name, file_name, loader()) -> arrays, sorted by (class, file)."""
    index = {c: i for i, c in enumerate(classes)}
    items = sorted((c, f, load) for c, f, load in entries if c in index and (keep is None or keep(c, f)))
    images, labels, files, unreadable = [], [], [], []
    for c, f, load in items:
        rel = f"{c}/{f}"
        try:
            images.append(decode_image(load(), f"{where}:{rel}", size=size))
        except DataError as err:
            if not skip_unreadable or "this is not a copy" in str(err):
                raise DataError(f"{err}. The archive or folder {where} is damaged or not this dataset; "
                                f"fetch it again.") from None
            unreadable.append(rel)
            continue
        labels.append(index[c])
        files.append(rel)
    if not images:
        raise DataError(f"no images of classes {classes} found in {where}")
    shapes = {im.shape for im in images}
    if len(shapes) != 1:
        raise DataError(f"images in {where} have different shapes {sorted(shapes)[:3]}; expected one size.")
    return np.stack(images), np.asarray(labels, dtype=np.int64), np.asarray(files), unreadable


def _check_classes(found: set, classes, where):
    missing = [c for c in classes if c not in found]
    extra = sorted(found - set(classes))
    if missing or extra:
        raise DataError(
            f"{where} has class folders {sorted(found)}, expected exactly {list(classes)}"
            + (f"; missing {missing}" if missing else "")
            + (f"; unexpected {extra}" if extra else "")
            + ". Point the loader at an unmodified copy."
        )


def _read_file(p: Path) -> bytes:
    try:
        if p.stat().st_size > MAX_IMAGE_BYTES:
            raise DataError(f"{p} is {p.stat().st_size:,} bytes, more than {MAX_IMAGE_BYTES:,}; not a dataset image")
        return p.read_bytes()
    except OSError as err:
        raise DataError(f"cannot read {p} ({err.strerror or err}); make it readable or replace it") from None


def read_image_folder(folder, classes, keep=None, skip_unreadable=False, size=None):
    """Read ``folder/<class>/<file>`` for the given class names (folder order: by class, then file).
    ``size`` (H, W): every image must have it (checked from each header before decoding)."""
    folder = Path(folder)
    found = {p.name for p in folder.iterdir() if p.is_dir()}
    _check_classes(found, classes, folder)
    entries = (
        (c, p.name, (lambda p=p: _read_file(p)))
        for c in classes
        for p in (folder / c).iterdir()
        if p.suffix.lower() in IMAGE_SUFFIXES
    )
    return _collect(entries, classes, str(folder), keep, skip_unreadable, size)


def read_image_tar(archive, split: str, classes, keep=None, skip_unreadable=False, size=None):
    """Read members ``[prefix/]<split>/<class>/<file>`` of a tarball (any compression)."""
    archive = Path(archive)
    try:
        tar = tarfile.open(archive, "r:*")
        members = [m for m in tar.getmembers() if m.isfile()]
    except (tarfile.TarError, OSError, EOFError, zlib.error) as err:
        reason = " ".join(str(err).split())  # tarfile lists every method it tried, one per line
        raise DataError(
            f"cannot read archive {archive}: {reason}. It is corrupt or truncated; delete it and fetch it again."
        ) from None
    with tar:
        picked = {}
        for m in members:
            parts = m.name.replace("\\", "/").split("/")
            if len(parts) >= 3 and parts[-3] == split and Path(parts[-1]).suffix.lower() in IMAGE_SUFFIXES:
                picked[(parts[-2], parts[-1])] = m
        _check_classes({c for c, _ in picked}, classes, f"{archive} ({split}/)")

        def reader(member):
            def load():
                if member.size > MAX_IMAGE_BYTES:
                    raise DataError(f"{archive}: member {member.name} declares {member.size:,} bytes, more than "
                                    f"{MAX_IMAGE_BYTES:,}; not a dataset image")
                try:
                    return tar.extractfile(member).read()
                except (tarfile.TarError, OSError, EOFError, zlib.error) as err:
                    raise DataError(f"cannot read {member.name} from {archive}: {err}") from None

            return load

        entries = ((c, f, reader(m)) for (c, f), m in picked.items())
        try:
            return _collect(entries, classes, str(archive), keep, skip_unreadable, size)
        except (tarfile.TarError, EOFError, zlib.error) as err:
            raise DataError(f"archive {archive} is truncated or corrupt ({err}); fetch it again.") from None

