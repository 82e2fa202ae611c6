"""Readers for the on-disk formats of the paper's datasets: bytes in, uint8 arrays out.

* IDX (MNIST, Fashion-MNIST), raw or gzip-compressed;
* CIFAR-10's pickled python batches, unpickled with an allow-list of types;
* ImageFolder copies (``<split>/<class>/<file>``) as folders or tarballs, e.g. the CIFAR-10
  JPEG copy and CINIC-10.

Every reader raises :class:`DataError` naming the file and the fix when a file is corrupt,
truncated or not in the expected format. The resolver in :mod:`kdlib.data` decides which file
to read; this module only reads.

No reader allocates what a file merely claims. Each size a file declares (an IDX header's
dimensions, an image's width and height, a tar member's size, the shape in a ``.npy`` header
inside an ``.npz``) is checked, before anything of that size is allocated, against what the file
can really hold (its size on disk; for a deflate stream, at most :data:`DEFLATE_MAX_RATIO` times
its compressed size) and against a stated cap (the ``MAX_*`` constants below, each far beyond the
largest dataset of the paper); compressed payloads are then read in chunks, so memory grows only
with the bytes really there. The error names the file, the claim, the cap and the fix.
"""
from __future__ import annotations

import gzip
import hashlib
import io
import math
import pickle
import struct
import zipfile
import zlib
from pathlib import Path

import numpy as np

__all__ = ["DataError", "read_idx", "read_cifar_batches", "file_digest", "read_npy", "read_npz", "read_capped",
           "MAX_IDX_BYTES", "MAX_IMAGE_BYTES", "MAX_IMAGE_PIXELS", "MAX_MEMBER_BYTES", "MAX_MEMBERS",
           "MAX_ARCHIVE_BYTES", "MAX_NPZ_BYTES", "DEFLATE_MAX_RATIO"]


class DataError(ValueError):
    """A dataset file is missing, corrupt, of the wrong shape or checksum."""


def file_digest(path: Path | str, algorithm: str = "sha256", decompress_gzip: bool = False) -> str:
    """Hex digest of a file (of its gzip payload when ``decompress_gzip``: the payloads checksummed so are
    IDX files, so one that decompresses past MAX_IDX_BYTES is refused rather than hashed for minutes)."""
    h = hashlib.new(algorithm)
    opener = gzip.open if decompress_gzip else open
    seen = 0
    try:
        with opener(path, "rb") as f:
            for chunk in iter(lambda: f.read(1 << 20), b""):
                h.update(chunk)
                seen += len(chunk)
                if decompress_gzip and seen > MAX_IDX_BYTES:
                    raise _too_big("decompresses to at least", path, seen, MAX_IDX_BYTES)
    except (OSError, EOFError, zlib.error) as err:
        raise DataError(f"cannot read {path}: {err}. The file is corrupt or truncated; delete it and fetch it again.") from None
    return h.hexdigest()


# --------------------------------------------------------------------------- caps
# Stated caps on what a file may claim, each far beyond the paper's largest dataset file, so that no
# real copy comes near them while a hostile or corrupt file is refused before it costs memory.
MAX_IDX_BYTES = 1 << 30  # 1 GiB of payload: MNIST's largest file holds 47 MB


MAX_IMAGE_BYTES = 16 << 20  # one encoded image (a CIFAR JPEG is ~1 KB, a CINIC PNG ~3 KB)


MAX_IMAGE_PIXELS = 1 << 24  # one decoded image: 4096 x 4096 (the datasets' are 32 x 32; PIL's own bomb limit is 89 M)


MAX_MEMBER_BYTES = 256 << 20  # one member of a dataset archive read into memory (a CIFAR batch is 31 MB)


MAX_MEMBERS = 1_000_000  # entries of one archive (CINIC-10.tar.gz, the largest, has about 270,000)


MAX_ARCHIVE_BYTES = 16 << 30  # what the members of one archive declare in all (CINIC-10 unpacks to about 1 GB)


MAX_NPZ_BYTES = 2 << 30  # arrays of one .npz/.npy (the largest decoded split, CINIC-10 train, is 0.3 GB)


# deflate (gzip, zip) cannot expand its input more than about 1032-fold (a 258-byte match per 2 bits), so a
# deflated file of S bytes holds at most DEFLATE_MAX_RATIO * S bytes of payload, whatever its headers say
DEFLATE_MAX_RATIO = 1032


_CHUNK = 1 << 20


