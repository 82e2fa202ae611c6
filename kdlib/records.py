"""Compact run records: finished runs kept in the repository, and brought back from GPU machines.

A *record* is a finished run without its weights, in the run store's layout
(``results/<profile>/<kind>/<run_id>/``): ``config.json``, ``history.csv``, ``metrics.json``,
``provenance.json``, ``DONE``, ``predictions-fp16.npz`` and ``manifest.json``. The predictions
are compact: float16 test logits (or probabilities, where a run kept no logits: the probabilities
are the logits' softmax, derived when read), int labels and indices, and for teachers the
penultimate embeddings of a fixed stratified subset of the test images (:func:`embedding_subset`,
enough for the t-SNE and explorer figures; none where the profile sets ``record_embeddings: false``). A
teacher's record also carries ``train-logits-fp16.npz``: its logits on the clean training split (the run's
``train_logits.npz``) as float16, ``(n_train, num_classes)``, about 1 MB for CIFAR-10 (50,000 x 10 x 2 bytes).
That is all a student trained on cached teacher logits (clean student input) needs, so such students can be
distilled from the record on any machine (:func:`kdlib.pipeline.run_students`); students whose input is
augmented need the teacher online, i.e. its weights, which no record has. Records exported before
2026-12-03 have no such file; they stay valid and their students unfillable. Budgets: :data:`BUDGET` bytes
per record (a teacher's: 3 MB + 1 MB for these logits).

* :func:`export_store` writes the records of a full run store (``python -m kdlib export``);
* :func:`import_records` adds records from a folder or an archive (``python -m kdlib import``).

Both go through one gate, :func:`_admit`: the run id must equal the hash of ``config.json``, the
files must parse, the accuracy recomputed from the predictions must equal ``metrics.json``'s,
the ``manifest.json`` checksums (when present) must match, a teacher's training-set logits (when present)
must be finite floats of shape ``(n_train, num_classes)`` (``n_train`` from its provenance, the class count
from its test predictions), a student's teacher must be recorded (the same realisation: its metrics, and
for a student distilled from a record's logits, those logits), and a finished record is never overwritten. A record is written into a temporary folder and
renamed into place, so a kill leaves no half-written record.

``results/<profile>/datasets/<dataset>-test.npz`` (:func:`write_dataset_sidecar`) holds what the
chapters need from the test set when the dataset itself is absent: labels, indices, the
CIFAR-10H soft labels (CIFAR-10 only) and the images of the explorer subset.
"""
from __future__ import annotations

import csv
import hashlib
import io
import json
import math
import os
import re
import shutil
import sys
import tarfile
import tempfile
import time
import zipfile
from pathlib import Path

import numpy as np

from .runs import (COMPACT_PREDICTIONS, COMPACT_TRAIN_LOGITS, DONE, FULL_PREDICTIONS, REPO, TRAIN_LOGITS, RunStore,
                   atomic_write_bytes, default_results_root, profile_settings, run_id)

__all__ = ["RecordError", "embedding_subset", "compact_arrays", "run_health", "import_records", "export_store",
           "write_dataset_sidecar", "read_dataset_sidecar", "BUDGET", "EMBED_PER_CLASS", "EXPLORER_PER_CLASS",
           "MANIFEST", "main_import", "main_export", "logits_digest", "TRAIN_LOGITS_BYTES"]

