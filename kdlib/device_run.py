"""One GPU slice, used to the end: ``python -m kdlib device-run --profile paper --seeds 0 1 2 --budget 540 --out DIR``.

GPU time comes in slices of at most ten minutes, and a GPU machine's run store dies with it. This
command runs the grid seed by seed (a whole seed before the next, so that every slice adds
complete seeds), teachers before their students and the experiments in the order the book needs
them (E1, E2, E4, E5, E3, then any other), and stops *before* a task whose estimated time would
pass the budget. After every seed, and at the end, it packs the compact records of every finished
run into ``DIR/records.tar.gz`` (importable here with ``python -m kdlib import``); a task that
fails is logged and the next one runs, and an interruption still packs what finished. DIR receives at
most these files: ``records.tar.gz``, ``log.txt`` (per-task and per-run wall times),
``summary.json``, and with ``--bench`` ``bench.json`` (``python -m kdlib bench --only levers``: the
speed levers against the plain step, MFU against the datasheet and a measured peak).

Runs already committed in ``results/`` are cache hits; students whose teacher exists only as a
record (no weights) are skipped with a note (``--ignore-results`` trains everything afresh).
"""
from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path

__all__ = ["device_run", "main", "ORDER", "speed_summary"]

# the order the book needs the experiments in: the paper's, then the extensions by their priority (issue 13:
# paper-literal teachers E6, temperatures E7, the regime cross E8, the controls E9, E10 and E11)
ORDER = ["E1", "E2", "E4", "E5", "E3", "E6", "E7", "E8", "E9", "E10", "E11"]


def _ordered_tasks(profile: str, grid: dict, only=None):
    from .grid import plan

    tasks = plan(profile, grid)
    rank = {e: i for i, e in enumerate(ORDER)}

    def key(t):
        first = min((rank.get(e, len(ORDER)) for e in t.experiments), default=len(ORDER))
        return (first, t.kind != "teacher")

    tasks = sorted(tasks, key=key)  # stable: by the book's order of experiments, each one's teachers first
    if only:
        tasks = [t for t in tasks if set(t.experiments) & set(only)]
    return tasks


def _kind_key(task) -> tuple:
    """Tasks that should take alike: the same kind and the same model(s)."""
    return (task.kind, task.params.get("model") or tuple(task.params.get("students", ())))


def _estimate(task, seconds_by_kind: dict, default: float) -> float:
    """A task's expected seconds for one seed: the mean of finished tasks of its kind and models, else
    ``default``."""
    seen = seconds_by_kind.get(_kind_key(task)) or seconds_by_kind.get(task.kind)
    return sum(seen) / len(seen) if seen else default


