"""What the runs cost and what the missing ones will: wall times read from every run's provenance.json.

Students of one lockstep group train together and each records the group's wall time, so a group is
counted once (the runs that share one teacher, seed, student regime and recipe, and finished within a
second of each other)."""
from __future__ import annotations

import math
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # names for annotations only
    from ..runs.store import RunStore


__all__ = ["spent", "estimate_missing"]


def _group_key(run) -> tuple:
    cfg = run.config
    if cfg["kind"] == "teacher":
        return ("teacher", run.id)
    return ("students", cfg.get("teacher"), cfg["seed"], cfg["augment"], cfg.get("alpha"), cfg.get("temperature"),
            cfg.get("teacher_calibration", "none"), cfg.get("kd_logits", "raw"))


def spent(store: RunStore) -> dict:
    """Wall time by device and kind, each lockstep group counted once: ``{device: {"teacher" | "students":
    {"seconds", "tasks"}}}`` plus the per-task seconds (``by_task``: kind, model(s) -> list of seconds)."""
    groups: dict = {}
    for run in store.runs():
        prov = run.provenance()
        total = (prov.get("wall_seconds") or {}).get("total")
        if total is None:
            continue
        key = _group_key(run)
        g = groups.setdefault(key, {"device": prov.get("device_name") or "?", "seconds": 0.0, "models": set(),
                                    "kind": "teacher" if key[0] == "teacher" else "students"})
        g["seconds"] = max(g["seconds"], float(total))  # every member records the group's time
        g["models"].add(run.config["model"]["name"])
    out: dict = {}
    by_task: dict = {}
    for g in groups.values():
        d = out.setdefault(g["device"], {})
        k = d.setdefault(g["kind"], {"seconds": 0.0, "tasks": 0})
        k["seconds"] += g["seconds"]
        k["tasks"] += 1
        by_task.setdefault((g["device"], g["kind"], tuple(sorted(g["models"]))), []).append(g["seconds"])
    return {"by_device": out, "by_task": by_task}


def estimate_missing(plan_rows: list[dict], measured: dict, device: str) -> dict:
    """Seconds the fillable missing runs of ``plan_rows`` (:func:`kdlib.book.fill.fill_plan`) would take on
    ``device``: each missing teacher at the mean measured teacher task, each missing student group (one per task
    and seed) at the mean measured group of the same models, else of any students. Returns seconds, the tasks
    counted and those with no measurement to go by."""
    times = {k[1:]: v for k, v in measured["by_task"].items() if k[0] == device}
    teacher = [s for (kind, _), v in times.items() if kind == "teacher" for s in v]
    students_any = [s for (kind, _), v in times.items() if kind == "students" for s in v]
    groups: dict = {}
    for r in plan_rows:
        if r["fillable"]:
            groups.setdefault((r["task"], r["seed"], r["kind"]), set()).add(r["model"])
    seconds, unknown = 0.0, 0
    for (_, _, kind), models in groups.items():
        if kind == "teacher":
            pool = teacher
        else:
            pool = [s for (k, ms), v in times.items() if k == "students" and set(models) <= set(ms) for s in v] or \
                students_any
        if pool:
            seconds += sum(pool) / len(pool)
        else:
            unknown += 1
    return {"seconds": seconds if groups else 0.0, "tasks": len(groups), "unknown": unknown,
            "minutes": seconds / 60 if groups else 0.0, "complete": unknown == 0 and not math.isnan(seconds)}
