"""Image folders and tar archives of images (the CIFAR-10 JPEG copy, CINIC-10): bytes in, uint8 out."""
from __future__ import annotations

import io
import tarfile
import warnings
import zlib
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from .formats import (
    MAX_ARCHIVE_BYTES,
    MAX_IMAGE_BYTES,
    MAX_IMAGE_PIXELS,
    MAX_MEMBER_BYTES,
    MAX_MEMBERS,
    DataError,
    _read_chunks,
    _too_big,
    read_capped,
)

if TYPE_CHECKING:  # names for annotations only
    from collections.abc import Callable, Sequence


__all__ = ["read_image_folder", "read_image_tar", "decode_image", "IMAGE_SUFFIXES", "tar_members", "read_member"]


IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp")


# --------------------------------------------------------------------------- image folders
# what the readers return: images (N, H, W, C) uint8, labels (N,) int64, file names (N,), unreadable files
ImageRows = tuple[np.ndarray, np.ndarray, np.ndarray, list[str]]


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
            with Image.open(io.BytesIO(raw)) as im:  # reads the header only: nothing decoded yet
                pixels = im.width * im.height
                if pixels > MAX_IMAGE_PIXELS:
                    raise DataError(f"image {where} declares {im.width}x{im.height} = {pixels:,} pixels in "
                                    f"{len(raw):,} bytes, more than the cap of {MAX_IMAGE_PIXELS:,} pixels (the "
                                    f"datasets' images are 32x32): a decompression bomb or not a dataset image; "
                                    f"nothing was decoded. Replace the file.")
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
    return read_capped(p, MAX_IMAGE_BYTES, "image file")


def read_image_folder(folder: Path | str, classes: Sequence[str], keep: Callable[[str, str], bool] | None = None,
                      skip_unreadable: bool = False, size: tuple[int, int] | None = None) -> ImageRows:
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


def tar_members(tar: tarfile.TarFile, archive: Path | str, max_members: int = MAX_MEMBERS,
                max_bytes: int = MAX_ARCHIVE_BYTES) -> list:
    """The regular-file members of an open tarball, its headers walked one by one: at most ``max_members``
    entries declaring at most ``max_bytes`` in all, and, in an uncompressed tarball, every member's data
    within the file (a header may claim any size; a compressed one is checked as it is read)."""
    archive = Path(archive)
    real = None if _is_compressed(archive) else archive.stat().st_size
    members, count, declared = [], 0, 0
    while True:
        m = tar.next()
        if m is None:
            return members
        count += 1
        declared += m.size
        if count > max_members:
            raise DataError(f"{archive} holds more than {max_members:,} entries (CINIC-10, the largest dataset "
                            f"archive, has about 270,000); it is not a dataset archive. Replace it.")
        if declared > max_bytes:
            raise _too_big("its members declare", archive, declared, max_bytes,
                           "Delete it and fetch it again.")
        if real is not None and m.offset_data + m.size > real:
            raise DataError(f"{archive}: member {m.name} claims {m.size:,} bytes at offset {m.offset_data:,}, but the "
                            f"archive holds only {real:,} bytes; it is truncated or hostile, and nothing of that size "
                            f"was allocated. Delete it and fetch it again.")
        if m.isfile():
            members.append(m)


def _is_compressed(archive: Path) -> bool:
    with open(archive, "rb") as f:
        head = f.read(6)
    return head[:2] == b"\x1f\x8b" or head[:3] == b"BZh" or head == b"\xfd7zXZ\x00"


def read_member(tar: tarfile.TarFile, member: tarfile.TarInfo, archive: Path | str, cap: int = MAX_MEMBER_BYTES,
                what: str = "member") -> bytes:
    """One member's bytes: its declared size checked against ``cap`` first, then read in chunks (a member
    of a compressed tarball that claims more than the stream holds costs only what is there)."""
    if member.size > cap:
        raise _too_big(f"{what} {member.name} declares", archive, member.size, cap, "Delete it and fetch it again.")
    try:
        f = tar.extractfile(member)
        data = _read_chunks(f, member.size)
    except (tarfile.TarError, OSError, EOFError, zlib.error) as err:
        raise DataError(f"cannot read {member.name} from {archive}: {err}. The archive is truncated or corrupt; "
                        f"fetch it again.") from None
    if len(data) != member.size:
        raise DataError(f"{archive}: member {member.name} declares {member.size:,} bytes but the archive ends after "
                        f"{len(data):,}; it is truncated. Fetch it again.")
    return bytes(data)


def read_image_tar(archive: Path | str, split: str, classes: Sequence[str],
                   keep: Callable[[str, str], bool] | None = None, skip_unreadable: bool = False,
                   size: tuple[int, int] | None = None) -> ImageRows:
    """Read members ``[prefix/]<split>/<class>/<file>`` of a tarball (any compression)."""
    archive = Path(archive)
    try:
        tar = tarfile.open(archive, "r:*")
        members = tar_members(tar, archive)
    except DataError:
        raise
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
            return lambda: read_member(tar, member, archive, MAX_IMAGE_BYTES, "image member")

        entries = ((c, f, reader(m)) for (c, f), m in picked.items())
        try:
            return _collect(entries, classes, str(archive), keep, skip_unreadable, size)
        except (tarfile.TarError, EOFError, zlib.error) as err:
            raise DataError(f"archive {archive} is truncated or corrupt ({err}); fetch it again.") from None