MANIFEST = "manifest.json"
FORMAT = 1
RECORD_FILES = ("config.json", "history.csv", "metrics.json", "provenance.json", COMPACT_PREDICTIONS, DONE)
# what a full run folder has beyond a record: dropped on export, never copied
HEAVY = {"checkpoint.pt", TRAIN_LOGITS, FULL_PREDICTIONS, ".lock"}  # train_logits.npz travels as float16 (below)
# what a teacher's training-set logits add to its record: CIFAR-10's 50,000 x 10 float16 (compressed, 0.9-1 MB)
TRAIN_LOGITS_BYTES = 1_000_000
BUDGET = {"student": 500_000, "teacher": 3_000_000 + TRAIN_LOGITS_BYTES}  # bytes per record, every file included
EMBED_PER_CLASS = 100  # teachers' embeddings kept for this many test images per class
EXPLORER_PER_CLASS = 40  # images kept in the dataset sidecar for the explorer (a prefix of the above)
ACCURACY_TOLERANCE = 1e-6  # accuracy recomputed from float16 predictions is exact up to ties (see below)
_ID = re.compile(r"^[0-9a-f]{12}$")
_MAX_MEMBER = 200 * 2**20
_MAX_ARCHIVE = 2 * 2**30


class RecordError(ValueError):
    """A record that cannot be admitted: the message names the file, the cause and the fix."""


# --------------------------------------------------------------------------- compact predictions
def embedding_subset(labels, per_class: int = EMBED_PER_CLASS, seed: int = 0) -> np.ndarray:
    """Sorted positions of ``per_class`` test images of every class, fixed by ``seed``.

    Nested: the subset for ``k < per_class`` is contained in the one for ``per_class`` (each class's
    positions are permuted once and a prefix is kept), so the explorer's images are a subset of the
    teachers' recorded embeddings.
    """
    labels = np.asarray(labels)
    out = []
    for c in np.unique(labels):
        pos = np.flatnonzero(labels == c)
        perm = np.random.default_rng([seed, int(c)]).permutation(len(pos))
        out.append(pos[perm[:per_class]])
    return np.sort(np.concatenate(out)) if out else np.zeros(0, dtype=np.int64)


def compact_arrays(arrays: dict, kind: str, per_class: int = EMBED_PER_CLASS, embeddings: bool = True) -> dict:
    """The arrays of a full ``predictions.npz`` in record form (see the module docstring). Where a split has
    logits its probabilities are not stored (they are their softmax: :meth:`kdlib.runs.Run.read_predictions`
    derives them); ``embeddings=False`` keeps no teacher embeddings (a profile's ``record_embeddings``)."""
    out = {}
    for key, arr in arrays.items():
        split, _, what = key.rpartition("_")
        if what == "probs" and f"{split}_logits" in arrays:
            continue
        if what == "probs" or what == "logits":
            out[key] = np.asarray(arr, dtype=np.float16)
        elif what == "labels":
            out[key] = np.asarray(arr, dtype=np.int16)
        elif what == "indices":
            out[key] = np.asarray(arr, dtype=np.int32)
        elif key.endswith("_embedding_index"):
            continue
        elif what == "embeddings" and kind == "teacher" and split == "test" and embeddings:
            labels = arrays["test_labels"]
            if "test_embedding_index" in arrays:  # already a subset
                keep = np.arange(len(arr))
                out["test_embedding_index"] = np.asarray(arrays["test_embedding_index"], dtype=np.int32)
            else:
                keep = embedding_subset(labels, per_class)
                out["test_embedding_index"] = keep.astype(np.int32)
            out[key] = np.asarray(arr, dtype=np.float16)[keep]
        # human labels live once per dataset (the sidecar); other embeddings are not recorded
    return out


def _npz_bytes(arrays: dict) -> bytes:
    buf = io.BytesIO()
    np.savez_compressed(buf, **arrays)
    return buf.getvalue()


def logits_digest(logits) -> str:
    """SHA-256 of a logits array as float16 (shape, then the values): the same for the same values whichever
    .npz holds them (an .npz's bytes carry the time it was written)."""
    arr = np.ascontiguousarray(logits, dtype=np.float16)
    return hashlib.sha256(repr(arr.shape).encode() + arr.tobytes()).hexdigest()


# --------------------------------------------------------------------------- the failed-run rule
def run_health(metrics: dict, history: list[dict], num_classes: int = 10) -> dict:
    """``{"failed": bool, "reasons": [...]}`` by the rule the book states.

    A run failed when (a) its test accuracy lies within 3 binomial standard errors of chance,
    1/C (the standard error of chance accuracy on n test images: sqrt(p(1-p)/n), p = 1/C), or
    (b) a training loss in its history is not finite, or (c) its training loss is flat: the
    last epoch's loss is at least 98% of the first epoch's (with two epochs or more).
    """
    reasons = []
    test = metrics.get("test", {})
    acc, n = test.get("accuracy"), test.get("n")
    if acc is None or not isinstance(acc, (int, float)) or not math.isfinite(acc):
        reasons.append("no finite test accuracy")
    else:
        p = 1.0 / num_classes
        se = math.sqrt(p * (1 - p) / max(1, int(n or 1)))
        if abs(acc - p) <= 3 * se:
            reasons.append(f"test accuracy {acc:.3f} is at chance (1/{num_classes} ± 3 s.e. = "
                           f"{p - 3 * se:.3f}–{p + 3 * se:.3f}, n = {n})")
    losses = [h.get("loss") for h in history]
    if any(not isinstance(v, (int, float)) or not math.isfinite(v) for v in losses):
        reasons.append("a training loss is not finite")
    elif len(losses) >= 2 and losses[-1] >= 0.98 * losses[0]:
        reasons.append(f"flat training loss ({losses[0]:.3f} at epoch 1, {losses[-1]:.3f} at the end)")
    return {"failed": bool(reasons), "reasons": reasons}


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


def _read_history(path: Path) -> list[dict]:
    try:
        with open(path, newline="") as f:
            rows = [{k: float(v) for k, v in row.items()} for row in csv.DictReader(f)]
    except FileNotFoundError:
        raise RecordError(f"{path} is missing: a record needs its training history") from None
    except (ValueError, TypeError, UnicodeDecodeError) as err:
        raise RecordError(f"{path} is not a numeric CSV ({err}); the record is damaged: export it again") from None
    if not rows:
        raise RecordError(f"{path} has no epochs; a finished run trains at least one")
    return rows


def _load_npz(data: bytes, where: Path) -> dict:
    from .formats import read_npz  # the .npy shapes in its zip headers checked before numpy allocates them

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


class _Candidate:
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
        self.history = _read_history(f / "history.csv")
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
                "health": run_health(self.metrics, self.history), "source": self.source or source,
                "recorded": time.strftime("%Y-%m-%dT%H:%M:%S%z")}


def _find_runs(root: Path) -> list[tuple[Path, str, str]]:
    """(folder, profile, kind) of every run folder under ``root`` (``<profile>/<kind>/<id>/``)."""
    found = []
    for cfg in sorted(root.rglob("config.json")):
        folder = cfg.parent
        if _ID.match(folder.name) and folder.parent.name in ("teacher", "student"):
            found.append((folder, folder.parent.parent.name, folder.parent.name))
    return found


def _safe_extract(archive: Path, into: Path, max_entries: int = 200_000):
    """``max_entries``: a paper profile's records are ~5,000 files; each header listed costs memory."""
    try:
        tar = tarfile.open(archive)
    except (tarfile.TarError, OSError) as err:
        raise RecordError(f"{archive} is not a readable tar archive ({err}); bring it back again") from None
    with tar:
        total = 0
        members = []
        for count, m in enumerate(tar, 1):  # headers walked one by one, not all listed first
            if count > max_entries:
                raise RecordError(f"{archive} holds more than {max_entries:,} entries; not an archive of records")
            name = m.name
            if name.startswith("/") or ".." in Path(name).parts:
                raise RecordError(f"{archive}: member {name!r} points outside the archive; refused")
            if not (m.isfile() or m.isdir()):
                raise RecordError(f"{archive}: member {name!r} is a link or a device; records hold plain files only")
            if m.size > _MAX_MEMBER:
                raise RecordError(f"{archive}: member {name!r} declares {m.size:,} bytes, more than any record file")
            total += m.size
            if total > _MAX_ARCHIVE:
                raise RecordError(f"{archive} declares more than {_MAX_ARCHIVE:,} bytes; not an archive of records")
            members.append(m)
        try:
            tar.extractall(into, members=members, filter="data")
        except (tarfile.TarError, OSError, EOFError) as err:
            raise RecordError(f"{archive} is truncated or corrupt ({err}); bring it back again") from None


# --------------------------------------------------------------------------- admitting records
def _describe_source(source: Path) -> str:
    """The source as a path relative to the repository (no absolute path of any machine in a record)."""
    try:
        rel = os.path.relpath(Path(source).resolve(), REPO)
    except ValueError:
        rel = Path(source).name
    return rel if not rel.startswith(os.pardir + os.sep + os.pardir) else Path(source).name


def _admit(cand: _Candidate, dest: Path, source: str, batch_ids: set, dry_run: bool) -> str:
    """Write one checked candidate into ``dest``; returns 'added' or 'present'."""
    final = dest / cand.profile / cand.kind / cand.id
    if cand.kind == "student" and cand.config.get("teacher"):
        tid = cand.config["teacher"]
        teacher_dir = dest / cand.profile / "teacher" / tid
        if tid not in batch_ids and not (teacher_dir / DONE).is_file():
            raise RecordError(f"student {cand.id} was distilled from teacher {tid}, which is neither recorded in "
                              f"{dest / cand.profile / 'teacher'} nor part of this import; import the teacher with "
                              f"its students")
        taught = cand.provenance.get("teacher") or {}
        want = taught.get("metrics_sha256")
        if want and (teacher_dir / "metrics.json").is_file() and tid not in batch_ids:
            have = _sha256((teacher_dir / "metrics.json").read_bytes())
            if have != want:
                raise RecordError(f"student {cand.id} was distilled from a different realisation of teacher {tid} "
                                  f"(its metrics differ from the recorded teacher's: the teacher was retrained "
                                  f"elsewhere); it is refused so that no student sits under a teacher that did not "
                                  f"teach it")
        from_record = taught.get("logits") if isinstance(taught.get("logits"), dict) else {}
        if from_record.get("from") == "record" and from_record.get("digest"):
            if tid in batch_ids:
                have = batch_ids[tid] if isinstance(batch_ids, dict) else None
            else:
                have = None
                if (teacher_dir / COMPACT_TRAIN_LOGITS).is_file():
                    have = logits_digest(_load_npz((teacher_dir / COMPACT_TRAIN_LOGITS).read_bytes(),
                                                   teacher_dir / COMPACT_TRAIN_LOGITS).get("logits", np.zeros(0)))
            if have != from_record["digest"]:
                raise RecordError(f"student {cand.id} was distilled from the float16 training-set logits of a record "
                                  f"of teacher {tid}, but the recorded teacher "
                                  f"{'carries no such logits' if have is None else 'carries other logits'}: it is "
                                  f"refused (import the teacher's record that taught it, or train the student again "
                                  f"from the recorded teacher)")
    if (final / DONE).is_file():
        old = final / "metrics.json"
        if old.is_file() and old.read_bytes() == cand.files["metrics.json"]:
            return "present"
        raise RecordError(f"{final} is already a finished record with different metrics; a finished record is never "
                          f"overwritten (delete that folder yourself if you mean to replace it)")
    if dry_run:
        return "added"
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".import-{cand.id}-", dir=final.parent))
    try:
        for name in ("config.json", "history.csv", "metrics.json", "provenance.json", COMPACT_PREDICTIONS,
                     COMPACT_TRAIN_LOGITS):
            if name in cand.files:  # the training-set logits: teachers only, and not in older records
                atomic_write_bytes(tmp / name, cand.files[name])
        atomic_write_bytes(tmp / MANIFEST, (json.dumps(cand.manifest(source), indent=1, sort_keys=True) + "\n").encode())
        atomic_write_bytes(tmp / DONE, cand.files[DONE])
        os.chmod(tmp, 0o755)
        if final.exists():  # an unfinished folder (never a finished one: checked above)
            shutil.rmtree(final)
        os.rename(tmp, final)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    return "added"


def _sweep(dest: Path):
    """Remove temporary folders left in ``dest`` by a killed import."""
    if dest.is_dir():
        for stale in dest.glob("*/*/.import-*"):
            shutil.rmtree(stale, ignore_errors=True)


def _admit_sidecar(src: Path, target: Path, report: list):
    """Copy a dataset sidecar that ``dest`` lacks (checked: an .npz of numbers and class names, no pickles)."""
    if target.is_file():
        return
    data = src.read_bytes()
    try:
        arrays = _load_npz(data, src)
        if not {"labels", "indices", "image_index", "images"} <= set(arrays):
            raise RecordError(f"{src} lacks labels, indices or images")
    except RecordError as err:
        report.append({"id": src.name, "kind": "dataset", "profile": target.parent.parent.name, "status": "refused",
                       "message": str(err)})
        return
    atomic_write_bytes(target, data)
    report.append({"id": src.name, "kind": "dataset", "profile": target.parent.parent.name, "status": "added",
                   "message": f"{len(data):,} bytes"})


def import_records(source, dest=None, profile: str | None = None, dry_run: bool = False,
                   strict: bool = True) -> list[dict]:
    """Add the finished runs found under ``source`` (a folder or a tar archive) to ``dest``.

    Returns one line per run: ``{"id", "kind", "profile", "status", "message"}`` with status
    ``added``, ``present`` (the same record was already there) or ``refused``. With ``strict``
    (the default) a refused run raises :class:`RecordError` after the others are processed.
    Teachers are admitted before students.
    """
    source = Path(source)
    dest = Path(dest) if dest is not None else default_results_root() or REPO / "results"
    if not source.exists():
        raise RecordError(f"{source} does not exist; give a folder of runs or an archive from "
                          f"`python -m kdlib export --archive`")
    with tempfile.TemporaryDirectory(prefix="kdlib-import-") as scratch:
        root = source
        if source.is_file():
            _safe_extract(source, Path(scratch))
            root = Path(scratch)
        found = [x for x in _find_runs(root) if profile is None or x[1] == profile]
        if not found:
            raise RecordError(f"no run folders (<profile>/<teacher|student>/<run id>/config.json) under {source}")
        found.sort(key=lambda x: (x[2] != "teacher", x[1], x[0].name))
        _sweep(dest)
        report, batch = [], {}  # teachers of this import -> the digest of their training-set logits (or None)
        for folder, prof, kind in found:
            line = {"id": folder.name, "kind": kind, "profile": prof}
            try:
                cand = _Candidate(folder, prof, kind).load()
                line["status"] = _admit(cand, dest, _describe_source(source), batch, dry_run)
                line["message"] = (f"{cand.size:,} bytes" + (f"; ignored {cand.ignored}" if cand.ignored else ""))
                if kind == "teacher":
                    batch[cand.id] = cand.train_logits_digest
            except RecordError as err:
                line["status"], line["message"] = "refused", str(err)
            report.append(line)
        if not dry_run:
            for side in sorted(root.rglob("datasets/*-test.npz")):
                _admit_sidecar(side, dest / side.parent.parent.name / "datasets" / side.name, report)
    refused = [r for r in report if r["status"] == "refused"]
    if refused and strict:
        raise RecordError(f"{len(refused)} of {len(report)} runs refused; the first: {refused[0]['message']}")
    return report


