"""A candidate record read and checked: its files parsed, its predictions and training-set logits checked
against its metrics and provenance (the checks of :func:`kdlib.runs.admit._admit`)."""
from __future__ import annotations

import csv
import hashlib
import json
import re
import time
from pathlib import Path

import numpy as np

from ..base.gridfile import profile_settings
from .compact import (
    ACCURACY_TOLERANCE,
    BUDGET,
    FORMAT,
    HEAVY,
    MANIFEST,
    RECORD_FILES,
    RecordError,
    _npz_bytes,
    compact_arrays,
    logits_digest,
)
from .health import run_health
from .store import (
    COMPACT_PREDICTIONS,
    COMPACT_TRAIN_LOGITS,
    DONE,
    FULL_PREDICTIONS,
    TRAIN_LOGITS,
    run_id,
)

__all__: list[str] = []


_MAX_MEMBER = 200 * 2**20
_ID = re.compile(r"^[0-9a-f]{12}$")


# --------------------------------------------------------------------------- reading a candidate
def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _read_json(path: Path, what: str):
    try:
        return json.loads(path.read_text())
    except FileNotFoundError:
        raise RecordError(f"{path} is missing: a record needs {what}") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise RecordError(f"{path} is not valid JSON ({err}); the record is damaged: export it again") from None


def _read_history(path: Path, untrained: bool = False) -> list[dict]:
    """The epochs of a record's history; none only for a random-weight teacher (E13's ``untrained``), which is
    never trained."""
    try:
        with open(path, newline="") as f:
            rows = [{k: float(v) for k, v in row.items()} for row in csv.DictReader(f)]
    except FileNotFoundError:
        raise RecordError(f"{path} is missing: a record needs its training history") from None
    except (ValueError, TypeError, UnicodeDecodeError) as err:
        raise RecordError(f"{path} is not a numeric CSV ({err}); the record is damaged: export it again") from None
    if not rows and not untrained:
        raise RecordError(f"{path} has no epochs; a finished run trains at least one (only an untrained, "
                          f"random-weight teacher has none)")
    return rows


def _load_npz(data: bytes, where: Path) -> dict:
    from ..data.formats import (
        read_npz,  # the .npy shapes in its zip headers checked before numpy allocates them
    )

    try:
        return read_npz(data, _MAX_MEMBER, where)
    except ValueError as err:  # a DataError too
        raise RecordError(f"{where} is not a readable .npz without pickles ({err}); export the record again") from None


def _check_predictions(arrays: dict, where: Path, metrics: dict):
    # the scores: probabilities, or logits (whose softmax they are: the same order, the same ties)
    key = "test_probs" if "test_probs" in arrays else "test_logits"
    probs, labels = arrays.get(key), arrays.get("test_labels")
    if probs is None or labels is None or "test_indices" not in arrays:
        raise RecordError(f"{where} lacks test_probs (or test_logits), test_labels or test_indices; export the "
                          f"record again")
    if probs.ndim != 2 or labels.shape != (len(probs),) or arrays["test_indices"].shape != labels.shape:
        raise RecordError(f"{where}: {key} {probs.shape}, test_labels {labels.shape} and test_indices "
                          f"{arrays['test_indices'].shape} disagree")
    if not np.isfinite(probs.astype(np.float32)).all():
        raise RecordError(f"{where}: {key} holds NaN or Inf")
    for key, arr in arrays.items():
        if arr.dtype.kind not in "fiu":
            raise RecordError(f"{where}: array {key!r} has dtype {arr.dtype}; records hold numbers only")
    if "test_embeddings" in arrays:
        idx = arrays.get("test_embedding_index", np.arange(len(arrays["test_embeddings"])))
        if len(idx) != len(arrays["test_embeddings"]) or (len(idx) and (idx.min() < 0 or idx.max() >= len(probs))):
            raise RecordError(f"{where}: test_embedding_index does not index the test rows")
    test = metrics.get("test", {})
    if not isinstance(test.get("accuracy"), (int, float)):
        raise RecordError(f"{where.parent / 'metrics.json'} has no test accuracy")
    # float16 rounding is monotonic: it can merge close scores into ties but never reorder them, so
    # the accuracy of the run lies between "the label is the unique maximum" and "the label is a maximum"
    p = probs.astype(np.float32)
    top = p.max(axis=1)
    is_max = p[np.arange(len(p)), labels.astype(np.int64)] == top
    unique = (p == top[:, None]).sum(axis=1) == 1
    low, high = float((is_max & unique).mean()), float(is_max.mean())
    if not (low - ACCURACY_TOLERANCE <= test["accuracy"] <= high + ACCURACY_TOLERANCE):
        shown = f"{low:.4f}" if low == high else f"{low:.4f}–{high:.4f}"
        raise RecordError(f"{where.parent}: metrics.json says test accuracy {test['accuracy']:.4f} but its "
                          f"predictions give {shown}: the record was altered or mixed with another run's "
                          f"files; it is refused")
    if test.get("n") is not None and int(test["n"]) != len(labels):
        raise RecordError(f"{where.parent}: metrics.json counts {test['n']} test images, predictions {len(labels)}")


