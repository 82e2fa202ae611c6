"""Writes that are never half-done: a temporary file in the target's folder, renamed into place."""
from __future__ import annotations

import errno
import os
import tempfile
from pathlib import Path

__all__ = ["atomic_write_text", "atomic_write_bytes"]


def _check_writable(folder: Path):
    try:
        folder.mkdir(parents=True, exist_ok=True)
        fd, probe = tempfile.mkstemp(dir=folder, prefix=".write-probe")
        os.close(fd)
        os.unlink(probe)
    except OSError as err:
        raise PermissionError(
            f"cannot write to {folder} ({err.strerror}). Choose a writable run store with --runs DIR or $KDLIB_RUNS."
        ) from None


def atomic_write_bytes(path: Path, data: bytes):
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=path.name + ".", suffix=".tmp", dir=path.parent)
    try:
        try:
            with os.fdopen(fd, "wb") as f:
                f.write(data)
                f.flush()
                os.fsync(f.fileno())
        except OSError as err:
            if err.errno in (errno.ENOSPC, errno.EDQUOT):
                raise OSError(err.errno, f"cannot write {path}: the disk is full or the quota is reached. Nothing "
                                         f"was half-written; free space on {path.parent} or choose another run "
                                         f"store (--runs DIR or $KDLIB_RUNS), then run again") from None
            raise
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def atomic_write_text(path: Path, text: str):
    atomic_write_bytes(path, text.encode())
