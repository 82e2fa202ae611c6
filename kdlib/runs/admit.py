"""The gate of records: every record enters ``results/`` through :func:`_admit`.

:func:`import_records` adds records from a folder or an archive (``python -m kdlib import``); what a record
is, and the checks of the gate, are described in :mod:`kdlib.runs.compact`.
"""
from __future__ import annotations

import json
import os
import shutil
import tarfile
import tempfile
from pathlib import Path

import numpy as np

from ..base.io import atomic_write_bytes
from ..base.paths import REPO, default_results_root
from .candidates import _MAX_MEMBER, _find_runs, _load_npz, _RecordCandidate, _sha256
from .compact import (
    MANIFEST,
    RecordError,
    logits_digest,
)
from .store import COMPACT_PREDICTIONS, COMPACT_TRAIN_LOGITS, DONE

__all__ = ["import_records"]






_MAX_ARCHIVE = 2 * 2**30


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


def _admit(cand: _RecordCandidate, dest: Path, source: str, batch_ids: set, dry_run: bool) -> str:
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


def import_records(source: str | Path, dest: str | Path | None = None, profile: str | None = None,
                   dry_run: bool = False, strict: bool = True) -> list[dict]:
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
                cand = _RecordCandidate(folder, prof, kind).load()
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