# --------------------------------------------------------------------------- exporting a store
def export_store(profile: str, runs=None, dest=None, plan_only: bool = True, grid_path=None,
                 archive=None, results="default") -> list[dict]:
    """Write the records of every finished run of ``profile`` in the store ``runs`` into ``dest``
    (default: the repository's ``results/``), and the dataset sidecar when the data are here.
    ``plan_only``: only the runs the current grid plans (not older recipes or one-off runs).
    ``archive``: also pack the records into this ``.tar.gz`` (what a GPU machine brings back).
    ``results``: the committed records the store's students may have been taught by (distilled from a
    record's logits): such a teacher's record travels with its students, so that the importer admits them
    (``"default"``: :func:`kdlib.runs.default_results_root`; ``None``: none)."""
    from .grid import load_grid, planned_configs

    store = RunStore(runs, profile, results=None)
    finished = store.runs()
    if not finished:
        raise RecordError(f"no finished runs of profile {profile!r} in {store.root / profile}; "
                          f"train some first (python -m kdlib grid --profile {profile})")
    grid = load_grid(grid_path)
    if plan_only:
        planned = {run_id(c) for c in planned_configs(profile, grid)}
        finished = [r for r in finished if r.id in planned]
    own = {r.id for r in finished}
    taught_by = sorted({r.config["teacher"] for r in finished if r.config["kind"] == "student"
                        and r.config.get("teacher") and r.config["teacher"] not in own})
    recorded = RunStore(runs, profile, results=results) if taught_by else None
    teachers = [t for t in (recorded.find(tid, "teacher") for tid in taught_by) if t is not None and t.record]
    with tempfile.TemporaryDirectory(prefix="kdlib-export-") as scratch:
        stage = Path(scratch) / "records"
        for r in finished + teachers:
            target = stage / profile / r.config["kind"] / r.id
            target.mkdir(parents=True)
            for name in ("config.json", "history.csv", "metrics.json", "provenance.json", DONE, FULL_PREDICTIONS,
                         COMPACT_PREDICTIONS, TRAIN_LOGITS, COMPACT_TRAIN_LOGITS, MANIFEST):
                if (r.folder / name).is_file() and (r.record or name != MANIFEST):
                    shutil.copy2(r.folder / name, target / name)
        if archive is not None:
            report = import_records(stage, Path(scratch) / "packed", profile, strict=False)
            packed = Path(scratch) / "packed"
            try:
                write_dataset_sidecar(packed, profile, grid)
            except Exception as err:  # noqa: BLE001 - the data may be absent here; the records still go
                print(f"note: no dataset sidecar ({err})", file=sys.stderr)
            archive = Path(archive)
            archive.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(prefix=archive.name + ".", suffix=".tmp", dir=archive.parent)
            os.close(fd)
            try:
                with tarfile.open(tmp, "w:gz") as tar:
                    if packed.is_dir():
                        tar.add(packed, arcname="records")
                os.chmod(tmp, 0o644)
                os.replace(tmp, archive)
            finally:
                if os.path.exists(tmp):
                    os.unlink(tmp)
        if dest is not None or archive is None:
            dest_root = Path(dest) if dest is not None else default_results_root() or REPO / "results"
            report = import_records(stage, dest_root, profile, strict=False)
            try:
                write_dataset_sidecar(dest_root, profile, grid)
            except Exception as err:  # noqa: BLE001
                print(f"note: no dataset sidecar ({err})", file=sys.stderr)
    return report