def _check_train_logits(arrays: dict, where: Path, n_train, num_classes: int, fp16: bool) -> np.ndarray:
    """The ``logits`` of a teacher's training-set logits file as float16, checked: floats, ``(n_train,
    num_classes)``, finite (and within float16's range where they are converted here)."""
    fix = "export the record again from the teacher's run store (python -m kdlib export)"
    logits = arrays.get("logits")
    if logits is None:
        raise RecordError(f"{where} has no 'logits' array (it holds {sorted(arrays)}); {fix}")
    if logits.dtype.kind != "f":
        raise RecordError(f"{where}: logits have dtype {logits.dtype}, not floats; {fix}")
    if fp16 and logits.dtype != np.float16:
        raise RecordError(f"{where}: logits have dtype {logits.dtype}; a record keeps them as float16; {fix}")
    want = (n_train if n_train is not None else "n_train", num_classes)
    if logits.ndim != 2 or logits.shape[1] != num_classes or (n_train is not None and logits.shape[0] != n_train):
        raise RecordError(f"{where}: logits of shape {logits.shape}, but the teacher trained on {want[0]} images of "
                          f"{num_classes} classes (its provenance.json and test predictions say so): the file is "
                          f"short or another run's; {fix}")
    if not np.isfinite(logits).all():
        raise RecordError(f"{where}: logits hold NaN or Inf; {fix}")
    half = logits.astype(np.float16)
    if not np.isfinite(half).all():
        raise RecordError(f"{where}: logits up to {float(np.abs(logits).max()):.3g} do not fit float16 (max 65504); "
                          f"this teacher's record cannot carry them: its clean students need the full run store")
    return half


def _record_embeddings(profile: str) -> bool:
    """Whether the records of ``profile`` keep teacher embeddings (grid.yaml's ``record_embeddings``, default
    true: the t-SNE and explorer chapters read them)."""
    return bool(profile_settings(profile).get("record_embeddings", True))


