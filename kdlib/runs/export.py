"""Writing the records of a run store into results/ (``python -m kdlib export``)."""
from __future__ import annotations

import json
import os
import re
import shutil
import sys
import tarfile
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from ..base.io import atomic_path, atomic_write_bytes
from ..base.paths import REPO, default_results_root
from .admit import import_records
from .candidates import _RecordCandidate, _sha256
from .compact import MANIFEST, RecordError
from .sidecar import write_dataset_sidecar
from .store import (
    COMPACT_PREDICTIONS,
    COMPACT_TRAIN_LOGITS,
    DONE,
    FULL_PREDICTIONS,
    TRAIN_LOGITS,
    RunStore,
    run_id,
)

__all__ = ["export_store"]


# --------------------------------------------------------------------------- exporting a store
def export_store(profile: str, runs: str | Path | None = None, dest: str | Path | None = None,
                 plan_only: bool = True, grid_path: Path | str | None = None, archive: str | Path | None = None,
                 results: str | Path | None = "default") -> list[dict]:
    """Write the records of every finished run of ``profile`` in the store ``runs`` into ``dest``
    (default: the repository's ``results/``), and the dataset sidecar when the data are here.
    ``plan_only``: only the runs the current grid plans (not older recipes or one-off runs).
    ``archive``: also pack the records into this ``.tar.gz`` (what a GPU machine brings back).
    ``results``: the committed records the store's students may have been taught by (distilled from a
    record's logits): such a teacher's record travels with its students, so that the importer admits them
    (``"default"``: :func:`kdlib.runs.default_results_root`; ``None``: none)."""
    from .plan import load_grid, planned_configs

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
            with atomic_path(archive, fix="pass --archive to a disk with room") as tmp, \
                    tarfile.open(tmp, "w:gz") as tar:
                if packed.is_dir():
                    tar.add(packed, arcname="records")
        if dest is not None or archive is None:
            dest_root = Path(dest) if dest is not None else default_results_root() or REPO / "results"
            report = import_records(stage, dest_root, profile, strict=False)
            try:
                write_dataset_sidecar(dest_root, profile, grid)
            except Exception as err:  # noqa: BLE001
                print(f"note: no dataset sidecar ({err})", file=sys.stderr)
    return report


# --------------------------------------------------------------------------- dataset sidecar
def migrate_records(results_root: str | Path, profile: str, transform: Callable[[dict], dict], why: str,
                    dry_run: bool = False) -> dict:
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
            cand = _RecordCandidate(folder, profile, kind).load()
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


def flipcrop_fill(fill: str) -> Callable[[dict], dict]:
    """A config transform for :func:`migrate_records`: flip+crop specs without ``fill`` get ``fill``."""
    def transform(cfg: dict) -> dict:
        cfg["augment"] = re.sub(r"flipcrop\(([^)]*)\)", lambda m: m.group(0) if "fill=" in m.group(1)
                                else f"flipcrop({m.group(1)},fill={fill})", cfg["augment"])
        return cfg
    return transform
