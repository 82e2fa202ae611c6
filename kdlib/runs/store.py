"""The run store: one folder per fully resolved config, found again by the config's hash.

``runs/<profile>/<kind>/<run_id>/`` holds ``config.json``, ``history.csv``, ``metrics.json``,
``predictions.npz``, ``checkpoint.pt``, ``provenance.json`` and, written last, ``DONE``. A folder
without ``DONE`` is never read as a result; asking for its config again resumes it from its
checkpoint. Every file is written to a temporary name and renamed. A file lock keeps two
processes from training the same run at once.

A store also reads *committed records* (``results/<profile>/<kind>/<run_id>/``, see
:mod:`kdlib.runs.compact`): finished runs kept in the repository without their checkpoints, in the
same layout, with compact predictions (``predictions-fp16.npz``). They count as finished runs:
asking for their config is a cache hit. They are read-only, and a record has no weights: a teacher's
record teaches only the students that train on its cached logits (clean student input), and only
where it carries them (``train-logits-fp16.npz``, float16; records exported before 2026-12-03 do not).
"""
from __future__ import annotations

import csv
import errno
import fcntl
import hashlib
import io
import json
import os
import time
import warnings
import zipfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np

from ..base.gridfile import reused_profile
from ..base.io import atomic_write_bytes, atomic_write_text, check_writable
from ..base.paths import default_results_root

__all__ = ["RunStore", "Run", "run_id", "TRAIN_LOGITS", "COMPACT_TRAIN_LOGITS", "canonical_json", "RunLockedError",
           "ArtifactError", "run_problems"]


DONE = "DONE"


FULL_PREDICTIONS = "predictions.npz"


COMPACT_PREDICTIONS = "predictions-fp16.npz"


TRAIN_LOGITS = "train_logits.npz"  # a teacher's logits on the clean training split (float32), in a full run


COMPACT_TRAIN_LOGITS = "train-logits-fp16.npz"  # the same in a teacher's record, as float16 (optional: newer records)


def canonical_json(config: dict) -> str:
    return json.dumps(config, sort_keys=True, separators=(",", ":"), default=str)


def run_id(config: dict) -> str:
    """12 hex digits of the SHA-256 of the canonical config."""
    return hashlib.sha256(canonical_json(config).encode()).hexdigest()[:12]


class RunLockedError(RuntimeError):
    """Another process is training this run."""


class ArtifactError(ValueError):
    """A run's file is missing, truncated or not what it should be; the message names the file and the fix."""


# What a finished run folder holds, by kind; a committed record holds RECORD_NEEDS instead.
NEEDS = {
    "teacher": ("config.json", "metrics.json", "history.csv", "provenance.json", FULL_PREDICTIONS, "checkpoint.pt",
                TRAIN_LOGITS),
    "student": ("config.json", "metrics.json", "history.csv", "provenance.json", FULL_PREDICTIONS, "checkpoint.pt"),
}


RECORD_NEEDS = ("config.json", "metrics.json", "history.csv", "provenance.json", COMPACT_PREDICTIONS)


_REPORTED: set = set()  # folders whose broken DONE was already reported in this process


def _readable(path: Path) -> str | None:
    """None when ``path`` is present and its container opens (JSON parses, a zip's directory reads), else why not."""
    try:
        if not path.is_file():
            return "missing"
        if path.stat().st_size == 0:
            return "empty"
        if path.suffix == ".json":
            json.loads(path.read_text())
        elif path.suffix in (".npz", ".pt"):
            with zipfile.ZipFile(path) as z:
                z.infolist()
        elif path.suffix == ".csv":
            path.read_text()
    except (OSError, ValueError, zipfile.BadZipFile, UnicodeDecodeError) as err:
        return f"unreadable ({type(err).__name__}: {err})"
    return None


