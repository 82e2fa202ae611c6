"""Executing a planned grid: one task, or every task of a profile (``python -m kdlib grid``)."""
from __future__ import annotations

import json
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING

from ..train.recipe import torch_threads
from .plan import (
    Task,
    _groups,
    _profile,
    _teacher_args,
    experiment_names,
    load_grid,
    plan,
    task_configs,
    teacher_configs,
)
from .store import Run, RunStore

if TYPE_CHECKING:
    import torch

__all__ = ["task_status", "task_runs", "run_task", "run_grid", "main"]


def run_task(task: Task | dict, runs: str | Path | None = None, device: str | torch.device | None = None,
             progress: bool = True, grid_path: Path | str | None = None, seeds: list[int] | None = None,
             results: str | Path | None = "default") -> list[Run]:
    """Execute one task (a Task, or the params dict of one) and return its finished runs.

    ``results``: the committed records read as finished runs (default: the repository's
    ``results/``; ``None`` sets them aside, so everything is trained into ``runs``)."""
    from .pipeline import run_students, run_teacher

    kind = task.kind if isinstance(task, Task) else task["kind"]
    p = dict(task.params if isinstance(task, Task) else task)
    p.pop("kind", None)
    grid = load_grid(grid_path)
    store = RunStore(runs, p["profile"], results=results)
    # the profile's thread count, the same on every path that trains (recorded in provenance.json)
    with torch_threads(_profile(grid, p["profile"]).get("threads")):
        if kind == "teacher":
            ls, match, untrained = _teacher_args(p)
            if match is not None:  # the teachers whose accuracy these stop at come first (cache hits when done)
                for c in teacher_configs(grid, p["profile"], p["dataset"], p["model"], match, seeds):
                    run_teacher(c, store, device, progress)
            cfgs = teacher_configs(grid, p["profile"], p["dataset"], p["model"], p["regime"], seeds, ls, match,
                                   untrained)
            return [run_teacher(c, store, device, progress) for c in cfgs]
        out = []
        for tcfg, group in _groups(grid, p, seeds):
            if tcfg is not None:
                if p.get("teacher_match_accuracy_of") is not None:  # the teacher whose accuracy it stops at
                    run_teacher(teacher_configs(grid, p["profile"], p["dataset"], p["teacher_model"],
                                                p["teacher_match_accuracy_of"], [tcfg["seed"]])[0], store, device,
                                progress)
                run_teacher(tcfg, store, device, progress)  # a cache hit when the teacher task ran first
            out.extend(run_students(group, store, device, progress))
        return out


def task_status(task: Task | dict, runs: str | Path | None = None, grid_path: Path | str | None = None,
                seeds: list[int] | None = None, grid: dict | None = None) -> tuple[list, list]:
    """(finished runs, configs not finished) of one task, training nothing: what a report shows
    for a profile that is not trained here (the paper profile on a CPU). ``grid``: an already loaded grid."""
    kind = task.kind if isinstance(task, Task) else task["kind"]
    p = dict(task.params if isinstance(task, Task) else task)
    p["kind"] = kind
    grid = grid or load_grid(grid_path)
    store = RunStore(runs, p["profile"])
    done, missing = [], []
    for cfg in task_configs(p, grid, seeds):
        run = store.run(cfg)
        (done if run.done else missing).append(run if run.done else cfg)
    return done, missing


def task_runs(task: Task | dict, train: bool = True, runs: str | Path | None = None,
              device: str | torch.device | None = None, progress: bool = True, grid_path: Path | str | None = None,
              seeds: list[int] | None = None) -> tuple[list, list]:
    """(finished runs, configs still missing) of a task: trained here (``train``) or only looked up."""
    if train:
        return run_task(task, runs=runs, device=device, progress=progress, grid_path=grid_path, seeds=seeds), []
    return task_status(task, runs=runs, grid_path=grid_path, seeds=seeds)


