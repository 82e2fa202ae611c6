"""The run store: one folder per fully resolved config, found again by the config's hash.

``runs/<profile>/<kind>/<run_id>/`` holds ``config.json``, ``history.csv``, ``metrics.json``,
``predictions.npz``, ``checkpoint.pt``, ``provenance.json`` and, written last, ``DONE``. A folder
without ``DONE`` is never read as a result; asking for its config again resumes it from its
checkpoint. Every file is written to a temporary name and renamed. A file lock keeps two
processes from training the same run at once.
"""
from __future__ import annotations

import csv
import errno
import fcntl
import hashlib
import io
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from contextlib import contextmanager
from pathlib import Path

import numpy as np

__all__ = ["RunStore", "Run", "run_id", "canonical_json", "atomic_write_text", "atomic_write_bytes",
           "RunLockedError", "provenance"]

DONE = "DONE"


def canonical_json(config: dict) -> str:
    return json.dumps(config, sort_keys=True, separators=(",", ":"), default=str)


def run_id(config: dict) -> str:
    """12 hex digits of the SHA-256 of the canonical config."""
    return hashlib.sha256(canonical_json(config).encode()).hexdigest()[:12]


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
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def atomic_write_text(path: Path, text: str):
    atomic_write_bytes(path, text.encode())


class RunLockedError(RuntimeError):
    """Another process is training this run."""


class Run:
    """One run folder."""

    def __init__(self, folder: Path, config: dict):
        self.folder = Path(folder)
        self.config = config
        self.id = self.folder.name

    def __repr__(self):
        return f"Run({self.folder}, done={self.done})"

    @property
    def done(self) -> bool:
        return (self.folder / DONE).is_file()

    @property
    def checkpoint(self) -> Path:
        return self.folder / "checkpoint.pt"

    def path(self, name: str) -> Path:
        return self.folder / name

    def write_json(self, name: str, obj):
        atomic_write_text(self.folder / name, json.dumps(obj, indent=2, sort_keys=True, default=_json_default) + "\n")

    def read_json(self, name: str):
        return json.loads((self.folder / name).read_text())

    def write_history(self, history: list[dict]):
        buf = io.StringIO()
        if history:
            writer = csv.DictWriter(buf, fieldnames=list(history[0]))
            writer.writeheader()
            writer.writerows(history)
        atomic_write_text(self.folder / "history.csv", buf.getvalue())

    def read_history(self) -> list[dict]:
        with open(self.folder / "history.csv") as f:
            return [{k: float(v) for k, v in row.items()} for row in csv.DictReader(f)]

    def write_arrays(self, name: str, **arrays):
        buf = io.BytesIO()
        np.savez_compressed(buf, **arrays)
        atomic_write_bytes(self.folder / name, buf.getvalue())

    def read_arrays(self, name: str) -> dict:
        with np.load(self.folder / name, allow_pickle=False) as z:
            return {k: z[k] for k in z.files}

    def mark_done(self):
        atomic_write_text(self.folder / DONE, time.strftime("%Y-%m-%dT%H:%M:%S%z") + "\n")

    def record_failure(self, err: BaseException):
        self.write_json("failure.json", {"error": type(err).__name__, "message": str(err),
                                         "time": time.strftime("%Y-%m-%dT%H:%M:%S%z")})

    @contextmanager
    def lock(self, wait: bool = True, timeout: float | None = None):
        """Hold an exclusive lock on this run; ``wait=False`` raises RunLockedError if taken."""
        self.folder.mkdir(parents=True, exist_ok=True)
        fh = open(self.folder / ".lock", "a+")
        t0 = time.monotonic()
        try:
            while True:
                try:
                    fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    break
                except OSError as err:
                    if err.errno not in (errno.EAGAIN, errno.EACCES):
                        raise
                    if not wait or (timeout is not None and time.monotonic() - t0 > timeout):
                        raise RunLockedError(
                            f"run {self.folder} is being trained by another process; wait for it to finish, "
                            f"or stop that process (its lock is released when it exits)"
                        ) from None
                    time.sleep(0.5)
            yield self
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)
            fh.close()


def _json_default(o):
    if isinstance(o, (np.integer,)):
        return int(o)
    if isinstance(o, (np.floating,)):
        return float(o)
    if isinstance(o, np.ndarray):
        return o.tolist()
    if isinstance(o, Path):
        return str(o)
    raise TypeError(f"not JSON serialisable: {type(o).__name__}")


class RunStore:
    """``root/<profile>/<kind>/<run_id>/``. The root is ``runs`` unless ``root`` or ``$KDLIB_RUNS`` says otherwise."""

    def __init__(self, root=None, profile: str = "quick"):
        self.root = Path(root or os.environ.get("KDLIB_RUNS", "runs"))
        self.profile = profile

    def run(self, config: dict) -> Run:
        kind = config.get("kind")
        if kind not in ("teacher", "student"):
            raise ValueError(f"config kind must be 'teacher' or 'student', got {kind!r}")
        return Run(self.root / self.profile / kind / run_id(config), config)

    def ensure_writable(self):
        """Raise PermissionError naming the fix when the store cannot be written."""
        _check_writable(self.root / self.profile)

    def prepare(self, run: Run):
        """Create the folder and write config.json (after checking the store is writable)."""
        self.ensure_writable()
        run.folder.mkdir(parents=True, exist_ok=True)
        for stale in run.folder.glob("*.tmp"):  # left by a process killed mid-write; never a result
            stale.unlink()
        if not (run.folder / "config.json").is_file():
            run.write_json("config.json", run.config)

    def runs(self, kind: str | None = None, done_only: bool = True) -> list[Run]:
        base = self.root / self.profile
        kinds = [kind] if kind else ["teacher", "student"]
        out = []
        for k in kinds:
            for folder in sorted((base / k).glob("*")) if (base / k).is_dir() else []:
                if (folder / "config.json").is_file() and (not done_only or (folder / DONE).is_file()):
                    out.append(Run(folder, json.loads((folder / "config.json").read_text())))
        return out


def _git(*args) -> str | None:
    try:
        return subprocess.run(["git", *args], capture_output=True, text=True, timeout=10,
                              cwd=Path(__file__).resolve().parent).stdout.strip() or None
    except (OSError, subprocess.SubprocessError):
        return None


def provenance(device, datasets: list[dict], wall_seconds: dict) -> dict:
    import torch

    versions = {"python": sys.version.split()[0], "torch": torch.__version__, "numpy": np.__version__}
    try:
        import torchvision

        versions["torchvision"] = torchvision.__version__
    except ImportError:  # pragma: no cover
        pass
    device = str(device)
    name = torch.cuda.get_device_name(device) if device.startswith("cuda") else (platform.processor() or platform.machine())
    status = _git("status", "--porcelain")
    return {
        "git_commit": _git("rev-parse", "HEAD"),
        "git_dirty": bool(status) if status is not None else None,
        "versions": versions,
        "device": device,
        "device_name": name,
        "cpus": os.cpu_count(),
        "host": platform.node(),
        "datasets": datasets,
        "wall_seconds": wall_seconds,
        "time": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }
