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
distilled from the record on any machine (:func:`kdlib.runs.pipeline.run_students`); students whose input is
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

import hashlib
import io
from typing import TYPE_CHECKING

import numpy as np

from .store import COMPACT_PREDICTIONS, DONE, FULL_PREDICTIONS, TRAIN_LOGITS

if TYPE_CHECKING:
    from numpy.typing import ArrayLike

__all__ = ["RecordError", "embedding_subset", "compact_arrays", "BUDGET", "EMBED_PER_CLASS", "EXPLORER_PER_CLASS",
           "MANIFEST", "logits_digest", "TRAIN_LOGITS_BYTES"]


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


class RecordError(ValueError):
    """A record that cannot be admitted: the message names the file, the cause and the fix."""


# --------------------------------------------------------------------------- compact predictions
def embedding_subset(labels: ArrayLike, per_class: int = EMBED_PER_CLASS, seed: int = 0) -> np.ndarray:
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
    logits its probabilities are not stored (they are their softmax: :meth:`kdlib.runs.store.Run.read_predictions`
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


def logits_digest(logits: ArrayLike) -> str:
    """SHA-256 of a logits array as float16 (shape, then the values): the same for the same values whichever
    .npz holds them (an .npz's bytes carry the time it was written)."""
    arr = np.ascontiguousarray(logits, dtype=np.float16)
    return hashlib.sha256(repr(arr.shape).encode() + arr.tobytes()).hexdigest()