def device_run(profile: str, seeds: list[int], budget: float, out, runs=None, device="auto", only=None,
               results="default", bench: bool = False, default_estimate: float = 60.0, reserve: float = 15.0,
               progress: bool = False, grid_path=None, log=print) -> dict:
    """Run the grid for ``seeds`` within ``budget`` seconds (see the module docstring); returns the summary."""
    from .grid import load_grid, run_task
    from .pipeline import TeacherWeightsMissing
    from .records import export_store
    from .runs import RunStore

    t0 = time.perf_counter()
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    runs = Path(runs or os.environ.get("KDLIB_RUNS") or out.parent / (out.name + "-runs"))
    grid = load_grid(grid_path)
    planned_seeds = grid["profiles"][profile]["seeds"] if profile in grid.get("profiles", {}) else []
    extra = [s for s in seeds if s not in planned_seeds]
    if extra:  # the book reads only the runs the grid plans: records of other seeds would never be shown
        raise ValueError(f"seeds {extra} are not in profile {profile!r}'s seeds {planned_seeds}; add them to "
                         f"grid.yaml first (the book reads only the runs the grid plans)")
    lines: list[str] = []
    summary = {"profile": profile, "seeds": list(seeds), "budget_s": budget, "device": str(device), "tasks": [],
               "stopped": None, "skipped": [], "failed": []}

    def note(text: str):
        stamp = f"[{time.perf_counter() - t0:7.1f}s] {text}"
        lines.append(stamp)
        log(stamp)
        _write_text(out / "log.txt", "\n".join(lines) + "\n")

    if bench:
        from .bench import main as bench_main

        note("benchmark")
        from .pipeline import resolve_device

        try:
            dev = resolve_device(device)
            sizes = ["--steps", "20"] if dev.type == "cuda" else ["--batch-size", "8", "--steps", "1"]  # CPU: code paths
            bench_main(["--device", str(dev), "--only", "levers", *sizes, "--out", str(out / "bench.json")])
        except SystemExit:
            pass
        except Exception as err:  # noqa: BLE001 - a benchmark failure must not cost the slice its runs
            note(f"benchmark failed: {type(err).__name__}: {err}")
    tasks = _ordered_tasks(profile, grid, only)
    seconds_by_kind: dict = {}
    packed = 0

    def pack(reason: str):
        nonlocal packed
        store = RunStore(runs, profile, results=None)
        if not store.runs():
            note(f"nothing finished to pack ({reason})")
            return
        report = export_store(profile, runs=runs, archive=out / "records.tar.gz", grid_path=grid_path)
        packed = sum(r["status"] == "added" for r in report)
        note(f"packed {packed} records into records.tar.gz ({reason})")

    try:
        for seed in seeds:
            for task in tasks:
                elapsed = time.perf_counter() - t0
                guess = _estimate(task, seconds_by_kind, default_estimate)
                if elapsed + guess > budget - reserve:
                    summary["stopped"] = (f"before {task.name} seed {seed}: {elapsed:.0f}s spent, about {guess:.0f}s "
                                          f"more would pass the {budget:.0f}s budget")
                    note("stop " + summary["stopped"])
                    break
                started = time.perf_counter()
                try:
                    done = run_task(task, runs=runs, device=device, progress=progress, grid_path=grid_path,
                                    seeds=[seed], results=results)
                except TeacherWeightsMissing:
                    summary["skipped"].append({"task": task.name, "seed": seed,
                                               "why": "its teacher is a committed record without weights"})
                    note(f"skip {task.name} seed {seed}: its teacher is a committed record (use --ignore-results "
                         f"to retrain the teacher too)")
                    continue
                except Exception as err:  # noqa: BLE001 - one broken task must not cost the slice the others
                    why = f"{type(err).__name__}: {str(err).splitlines()[0] if str(err) else ''}"
                    summary["failed"].append({"task": task.name, "seed": seed, "why": why,
                                              "seconds": round(time.perf_counter() - started, 2)})
                    note(f"FAILED {task.name} seed {seed}: {why}")
                    continue
                took = time.perf_counter() - started
                trained = [r for r in done if not getattr(r, "record", False)]
                per_run = {r.id: round(r.provenance().get("wall_seconds", {}).get("train", 0.0), 2) for r in trained}
                epoch_s = {r.id: _median_epoch_seconds(r) for r in trained}
                engines = sorted({str(r.provenance().get("engine", "plain")) for r in trained})
                if trained:  # a cache hit says nothing about how long training takes
                    seconds_by_kind.setdefault(_kind_key(task), []).append(took)
                    seconds_by_kind.setdefault(task.kind, []).append(took)
                summary["tasks"].append({"task": task.name, "seed": seed, "seconds": round(took, 2),
                                         "runs": [r.id for r in done], "train_seconds": per_run,
                                         "epoch_seconds": epoch_s, "engines": engines, "cache_hit": not trained})
                note(f"{task.name} seed {seed}: {took:.1f}s" + (" (cache hit)" if not trained else
                                                                 f", engine {'/'.join(engines)}, train {per_run}, "
                                                                 f"epoch {epoch_s}"))
            if summary["stopped"]:
                break
            pack(f"seed {seed} done")
    finally:  # whatever happened, what finished leaves the machine
        if summary["stopped"] or sys.exc_info()[0] is not None:
            try:
                pack("budget" if summary["stopped"] else f"stopped by {sys.exc_info()[0].__name__}")
            except Exception as err:  # noqa: BLE001
                note(f"packing failed: {type(err).__name__}: {err}")
    summary["records"] = packed
    summary["seconds"] = round(time.perf_counter() - t0, 1)
    summary["speed"] = speed_summary(summary["tasks"])
    _write_text(out / "summary.json", json.dumps(summary, indent=1) + "\n")
    sp = summary["speed"]
    note(f"speed: teacher epoch median {sp['teacher_epoch_s']} s, student group median {sp['student_group_s']} s, "
         f"seconds per seed (trained tasks) {sp['seed_s']}")
    note(f"device-run finished in {summary['seconds']}s; {packed} records in records.tar.gz")
    return summary