def _too_big(what: str, where, claim: int, cap: int, fix: str = "Replace the file.") -> DataError:
    return DataError(f"{where}: {what} {claim:,} bytes, more than the cap of {cap:,} bytes (far beyond any dataset "
                     f"of the paper); the file is corrupt or hostile, and nothing of that size was allocated. {fix}")


def _payload_limit(path: Path, compressed: bool) -> int:
    """The most payload bytes ``path`` can really hold: its size, or DEFLATE_MAX_RATIO times it if deflated."""
    size = path.stat().st_size
    return size * DEFLATE_MAX_RATIO if compressed else size


def _read_chunks(f, n: int) -> bytearray:
    """Up to ``n`` bytes of ``f``, read in chunks: memory grows with the bytes really there, not with ``n``."""
    buf = bytearray()
    while len(buf) < n:
        piece = f.read(min(_CHUNK, n - len(buf)))
        if not piece:
            break
        buf += piece
    return buf


def read_capped(path: Path | str, cap: int = MAX_MEMBER_BYTES, what: str = "file") -> bytes:
    """The bytes of a plain file whose size is checked against ``cap`` before it is read."""
    path = Path(path)
    try:
        size = path.stat().st_size
        if size > cap:
            raise _too_big(f"the {what} is", path, size, cap, "Point the loader at an unmodified copy.")
        with open(path, "rb") as f:
            return bytes(_read_chunks(f, size))
    except OSError as err:
        raise DataError(f"cannot read {path} ({err.strerror or err}); make it readable or replace it") from None


# --------------------------------------------------------------------------- IDX
_IDX_DTYPES = {0x08: np.uint8, 0x09: np.int8, 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}


def read_idx(path: Path | str, max_bytes: int = MAX_IDX_BYTES) -> np.ndarray:
    """Read an IDX file (``.gz`` or raw): magic 0x0000 <type> <ndim>, big-endian dims, data.

    The header is read first and the declared size checked (in Python integers, which do not
    overflow) against ``max_bytes`` and against what the file can hold (its size, or
    DEFLATE_MAX_RATIO times it for a ``.gz``) before anything is allocated; the payload is then
    read in chunks, so a gzip that expands far beyond its header's promise stops at the promise
    and one that falls short never costs the promised size."""
    path = Path(path)
    compressed = path.suffix == ".gz"
    try:
        limit = _payload_limit(path, compressed)
        opener = gzip.open if compressed else open
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
            if expected > limit:
                raise DataError(f"{path}: IDX header declares dimensions {dims} ({expected:,} bytes), but a "
                                f"{'gzip file' if compressed else 'file'} of {path.stat().st_size:,} bytes holds at "
                                f"most {limit:,}; it is truncated, corrupt or hostile. Replace it.")
            data = _read_chunks(f, expected + 1)  # one byte more: trailing data means a wrong header
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
    # CIFAR's data is one uint8 array, sized by the bytes of the pickle itself; a list, by contrast, can repeat
    # one memoised object a million times for two bytes each, and converting it would allocate all the copies
    if not isinstance(batch["data"], np.ndarray) or batch["data"].dtype != np.uint8:
        raise DataError(f"{where}: 'data' is {type(batch['data']).__name__} "
                        f"{getattr(batch['data'], 'dtype', '')}, not the uint8 array of a CIFAR-10 batch; replace the "
                        f"file.")
    data = batch["data"]
    if not isinstance(batch["labels"], (list, np.ndarray)) or len(batch["labels"]) != (data.shape[0] if data.ndim else -1):
        raise DataError(f"{where}: {type(batch['labels']).__name__} labels for data of shape {data.shape}; a CIFAR-10 "
                        f"batch has one label per row. Replace the file.")
    labels = np.asarray(batch["labels"], dtype=np.int64)
    if data.ndim != 2 or data.shape[1] != 3072 or data.shape[0] != labels.shape[0]:
        raise DataError(f"{where}: data of shape {data.shape} with {labels.shape[0]} labels; expected (N, 3072).")
    return data.reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1), labels


def read_cifar_batches(blobs: list[tuple[str, bytes]]) -> tuple[np.ndarray, np.ndarray]:
    """Decode CIFAR-10 python batches given as ``(name, raw bytes)``; checksums are the caller's job."""
    images, labels = [], []
    for where, raw in blobs:
        x, y = _batch_arrays(_unpickle(raw, where), where)
        images.append(x)
        labels.append(y)
    return np.concatenate(images), np.concatenate(labels)