class _RecordCandidate:
    """A run folder found in an import source, read and checked, in record form, in memory."""

    def __init__(self, folder: Path, profile: str, kind: str):
        self.folder, self.profile, self.kind, self.id = folder, profile, kind, folder.name
        self.files: dict[str, bytes] = {}
        self.ignored: list[str] = []

    def load(self):
        f = self.folder
        if not (f / DONE).is_file():
            raise RecordError(f"{f} is not a finished run (no {DONE} marker); finish it first "
                              f"(python -m kdlib grid --profile {self.profile})")
        manifest_path = f / MANIFEST
        self.source = None
        if manifest_path.is_file():  # checked first: any edit after export is named as such
            manifest = _read_json(manifest_path, "its manifest")
            for name, digest in (manifest.get("files") or {}).items():
                if not (f / name).is_file():
                    raise RecordError(f"{manifest_path} lists {name}, which the record lacks")
                if _sha256((f / name).read_bytes()) != digest:
                    raise RecordError(f"{f / name} does not match the checksum in {MANIFEST}: the record was altered "
                                      f"after it was exported; it is refused (export it again from the run store)")
            self.source = manifest.get("source")
        self.config = _read_json(f / "config.json", "its config")
        if not isinstance(self.config, dict) or self.config.get("kind") != self.kind:
            raise RecordError(f"{f / 'config.json'} is not a {self.kind} config (kind "
                              f"{self.config.get('kind') if isinstance(self.config, dict) else None!r})")
        expected = run_id(self.config)
        if expected != self.id:
            raise RecordError(f"{f}: the folder's run id {self.id} is not the hash of its config.json ({expected}): "
                              f"the config was edited or the folder renamed; the record is refused")
        self.metrics = _read_json(f / "metrics.json", "its metrics")
        self.provenance = _read_json(f / "provenance.json", "its provenance")
        self.history = _read_history(f / "history.csv", bool(self.config.get("untrained")))
        if (f / COMPACT_PREDICTIONS).is_file() and not (f / FULL_PREDICTIONS).is_file():
            raw = (f / COMPACT_PREDICTIONS).read_bytes()
            arrays = _load_npz(raw, f / COMPACT_PREDICTIONS)
            compact = compact_arrays(arrays, self.kind, embeddings=_record_embeddings(self.profile))
            same = set(compact) == set(arrays) and all(
                np.array_equal(compact[k], arrays[k]) and (arrays[k].dtype.kind != "f" or arrays[k].dtype == np.float16)
                for k in arrays)
            pred = raw if same else _npz_bytes(compact)
        elif (f / FULL_PREDICTIONS).is_file():
            arrays = _load_npz((f / FULL_PREDICTIONS).read_bytes(), f / FULL_PREDICTIONS)
            compact = compact_arrays(arrays, self.kind, embeddings=_record_embeddings(self.profile))
            pred = _npz_bytes(compact)
        else:
            raise RecordError(f"{f} has no predictions ({FULL_PREDICTIONS} or {COMPACT_PREDICTIONS})")
        _check_predictions(compact, f / COMPACT_PREDICTIONS, self.metrics)
        self.arrays = compact
        for name in ("config.json", "history.csv", "metrics.json", "provenance.json", DONE):
            self.files[name] = (f / name).read_bytes()
        self.files[COMPACT_PREDICTIONS] = pred
        self.train_logits_digest = None
        if self.kind == "teacher":
            self._load_train_logits(compact)
        known = set(RECORD_FILES) | HEAVY | {MANIFEST, "failure.json", COMPACT_TRAIN_LOGITS}
        self.ignored = sorted(p.name for p in f.iterdir() if p.name not in known and not p.name.endswith(".tmp"))
        size = sum(len(b) for b in self.files.values())
        if size > BUDGET[self.kind]:
            raise RecordError(f"{f}: the record would take {size:,} bytes, over the {BUDGET[self.kind]:,} budget of a "
                              f"{self.kind} record")
        self.size = size
        return self

    def _load_train_logits(self, compact: dict):
        """The teacher's training-set logits in record form (float16), checked; none where the run has none."""
        f = self.folder
        scores = compact.get("test_logits", compact.get("test_probs"))
        datasets = self.provenance.get("datasets") if isinstance(self.provenance, dict) else None
        n_train = next((d.get("n") for d in datasets or [] if isinstance(d, dict) and d.get("split") == "train"), None)
        n_train = int(n_train) if isinstance(n_train, (int, float)) else None
        if (f / TRAIN_LOGITS).is_file():  # a full run: float32, converted here
            source = f / TRAIN_LOGITS
            half = _check_train_logits(_load_npz(source.read_bytes(), source), source, n_train, scores.shape[1],
                                       fp16=False)
            data = _npz_bytes({"logits": half})
        elif (f / COMPACT_TRAIN_LOGITS).is_file():  # a record: kept byte for byte when already in record form
            source = f / COMPACT_TRAIN_LOGITS
            data = source.read_bytes()
            arrays = _load_npz(data, source)
            half = _check_train_logits(arrays, source, n_train, scores.shape[1], fp16=True)
            if set(arrays) != {"logits"}:
                data = _npz_bytes({"logits": half})
        else:
            return
        self.files[COMPACT_TRAIN_LOGITS] = data
        self.train_logits_digest = logits_digest(half)

    def manifest(self, source: str) -> dict:
        return {"format": FORMAT, "run_id": self.id, "kind": self.kind, "profile": self.profile,
                "files": {name: _sha256(data) for name, data in sorted(self.files.items())},
                "health": run_health(self.metrics, self.history, untrained=bool(self.config.get("untrained"))),
                "source": self.source or source,
                "recorded": time.strftime("%Y-%m-%dT%H:%M:%S%z")}


def _find_runs(root: Path) -> list[tuple[Path, str, str]]:
    """(folder, profile, kind) of every run folder under ``root`` (``<profile>/<kind>/<id>/``)."""
    found = []
    for cfg in sorted(root.rglob("config.json")):
        folder = cfg.parent
        if _ID.match(folder.name) and folder.parent.name in ("teacher", "student"):
            found.append((folder, folder.parent.parent.name, folder.parent.name))
    return found