def run_grid(profile: str, runs: str | Path | None = None, device: str | torch.device | None = None,
             progress: bool = True, grid_path: Path | str | None = None, only: list[str] | None = None,
             seeds: list[int] | None = None, results: str | Path | None = "default",
             names: list[str] | None = None) -> float:
    tasks = plan(profile, load_grid(grid_path))
    if names:  # whole task names, e.g. teacher-main-resnet18-flipcrop (its dependencies run as needed)
        unknown = sorted(set(names) - {t.name for t in tasks})
        if unknown:
            from ..base.hints import did_you_mean

            raise ValueError(f"unknown task(s) {unknown}" + "".join(did_you_mean(n, [t.name for t in tasks]) for n in unknown)
                             + f" (python -m kdlib grid --profile {profile} --plan lists them)")
        tasks = [t for t in tasks if t.name in names]
    if only:
        unknown = set(only) - {e for t in tasks for e in t.experiments}
        if unknown:
            grid = load_grid(grid_path)
            elsewhere = {e: [p for p in grid["profiles"] if e in experiment_names(p, grid)]
                         for e in sorted(unknown) if e in (grid.get("experiments") or {})}
            if elsewhere:
                raise ValueError("; ".join(f"profile {profile!r} does not run {e} (its experiments: "
                                           f"{experiment_names(profile, grid)}); profiles that do: {ps}"
                                           for e, ps in elsewhere.items()))
            raise ValueError(f"unknown experiment(s) {sorted(unknown)}; the grid has "
                             f"{sorted({e for t in tasks for e in t.experiments})}")
        tasks = [t for t in tasks if set(t.experiments) & set(only)]
    t0 = time.perf_counter()
    for i, task in enumerate(tasks, 1):
        print(f"[{i}/{len(tasks)}] {task.name}", flush=True)
        run_task(task, runs, device, progress, grid_path, seeds, results)
    return time.perf_counter() - t0


def main(argv: list[str] | None = None) -> int | None:
    from ..base.cli import ArgumentParser, CliError, check_device, default_profile
    from ..base.gridfile import check_experiments, check_profile

    p = ArgumentParser(prog="kdlib grid", description="Run every task of a profile in one process.")
    p.add_argument("--profile", default=default_profile(), help="grid profile ($PROFILE overrides the default)")
    p.add_argument("--runs", default=None, help="run store root (None: $KDLIB_RUNS or ./runs)")
    p.add_argument("--device", default="auto", help="auto (CUDA when visible, else CPU), cpu, cuda, cuda:N or mps")
    p.add_argument("--grid", default=None, help="grid YAML (None: grid.yaml at the repository root)")
    p.add_argument("--only", nargs="*", metavar="EXPERIMENT", help="experiments to run, e.g. E1 E2 (None: all)")
    p.add_argument("--seeds", nargs="*", type=int, help="run only these seeds (None: the profile's)")
    p.add_argument("--task", nargs="*", dest="tasks", metavar="TASK",
                   help="run only these tasks, by name (see --plan; None: every task)")
    p.add_argument("--plan", action="store_true", help="print the tasks as JSON and exit")
    p.add_argument("--no-progress", action="store_true", help="no per-epoch progress bars")
    p.add_argument("--ignore-results", action="store_true",
                   help="set the committed records (results/) aside: train every run into the run store")
    args = p.parse_args(argv)
    from .pipeline import TeacherWeightsMissing

    try:
        grid = load_grid(args.grid)
        check_profile(args.profile, grid)
        check_experiments(args.only, grid)
        if args.plan:
            print(json.dumps([vars(t) for t in plan(args.profile, grid)], indent=1))
            return 0
        check_device(args.device)
        seconds = run_grid(args.profile, args.runs, args.device, not args.no_progress, args.grid, args.only,
                           args.seeds, None if args.ignore_results else "default", args.tasks)
    except (TeacherWeightsMissing, ValueError, CliError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 1 if isinstance(err, TeacherWeightsMissing) else 2
    print(f"profile {args.profile}: grid finished in {seconds:.1f} s")