# --------------------------------------------------------------------------- .npy / .npz
def _npy_header(f, where):
    """(shape, dtype) of the .npy stream ``f``, from its header alone (numpy caps the header's own length)."""
    try:
        version = np.lib.format.read_magic(f)
        if version == (1, 0):
            shape, _, dtype = np.lib.format.read_array_header_1_0(f)
        elif version == (2, 0):
            shape, _, dtype = np.lib.format.read_array_header_2_0(f)
        else:
            raise ValueError(f"npy format version {version} is not one numpy.save writes for these arrays")
    except (ValueError, OSError, EOFError, zlib.error, zipfile.BadZipFile, SyntaxError) as err:
        raise DataError(f"{where} is not a valid .npy array ({err}); replace the file.") from None
    if dtype.hasobject:
        raise DataError(f"{where} holds Python objects ({dtype}); only plain arrays are read. Replace the file.")
    return shape, dtype


def _claim(shape, dtype) -> int:
    return math.prod(shape) * dtype.itemsize  # Python integers: a hostile shape cannot overflow


def read_npy(path: Path | str, max_bytes: int = MAX_NPZ_BYTES) -> np.ndarray:
    """``np.load`` of a .npy file, after its header's shape was checked against the file's size and ``max_bytes``
    (numpy allocates the declared shape before it reads a byte)."""
    path = Path(path)
    try:
        with open(path, "rb") as f:
            shape, dtype = _npy_header(f, path)
            room = path.stat().st_size - f.tell()
    except OSError as err:
        raise DataError(f"cannot read {path} ({err.strerror or err}); make it readable or replace it") from None
    claim = _claim(shape, dtype)
    if claim > max_bytes:
        raise _too_big(f"its header declares an array of shape {shape} ({dtype}):", path, claim, max_bytes)
    if claim > room:
        raise DataError(f"{path}: its header declares an array of shape {shape} ({dtype}, {claim:,} bytes) but the "
                        f"file holds {room:,} bytes of data; it is truncated or hostile. Replace the file.")
    try:
        return np.load(path, allow_pickle=False)
    except (OSError, ValueError, EOFError) as err:
        raise DataError(f"cannot read {path}: {err}; replace the file") from None


def read_npz(path: Path | str | bytes | bytearray, max_bytes: int = MAX_NPZ_BYTES,
             where: str | Path | None = None) -> dict:
    """Every array of an .npz (a path, or its bytes named by ``where``) as a dict, after the zip's entries and
    each .npy header were checked before loading: an entry's stored size within the file, its stated size
    within what its compression can yield, the array its header declares within the entry, and all of them
    within ``max_bytes``."""
    if isinstance(path, (bytes, bytearray)):
        data = bytes(path)
        size, source, path = len(data), (lambda: io.BytesIO(data)), where or "<bytes>"
    else:
        path = Path(path)
        size, source = None, (lambda: path)
    try:
        size = path.stat().st_size if size is None else size
        with zipfile.ZipFile(source()) as zf:
            infos = zf.infolist()
            if len(infos) > 64:
                raise DataError(f"{path} holds {len(infos):,} entries; the .npz files read here hold a handful. "
                                f"Replace the file.")
            total = 0
            for info in infos:
                where = f"{path}:{info.filename}"
                if info.compress_type not in (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED):
                    raise DataError(f"{where}: compression method {info.compress_type} is not one numpy writes; "
                                    f"replace the file.")
                room = info.compress_size * (1 if info.compress_type == zipfile.ZIP_STORED else DEFLATE_MAX_RATIO)
                if info.compress_size > size or info.file_size > room:
                    raise DataError(f"{where}: the zip header claims {info.file_size:,} bytes from {info.compress_size:,} "
                                    f"stored, in a file of {size:,} bytes; it is truncated or hostile, and nothing of that "
                                    f"size was allocated. Replace the file.")
                if not info.filename.endswith(".npy"):
                    continue
                with zf.open(info) as f:
                    shape, dtype = _npy_header(f, where)
                    header = f.tell()
                claim = _claim(shape, dtype)
                total += claim
                if total > max_bytes:
                    raise _too_big(f"its arrays declare (at {info.filename}, shape {shape})", path, total, max_bytes)
                if claim > info.file_size - header:
                    raise DataError(f"{where}: its header declares an array of shape {shape} ({dtype}, {claim:,} bytes) "
                                    f"but the entry holds {info.file_size - header:,} bytes; the file is truncated or "
                                    f"hostile, and nothing of that size was allocated. Replace the file.")
        with np.load(source(), allow_pickle=False) as z:
            return {k: z[k] for k in z.files}
    except DataError:
        raise
    except (OSError, ValueError, EOFError, zlib.error, zipfile.BadZipFile, KeyError) as err:
        raise DataError(f"cannot read {path}: {type(err).__name__}: {err}; replace the file") from None