def speed_summary(tasks: list[dict]) -> dict:
    """The figures issue 12's targets are stated in, from a device-run's task list: the median teacher epoch
    (the pipeline's, from the runs' histories), the median wall time of a trained student-group task, and the
    wall seconds of trained tasks per seed (cache hits excluded)."""
    trained = [t for t in tasks if not t.get("cache_hit")]
    teacher_epochs = [v for t in trained if t["task"].startswith("teacher-") for v in t["epoch_seconds"].values()]
    groups = [t["seconds"] for t in trained if t["task"].startswith("students-")]
    seeds: dict = {}
    for t in trained:
        seeds[str(t["seed"])] = round(seeds.get(str(t["seed"]), 0.0) + t["seconds"], 1)
    return {"teacher_epoch_s": _median(teacher_epochs), "student_group_s": _median(groups), "seed_s": seeds}


def _median(values) -> float | None:
    """The median (the upper middle of an even count), rounded to ms; None for no values."""
    values = sorted(v for v in values if v is not None)
    return round(values[len(values) // 2], 3) if values else None


def _median_epoch_seconds(run) -> float | None:
    """The median epoch time of a finished run, from its history (the pipeline's epoch, not a bare step)."""
    try:
        return _median(float(h["seconds"]) for h in run.read_history())
    except (OSError, KeyError, ValueError):
        return None


def _write_text(path: Path, text: str):
    from .runs import atomic_write_text

    atomic_write_text(path, text)


def main(argv=None):
    from .cli import ArgumentParser, CliError, check_device, check_experiments, check_profile
    from .train import ENGINES

    p = ArgumentParser(prog="kdlib device-run", description=__doc__.splitlines()[0])
    p.add_argument("--profile", default="paper", help="grid profile")
    p.add_argument("--seeds", nargs="+", type=int, required=True, help="seeds, run one whole seed after another")
    p.add_argument("--budget", type=float, required=True, help="seconds this slice may use, export included")
    p.add_argument("--out", required=True, help="folder for records.tar.gz, log.txt, summary.json (and bench.json)")
    p.add_argument("--runs", default=None, help="the run store (None: $KDLIB_RUNS or OUT-runs beside OUT)")
    p.add_argument("--device", default="auto", help="auto (CUDA when visible, else CPU), cpu, cuda, cuda:N or mps")
    p.add_argument("--only", nargs="*", metavar="EXPERIMENT",
                   help="experiments to run (None: all, in the book's order)")
    p.add_argument("--bench", action="store_true", help="run kdlib bench first into bench.json")
    p.add_argument("--ignore-results", action="store_true", help="set the committed records aside")
    p.add_argument("--engine", default="auto", choices=ENGINES,
                   help="how fit takes each step (auto: CUDA graphs on a GPU, plain elsewhere; sets $KDLIB_ENGINE)")
    p.add_argument("--estimate", type=float, default=60.0,
                   help="seconds assumed for a task of a kind not yet timed in this slice")
    args = p.parse_args(argv)
    try:
        check_profile(args.profile)
        check_experiments(args.only)
        check_device(args.device)
    except CliError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    if args.budget <= 0:
        p.error("--budget must be > 0 seconds")
    if args.engine != "auto":
        os.environ["KDLIB_ENGINE"] = args.engine
    try:
        device_run(args.profile, args.seeds, args.budget, args.out, args.runs, args.device, args.only,
                   None if args.ignore_results else "default", args.bench, args.estimate)
    except ValueError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