def run_problems(folder: Path, kind: str, record: bool = False) -> list[str]:
    """Why a folder holding ``DONE`` is not a finished run: its config does not hash to its id, or
    an artifact its kind needs is missing or unreadable. Empty for a finished run."""
    folder = Path(folder)
    problems = []
    for name in RECORD_NEEDS if record else NEEDS[kind]:
        why = _readable(folder / name)
        if why:
            problems.append(f"{name} {why}")
    if not any(p.startswith("config.json") for p in problems):
        config = json.loads((folder / "config.json").read_text())
        if not isinstance(config, dict) or run_id(config) != folder.name or config.get("kind") != kind:
            problems.append(f"config.json hashes to {run_id(config) if isinstance(config, dict) else '?'}, not to "
                            f"the folder's id {folder.name} (the config was replaced or the folder renamed)")
    return problems


def _report_broken(folder: Path, problems: list[str], record: bool):
    key = str(folder)
    if key in _REPORTED:
        return
    _REPORTED.add(key)
    fix = ("it is ignored; import the record again (python -m kdlib import)" if record else
           "it is not a finished run and will be trained again (delete the folder to start from scratch)")
    warnings.warn(f"{folder} is marked {DONE} but {'; '.join(problems)}: {fix}", stacklevel=3)


class Run:
    """One run folder."""

    def __init__(self, folder: Path, config: dict, record: bool = False):
        self.folder = Path(folder)
        self.config = config
        self.id = self.folder.name
        self.record = record  # a committed, read-only record (no checkpoint, compact predictions)

    def __repr__(self):
        return f"Run({self.folder}, done={self.done}{', record' if self.record else ''})"

    @property
    def has_weights(self) -> bool:
        return self.checkpoint.is_file()

    @property
    def train_logits_file(self) -> Path | None:
        """A teacher's cached logits on the clean training split: ``train_logits.npz`` (float32) in a full run,
        ``train-logits-fp16.npz`` in a record that carries them; None where neither is there."""
        for name in (TRAIN_LOGITS, COMPACT_TRAIN_LOGITS):
            if (self.folder / name).is_file():
                return self.folder / name
        return None

    def provenance(self) -> dict:
        try:
            return self.read_json("provenance.json")
        except FileNotFoundError:
            return {}

    def read_predictions(self) -> dict:
        """Test (and CINIC) predictions as float32/int64 arrays, from the full or the compact file.

        Keys per evaluation set ``S``: ``S_probs`` (rows renormalised: float16 rows do not sum to 1
        exactly; the softmax of ``S_logits`` where a record kept logits alone), ``S_labels``, ``S_indices``, and where stored ``S_logits``, ``S_human`` and
        ``S_embeddings`` with ``S_embedding_index`` (the rows of ``S`` the embeddings belong to:
        every row in a full run, a fixed stratified subset in a record).
        """
        full = self.folder / FULL_PREDICTIONS
        name = FULL_PREDICTIONS if full.is_file() else COMPACT_PREDICTIONS
        try:
            raw = self.read_arrays(name)
        except FileNotFoundError:
            raise FileNotFoundError(f"run {self.folder} has no predictions ({FULL_PREDICTIONS} or "
                                    f"{COMPACT_PREDICTIONS}); it is not a finished run") from None
        except ArtifactError:
            raise
        out = {}
        for key, arr in raw.items():
            if key.endswith("_probs"):
                p = arr.astype(np.float32)
                out[key] = p / np.clip(p.sum(axis=1, keepdims=True), 1e-12, None)
            elif key.endswith(("_labels", "_indices", "_embedding_index")):
                out[key] = arr.astype(np.int64)
            else:
                out[key] = arr.astype(np.float32)
        for key in [k for k in out if k.endswith("_logits")]:  # records keep logits alone: probs are their softmax
            probs = key[: -len("_logits")] + "_probs"
            if probs not in out:
                from ..blocks.metrics import softmax_rows

                out[probs] = softmax_rows(out[key])
        for key in [k for k in out if k.endswith("_embeddings")]:
            idx = key[: -len("_embeddings")] + "_embedding_index"
            if idx not in out:
                out[idx] = np.arange(len(out[key]), dtype=np.int64)
        return out

    @property
    def done(self) -> bool:
        """Finished: ``DONE`` is there, the config hashes to the id and every artifact the kind needs reads.
        A ``DONE`` without them is reported once (a warning naming the files) and is not finished."""
        if not (self.folder / DONE).is_file():
            return False
        problems = run_problems(self.folder, self.config.get("kind"), self.record)
        if problems:
            _report_broken(self.folder, problems, self.record)
        return not problems

    @property
    def checkpoint(self) -> Path:
        return self.folder / "checkpoint.pt"

    def path(self, name: str) -> Path:
        return self.folder / name

    def write_json(self, name: str, obj: Any) -> None:
        atomic_write_text(self.folder / name, json.dumps(obj, indent=2, sort_keys=True, default=_json_default) + "\n")

    def read_json(self, name: str) -> Any:
        path = self.folder / name
        try:
            return json.loads(path.read_text())
        except FileNotFoundError:
            raise FileNotFoundError(f"{path} is missing; {self._fix}") from None
        except (OSError, ValueError, UnicodeDecodeError) as err:
            raise ArtifactError(f"{path} is unreadable or truncated ({type(err).__name__}: {err}); {self._fix}") from None

    @property
    def _fix(self) -> str:
        return ("import the record again (python -m kdlib import)" if self.record else
                "delete the run folder and train it again")

    def write_history(self, history: list[dict]) -> None:
        buf = io.StringIO()  # no epoch (an untrained teacher, E13): a header alone, not an empty file
        writer = csv.DictWriter(buf, fieldnames=list(history[0]) if history else ["epoch"])
        writer.writeheader()
        writer.writerows(history)
        atomic_write_text(self.folder / "history.csv", buf.getvalue())

    def read_history(self) -> list[dict]:
        path = self.folder / "history.csv"
        try:
            with open(path) as f:
                return [{k: float(v) for k, v in row.items()} for row in csv.DictReader(f)]
        except FileNotFoundError:
            raise FileNotFoundError(f"{path} is missing; {self._fix}") from None
        except (OSError, ValueError, TypeError, UnicodeDecodeError) as err:
            raise ArtifactError(f"{path} is not a numeric CSV ({type(err).__name__}: {err}); {self._fix}") from None

    def write_arrays(self, name: str, compress: bool = True, **arrays: np.ndarray) -> None:
        """``compress=False`` for large float arrays that barely compress (embeddings): zlib took 2.8 s for
        one AlexNet student's 10,000 x 2,048 float16 embeddings (24 MB against 41 MB raw) on this project's CPU."""
        buf = io.BytesIO()
        (np.savez_compressed if compress else np.savez)(buf, **arrays)
        atomic_write_bytes(self.folder / name, buf.getvalue())

    def read_arrays(self, name: str) -> dict:
        path = self.folder / name
        try:
            with np.load(path, allow_pickle=False) as z:
                return {k: z[k] for k in z.files}
        except FileNotFoundError:
            raise FileNotFoundError(f"{path} is missing; {self._fix}") from None
        except (OSError, ValueError, EOFError, KeyError, zipfile.BadZipFile) as err:
            raise ArtifactError(f"{path} is unreadable or truncated, or holds objects rather than numbers "
                                f"({type(err).__name__}: {err}); {self._fix}") from None

    def mark_done(self) -> None:
        atomic_write_text(self.folder / DONE, time.strftime("%Y-%m-%dT%H:%M:%S%z") + "\n")

    def record_failure(self, err: BaseException) -> None:
        self.write_json("failure.json", {"error": type(err).__name__, "message": str(err),
                                         "time": time.strftime("%Y-%m-%dT%H:%M:%S%z")})

    @contextmanager
    def lock(self, wait: bool = True, timeout: float | None = None) -> Iterator[Run]:
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

    def __init__(self, root: str | Path | None = None, profile: str = "quick", results: str | Path | None = "default",
                 reuse: str | None = "default"):
        """``results``: the folder of committed records read as finished runs (``"default"``:
        :func:`default_results_root`; ``None``: none). ``reuse``: another profile whose finished runs (and
        records) this store reads as its own when their configs match, i.e. when their run ids are equal
        (``"default"``: the profile's ``reuse:`` in grid.yaml; ``None``: none). A reused run is only read."""
        self.root = Path(root or os.environ.get("KDLIB_RUNS", "runs"))
        self.profile = profile
        self.results = default_results_root() if results == "default" else (Path(results) if results else None)
        if self.results is not None and self.results.resolve() == self.root.resolve():
            self.results = None  # the store *is* the results folder (export/import write there)
        self.reuse = reused_profile(profile) if reuse == "default" else reuse

    def run(self, config: dict) -> Run:
        """The run of ``config``: this store's folder, or the committed record when only that is finished."""
        kind = config.get("kind")
        if kind not in ("teacher", "student"):
            raise ValueError(f"config kind must be 'teacher' or 'student', got {kind!r}")
        rid = run_id(config)
        own = Run(self.root / self.profile / kind / rid, config)
        if not own.done:
            for profile in [self.profile] + ([self.reuse] if self.reuse else []):
                if profile != self.profile:
                    other = Run(self.root / profile / kind / rid, config)
                    if other.done:
                        return other
                record = self._record(kind, rid, profile)
                if record is not None:
                    return Run(record, config, record=True)
        return own

    def _record(self, kind: str, rid: str, profile: str | None = None) -> Path | None:
        if self.results is None:
            return None
        folder = self.results / (profile or self.profile) / kind / rid
        if not (folder / DONE).is_file():
            return None
        problems = run_problems(folder, kind, record=True)
        if problems:
            _report_broken(folder, problems, True)
            return None
        return folder

    def ensure_writable(self) -> None:
        """Raise PermissionError naming the fix when the store cannot be written."""
        check_writable(self.root / self.profile)

    def prepare(self, run: Run) -> None:
        """Create the folder and write config.json (after checking the store is writable)."""
        self.ensure_writable()
        run.folder.mkdir(parents=True, exist_ok=True)
        for stale in run.folder.glob("*.tmp"):  # left by a process killed mid-write; never a result
            stale.unlink()
        # a DONE whose artifacts are missing (run.done said so, once) is not a result: it goes before training
        (run.folder / DONE).unlink(missing_ok=True)
        path = run.folder / "config.json"
        try:
            same = run_id(json.loads(path.read_text())) == run.id
        except (OSError, ValueError, UnicodeDecodeError):
            same = False
        if not same:  # missing, truncated, or another run's config put here: this run's config replaces it
            run.write_json("config.json", run.config)

    def runs(self, kind: str | None = None, done_only: bool = True, records: bool = True) -> list[Run]:
        """Runs of this profile (finished ones unless ``done_only=False``), this store's first, then the
        committed records whose id this store has not finished (``records=False``: none)."""
        kinds = [kind] if kind else ["teacher", "student"]
        bases = []  # (folder, holds records, belongs to this profile)
        for profile in [self.profile] + ([self.reuse] if self.reuse else []):
            bases.append((self.root / profile, False, profile == self.profile))
            if records and self.results is not None:
                bases.append((self.results / profile, True, profile == self.profile))
        out, seen = [], set()
        for k in kinds:
            for base, is_record, own in bases:
                for folder in sorted((base / k).glob("*")) if (base / k).is_dir() else []:
                    if (k, folder.name) in seen or not (folder / "config.json").is_file():
                        continue
                    done = (folder / DONE).is_file()
                    if done:
                        problems = run_problems(folder, k, is_record)
                        if problems:  # a swapped config, a missing or truncated artifact: not a result
                            _report_broken(folder, problems, is_record)
                            done = False
                    if (is_record or not own) and not done:  # another profile's unfinished run is not ours
                        continue
                    if done_only and not done:
                        continue
                    try:
                        config = json.loads((folder / "config.json").read_text())
                    except (json.JSONDecodeError, UnicodeDecodeError) as err:
                        raise ArtifactError(f"{folder / 'config.json'} is not valid JSON ({err}); delete the run "
                                            f"folder to retrain it") from None
                    if done:
                        seen.add((k, folder.name))
                    out.append(Run(folder, config, record=is_record))
        return out

    def find(self, rid: str, kind: str | None = None) -> Run | None:
        """The finished run (or record) with id ``rid``."""
        return next((r for r in self.runs(kind) if r.id == rid), None)