# --------------------------------------------------------------------------- dataset sidecar
def migrate_records(results_root, profile: str, transform, why: str, dry_run: bool = False) -> dict:
    """Rewrite the configs of ``profile``'s records with ``transform(config) -> config`` where a config
    described its run incompletely (a parameter added later, whose old implicit value the runs used).

    Each changed record moves to the id of its new config; students follow their teacher's new id.
    Every other file is kept byte for byte (provenance too: it names the run as it was made); the
    manifest gets the new checksums and ``migrated: {from, why}``. Every record is read with the
    importer's checks first. Returns ``{old_id: new_id}``.
    """
    root = Path(results_root) / profile
    ids: dict[str, str] = {}
    plans = []
    for kind in ("teacher", "student"):  # teachers first: students name their teacher's id
        for folder in sorted((root / kind).glob("*")):
            if not (folder / DONE).is_file():
                continue
            cand = _Candidate(folder, profile, kind).load()
            cfg = transform(json.loads(json.dumps(cand.config)))
            if kind == "student" and cfg.get("teacher") in ids:
                cfg["teacher"] = ids[cfg["teacher"]]
            new = run_id(cfg)
            if new == cand.id:
                continue
            if (root / kind / new).exists():
                raise RecordError(f"{folder} would move to {root / kind / new}, which exists; nothing was changed")
            ids[cand.id] = new
            plans.append((cand, cfg, new))
    if dry_run:
        return ids
    for cand, cfg, new in plans:
        final = root / cand.kind / new
        tmp = Path(tempfile.mkdtemp(prefix=f".migrate-{new}-", dir=final.parent))
        try:
            for p in cand.folder.iterdir():
                if p.name not in (MANIFEST, "config.json"):
                    shutil.copy2(p, tmp / p.name)
            config_bytes = (json.dumps(cfg, indent=2, sort_keys=True) + "\n").encode()
            atomic_write_bytes(tmp / "config.json", config_bytes)
            manifest = json.loads((cand.folder / MANIFEST).read_text()) if (cand.folder / MANIFEST).is_file() else {}
            files = dict(manifest.get("files") or {})
            files["config.json"] = _sha256(config_bytes)
            manifest.update(run_id=new, files=files,
                            migrated={"from": cand.id, "why": why, "on": time.strftime("%Y-%m-%d")})
            atomic_write_bytes(tmp / MANIFEST, (json.dumps(manifest, indent=1, sort_keys=True) + "\n").encode())
            os.chmod(tmp, 0o755)
            os.rename(tmp, final)
        finally:
            if tmp.exists():
                shutil.rmtree(tmp, ignore_errors=True)
        shutil.rmtree(cand.folder)
    return ids


def flipcrop_fill(fill: str):
    """A config transform for :func:`migrate_records`: flip+crop specs without ``fill`` get ``fill``."""
    def transform(cfg: dict) -> dict:
        cfg["augment"] = re.sub(r"flipcrop\(([^)]*)\)", lambda m: m.group(0) if "fill=" in m.group(1)
                                else f"flipcrop({m.group(1)},fill={fill})", cfg["augment"])
        return cfg
    return transform


def sidecar_path(results_root, profile: str, dataset: str) -> Path:
    return Path(results_root) / profile / "datasets" / f"{dataset}-test.npz"


def write_dataset_sidecar(results_root, profile: str, grid=None, overwrite: bool = False) -> Path | None:
    """Labels, indices, human labels (CIFAR-10) and explorer images of the profile's main test split."""
    from .data import CLASSES, DataError, human_labels_for, load_human_labels
    from .grid import load_grid, resolve_dataset
    from .pipeline import split_of

    grid = grid or load_grid()
    spec = resolve_dataset(grid, profile, "main")
    path = sidecar_path(results_root, profile, spec["name"])
    if path.is_file() and not overwrite:
        return path
    test = split_of(spec, "test", "test_subset")
    arrays = {"labels": test.labels.astype(np.int16), "indices": test.indices.astype(np.int32),
              "classes": np.array(CLASSES[spec["name"]])}
    if spec["name"] == "cifar10":
        try:
            arrays["human"] = human_labels_for(test, load_human_labels()).astype(np.float16)
        except (DataError, ValueError) as err:
            print(f"note: sidecar without CIFAR-10H ({err})", file=sys.stderr)
    pick = embedding_subset(test.labels, EXPLORER_PER_CLASS)
    arrays["image_index"] = pick.astype(np.int32)
    arrays["images"] = np.ascontiguousarray(test.images[pick]).astype(np.uint8)
    atomic_write_bytes(path, _npz_bytes(arrays))
    return path


