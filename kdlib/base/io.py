"""Writes that are never half-done: :func:`atomic_path`, the one atomic write of kdlib.

Every file kdlib writes (run artifacts, records, checkpoints, caches, downloads, notebooks, benchmarks) is
written under a temporary name in its target's folder and renamed into place only once complete; on any
failure the temporary file is removed and whatever was at the target before is left as it was. A full
disk or quota is an :class:`OSError` (``ENOSPC``) that names the file and the fix.
"""
from __future__ import annotations

import errno
import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

__all__ = ["atomic_path", "atomic_write_bytes", "atomic_write_text", "disk_full", "check_writable", "RUN_STORE_FIX"]

RUN_STORE_FIX = "choose another run store (--runs DIR or $KDLIB_RUNS), then run again"
FULL = (errno.ENOSPC, errno.EDQUOT)


class _DiskFull(OSError):
    """An ENOSPC already explained: passed on as it is by an enclosing :func:`atomic_path`."""


def disk_full(path: Path, detail: str = "", fix: str = RUN_STORE_FIX) -> OSError:
    """The error of a write to ``path`` that found the disk full: ``errno.ENOSPC``, the file, and the fix."""
    detail = f" ({' '.join(str(detail).split())[:200]})" if detail else ""
    return _DiskFull(errno.ENOSPC, f"cannot write {path}: the disk is full or the quota is reached{detail}. Nothing "
                                   f"was half-written; free space on {Path(path).parent} or {fix}")


@contextmanager
def atomic_path(path: str | Path, suffix: str = ".tmp", pid: bool = False, fix: str = RUN_STORE_FIX,
                mode: int = 0o644) -> Iterator[Path]:
    """A temporary path next to ``path`` to write the whole file to; renamed to ``path`` when the block ends
    without error, removed when it raises. ``pid``: the writer's pid in the temporary name (so that a sweep can
    tell a live writer's file from a killed one's); ``fix``: what the disk-full error tells the reader to do."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    prefix = f"{path.name}.pid{os.getpid()}." if pid else f"{path.name}."
    fd, tmp = tempfile.mkstemp(prefix=prefix, suffix=suffix, dir=path.parent)
    os.close(fd)
    try:
        try:
            yield Path(tmp)
        except _DiskFull:
            raise
        except OSError as err:
            if err.errno in FULL:
                raise disk_full(path, "", fix) from None
            raise
        os.chmod(tmp, mode)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def atomic_write_bytes(path: str | Path, data: bytes, fix: str = RUN_STORE_FIX) -> None:
    """``data`` written to ``path`` whole, flushed to disk, or not at all."""
    with atomic_path(path, fix=fix) as tmp, open(tmp, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())


def atomic_write_text(path: str | Path, text: str, fix: str = RUN_STORE_FIX) -> None:
    """``text`` (UTF-8) written to ``path`` whole, or not at all."""
    atomic_write_bytes(path, text.encode(), fix)


def check_writable(folder: Path) -> None:
    """A :class:`PermissionError` naming ``folder`` and the fix when no file can be created in it."""
    try:
        folder.mkdir(parents=True, exist_ok=True)
        fd, probe = tempfile.mkstemp(dir=folder, prefix=".write-probe")
        os.close(fd)
        os.unlink(probe)
    except OSError as err:
        raise PermissionError(
            f"cannot write to {folder} ({err.strerror}). Choose a writable run store with --runs DIR or $KDLIB_RUNS."
        ) from None
