"""The runs a chapter lacks and the commands that would fill them."""
from __future__ import annotations

from typing import TYPE_CHECKING

from ..runs.store import RunStore

if TYPE_CHECKING:  # names for annotations only
    from collections.abc import Iterable


__all__ = ["fill_command", "missing_runs", "fill_plan", "fill_commands", "PARTIAL_SEED_POLICY"]


def fill_command(profile: str, seeds: Iterable[int], experiments: Iterable[str] | None = None, gpu: bool = True) -> str:
    """The command that makes runs of ``profile`` for ``seeds`` (``experiments``: only the tasks of these): on a
    GPU machine ``device-run`` and the import that brings its records here; on this machine ``kdlib grid``."""
    only = f" --only {' '.join(experiments)}" if experiments else ""
    seeds_ = " ".join(map(str, seeds))
    if not gpu:
        return f"python -m kdlib grid --profile {profile}{only} --seeds {seeds_}"
    return (f"python -m kdlib device-run --profile {profile}{only} --seeds {seeds_} --budget 540 "
            f"--out OUT  # on a GPU; then here: python -m kdlib import OUT/records.tar.gz")


# What a missing run is, and what fills it (stated in the book's "Missing runs" sections):
# a run is *fillable* when a command can make it: a teacher always (it needs nothing but data); a student when
# it needs no teacher, when its teacher is missing too (the same command trains the teacher first), or when its
# teacher can teach from where it is (a run store with weights and training logits, or a committed record that
# carries its training-set logits, for the students distilled from cached logits: see kdlib.pipeline). It is
# *not fillable* when its teacher is a committed record that cannot teach it (no weights, and no logits or a
# student that needs the teacher online): a retrained teacher would be another realisation, whose students the
# importer refuses. Such a seed stays partial for good: new seeds complete the cell, never a retrained teacher.
NOT_FILLABLE = ("its teacher is a committed record that cannot teach it (no weights here, and no training-set logits "
                "or a student that needs the teacher online)")


PARTIAL_SEED_POLICY = ("A seed whose teachers are committed records without what their missing students need stays "
                       "partial: no command can add those students (a retrained teacher is another realisation, "
                       "whose students the importer refuses), and its completed comparisons are used as they are. "
                       "New seeds complete the cells.")


def fill_plan(store: RunStore, grid: dict | None = None, experiments: Iterable[str] | None = None,
              seeds: Iterable[int] | None = None) -> list[dict]:
    """Every unfinished run that the grid plans for ``store.profile`` (``experiments``: the tasks of these; by
    default the paper's, every experiment not marked ``extension``), one row each: ``task``, ``experiments``,
    ``seed``, ``id``, ``kind``, ``only`` (the task's experiments among those asked for: what a command selects it
    by), ``fillable`` and, when not, ``why`` and the ``teacher``. The rule is the pipeline's own
    (`kdlib.pipeline._teacher_for` decides whether a finished teacher can teach), so what is listed as
    fillable is what ``device-run`` or ``kdlib grid`` trains and what is not is what they skip."""
    from ..runs.pipeline import TeacherWeightsMissing
    from ..runs.pipeline import _teacher_for as teacher_for
    from ..runs.plan import extension_experiments, load_grid, plan, task_configs
    from ..runs.store import run_id

    grid = grid or load_grid()
    wanted = set(experiments) if experiments is not None else set(grid.get("experiments") or {}) - set(
        extension_experiments(grid))
    tasks = [t for t in plan(store.profile, grid) if set(t.experiments) & wanted]
    tasks.sort(key=lambda t: t.kind != "teacher")  # stable: teachers first, as every runner orders them
    seeds = list(seeds) if seeds is not None else list(grid["profiles"][store.profile]["seeds"])
    out = []
    for seed in seeds:
        coming: set = set()  # teachers of this seed that the same command trains first
        for task in tasks:
            for cfg in task_configs(task, grid, [seed]):
                if store.run(cfg).done:
                    continue
                rid = run_id(cfg)
                row = {"task": task.name, "experiments": ",".join(task.experiments), "seed": seed, "id": rid,
                       "kind": cfg["kind"], "model": cfg["model"]["name"], "fillable": True, "why": "",
                       "only": ",".join(e for e in task.experiments if e in wanted)}
                tid = cfg.get("teacher") if cfg["kind"] == "student" and cfg.get("alpha", 0) > 0 else None
                if tid and tid not in coming:
                    try:
                        teacher_for(store, tid, [cfg])
                    except TeacherWeightsMissing:
                        row.update(fillable=False, teacher=tid, why=NOT_FILLABLE)
                    except FileNotFoundError:
                        row.update(fillable=False, teacher=tid, why="its teacher is neither finished nor planned")
                if cfg["kind"] == "teacher":
                    coming.add(rid)
                out.append(row)
    return out


def fill_commands(plan_rows: list[dict], profile: str, gpu: bool) -> list[dict]:
    """The commands that make every fillable run of ``plan_rows`` (:func:`fill_plan`): one per group of seeds
    whose fillable runs lie in the same experiments, each with the run ids it trains (``ids``)."""
    by_seed: dict = {}
    for r in plan_rows:
        if r["fillable"]:
            by_seed.setdefault(r["seed"], []).append(r)
    groups: dict = {}
    for seed, rs in sorted(by_seed.items()):
        exps = tuple(sorted({e for r in rs for e in r["only"].split(",")}, key=lambda e: (len(e), e)))
        groups.setdefault(exps, []).append(seed)
    return [{"seeds": seeds, "experiments": list(exps), "command": fill_command(profile, seeds, list(exps), gpu),
             "ids": sorted(r["id"] for s in seeds for r in by_seed[s])} for exps, seeds in groups.items()]


def missing_runs(store: RunStore, grid: dict | None = None, gpu: bool = False,
                 experiments: Iterable[str] | None = None) -> list[dict]:
    """The tasks of ``store.profile`` whose runs are not all finished, one row per task: how many runs are
    missing, for which seeds, how many of them a command can make and the command that does (``gpu``: the
    profile is made for a GPU, so the command is the GPU machine's), and the seeds whose runs no command can
    make, with why (:func:`fill_plan`)."""
    from ..runs.plan import load_grid, plan, task_configs

    grid = grid or load_grid()
    rows = fill_plan(store, grid, experiments)
    by_task: dict = {}
    for r in rows:
        by_task.setdefault(r["task"], []).append(r)
    tasks = {t.name: t for t in plan(store.profile, grid)}
    missing = []
    for name, rs in by_task.items():
        ok = [r for r in rs if r["fillable"]]
        bad = [r for r in rs if not r["fillable"]]
        seeds_ok = sorted({r["seed"] for r in ok})
        missing.append({"task": name, "experiments": rs[0]["experiments"], "missing runs": len(rs),
                        "of": len(task_configs(tasks[name], grid)), "seeds": ", ".join(map(str, sorted({r["seed"] for r in rs}))),
                        "fillable": len(ok),
                        "command": fill_command(store.profile, seeds_ok, rs[0]["only"].split(","), gpu) if ok else "-",
                        "cannot be filled": (f"{len(bad)} (seed {', '.join(map(str, sorted({r['seed'] for r in bad})))}):"
                                             f" {bad[0]['why']}" if bad else "")})
    return missing