def read_dataset_sidecar(results_root, profile: str, dataset: str) -> dict | None:
    path = sidecar_path(results_root, profile, dataset)
    if not path.is_file():
        return None
    fix = (f"restore it with git (git checkout -- {path}) or rebuild it where the dataset is present "
           f"(python -m kdlib export --profile {profile})")
    try:
        with np.load(path, allow_pickle=False) as z:
            out = {k: z[k] for k in z.files}
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as err:
        raise RecordError(f"{path} is not a readable dataset sidecar ({type(err).__name__}: {err}); {fix}") from None
    missing = {"labels", "indices", "classes"} - set(out)
    n = len(out.get("labels", ()))
    if missing or len(out["indices"]) != n or ("human" in out and out["human"].shape != (n, len(out["classes"]))):
        raise RecordError(f"{path} lacks {sorted(missing)} or its arrays disagree in length; {fix}" if missing else
                          f"{path}: its labels, indices and human labels disagree in shape; {fix}")
    out["labels"] = out["labels"].astype(np.int64)
    out["indices"] = out["indices"].astype(np.int64)
    if "human" in out:
        h = out["human"].astype(np.float32)
        out["human"] = h / np.clip(h.sum(1, keepdims=True), 1e-12, None)
    out["classes"] = [str(c) for c in out["classes"]]
    return out


# --------------------------------------------------------------------------- command line
def _print_report(report: list[dict]):
    for line in report:
        print(f"{line['status']:8s} {line['profile']}/{line['kind']}/{line['id']}  {line['message']}")
    counts = {s: sum(r["status"] == s for r in report) for s in ("added", "present", "refused")}
    print(", ".join(f"{n} {s}" for s, n in counts.items()))


def main_import(argv=None):
    from .cli import ArgumentParser

    p = ArgumentParser(prog="kdlib import",
                                description="Add finished runs (a folder or an archive from a GPU machine) to results/.")
    p.add_argument("source", help="a run store folder, a folder of records, or a .tar.gz from `kdlib export --archive`")
    p.add_argument("--to", default=None, help="the results folder (None: $KDLIB_RESULTS or the repository's results/)")
    p.add_argument("--profile", default=None, help="import only this profile's runs (None: every profile)")
    p.add_argument("--dry-run", action="store_true", help="check everything, write nothing")
    args = p.parse_args(argv)
    try:
        report = import_records(args.source, args.to, args.profile, args.dry_run, strict=False)
    except RecordError as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    _print_report(report)
    return 1 if any(r["status"] == "refused" for r in report) else 0


def main_export(argv=None):
    from .cli import ArgumentParser

    p = ArgumentParser(prog="kdlib export",
                                description="Write compact records of a run store's finished runs into results/.")
    p.add_argument("--profile", required=True, help="the grid profile whose finished runs are exported")
    p.add_argument("--runs", default=None, help="the run store (None: $KDLIB_RUNS or ./runs)")
    p.add_argument("--to", default=None, help="the results folder (None: $KDLIB_RESULTS or the repository's results/)")
    p.add_argument("--archive", default=None, help="also pack the records into this .tar.gz (None: no archive)")
    p.add_argument("--all", action="store_true", help="also runs the current grid does not plan")
    p.add_argument("--grid", default=None, help="grid YAML (None: grid.yaml at the repository root)")
    args = p.parse_args(argv)
    try:
        report = export_store(args.profile, args.runs, args.to if args.to or not args.archive else None,
                              plan_only=not args.all, grid_path=args.grid, archive=args.archive)
    except RecordError as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    _print_report(report)
    return 1 if any(r["status"] == "refused" for r in report) else 0
