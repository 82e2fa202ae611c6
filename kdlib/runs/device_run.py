"""One GPU slice, used to the end: ``python -m kdlib device-run --profile paper --seeds 0 1 2 --budget 540 --out DIR``.

GPU time comes in slices of at most ten minutes, and a GPU machine's run store dies with it. This
command runs the grid in phases (:data:`PHASES`), each for every requested seed before the next phase:

1. E1 + E2 (the teachers and their students: the core claims), seed by seed;
2. E4, E5 and E3 (the ablations, then MNIST), seed by seed;
3. E6-E13 (the extensions, by their priority), seed by seed;

within a phase and seed, teachers before their students and the experiments in that order. So a slice
that ends early leaves complete seeds of the core claims rather than one seed of everything: the book's
paired intervals need whole E1 + E2 seeds, and an E4 run is of no use to them. It stops *before* a task
whose estimated time would pass the budget (nothing after it runs, so no phase is started out of turn).
After every seed of every phase, and at the end, it packs the compact records of every finished
run into ``DIR/records.tar.gz`` (importable here with ``python -m kdlib import``); a task that
fails is logged and the next one runs, and an interruption still packs what finished. DIR receives at
most these files: ``records.tar.gz``, ``log.txt`` (per-task and per-run wall times),
``summary.json``, and with ``--bench`` ``bench.json`` (``python -m kdlib bench --only levers``: the
speed levers against the plain step, MFU against the datasheet and a measured peak).

Runs already committed in ``results/`` are cache hits. Students of a teacher that exists only as a record
train from the record's float16 training-set logits where their input is clean and the record carries
them; the others (augmented input: the teacher must run online, and a record has no weights; or a record
without logits) are skipped with a note (``--ignore-results`` trains everything afresh).
"""
from __future__ import annotations

import json
import os
import statistics
import sys
import time
from pathlib import Path
from typing import Callable, Iterable

__all__ = ["device_run", "main", "ORDER", "PHASES", "work_order", "speed_summary"]


# the phases of a slice, each run for every seed before the next (issue 20): the core claims (E1 teachers, E2
# students), the paper's ablations and MNIST, then the extensions by their priority (issue 13: paper-literal
# teachers E6, temperatures E7, the regime cross E8, the controls E9, E10 and E11, then issue 24's remedies E12 and
# random-teacher control E13); an experiment named nowhere
# here runs in a last phase of its own
PHASES = [["E1", "E2"], ["E4", "E5", "E3"], ["E6", "E7", "E8", "E9", "E10", "E11", "E12", "E13"]]


ORDER = [e for phase in PHASES for e in phase]  # the order within a phase and seed


def _ordered_tasks(profile: str, grid: dict, only: list[str] | None = None) -> list:
    from .plan import plan

    tasks = plan(profile, grid)
    rank = {e: i for i, e in enumerate(ORDER)}

    def key(t):
        first = min((rank.get(e, len(ORDER)) for e in t.experiments), default=len(ORDER))
        return (first, t.kind != "teacher")

    tasks = sorted(tasks, key=key)  # stable: by the book's order of experiments, each one's teachers first
    if only:
        tasks = [t for t in tasks if set(t.experiments) & set(only)]
    return tasks


def _phase(task) -> int:
    """The phase of a task (0-based): that of its earliest experiment (a task shared by E2 and E4 is E2's)."""
    where = {e: i for i, phase in enumerate(PHASES) for e in phase}
    return min((where.get(e, len(PHASES)) for e in task.experiments), default=len(PHASES))


def work_order(profile: str, grid: dict, seeds: list[int],
               only: list[str] | None = None) -> list[tuple[int, int, object]]:
    """``(phase, seed, task)`` in the order a slice runs them: phase by phase (:data:`PHASES`, 1-based here),
    within a phase seed by seed (in the order asked), within a seed the experiments in :data:`ORDER`, each
    one's teachers first."""
    tasks = _ordered_tasks(profile, grid, only)
    phases = sorted({_phase(t) for t in tasks})
    return [(p + 1, seed, t) for p in phases for seed in seeds for t in tasks if _phase(t) == p]


def _kind_key(task) -> tuple:
    """Tasks that should take alike: the same kind and the same model(s)."""
    return (task.kind, task.params.get("model") or tuple(task.params.get("students", ())))


def _estimate(task, seconds_by_kind: dict, default: float) -> float:
    """A task's expected seconds for one seed: the mean of finished tasks of its kind and models, else
    ``default``."""
    seen = seconds_by_kind.get(_kind_key(task)) or seconds_by_kind.get(task.kind)
    return sum(seen) / len(seen) if seen else default


class _Slice:
    """One slice's state: its clock, log, summary and the wall times by task kind that estimate the next task."""

    def __init__(self, profile: str, seeds: list[int], budget: float, out: Path, runs: Path, device: str,
                 results: str | None, grid_path: Path | str | None, log: Callable[[str], object]) -> None:
        self.t0 = time.perf_counter()
        self.profile, self.budget, self.out, self.runs, self.device = profile, budget, out, runs, device
        self.results, self.grid_path, self.log = results, grid_path, log
        self.lines: list[str] = []
        self.seconds_by_kind: dict = {}
        self.packed = 0
        self.summary = {"profile": profile, "seeds": list(seeds), "budget_s": budget, "device": str(device),
                        "tasks": [], "stopped": None, "skipped": [], "failed": []}

    def elapsed(self) -> float:
        return time.perf_counter() - self.t0

    def note(self, text: str) -> None:
        stamp = f"[{self.elapsed():7.1f}s] {text}"
        self.lines.append(stamp)
        self.log(stamp)
        _write_text(self.out / "log.txt", "\n".join(self.lines) + "\n")

    def bench(self) -> None:
        """``kdlib bench --only levers`` into bench.json; a failure is logged, never fatal."""
        from .bench_cli import main as bench_main
        from .pipeline import resolve_device

        self.note("benchmark")
        try:
            dev = resolve_device(self.device)
            # on a CPU only the code paths: one step of batch 8
            sizes = ["--steps", "20"] if dev.type == "cuda" else ["--batch-size", "8", "--steps", "1"]
            bench_main(["--device", str(dev), "--only", "levers", *sizes, "--out", str(self.out / "bench.json")])
        except SystemExit:
            pass
        except Exception as err:  # noqa: BLE001 - a benchmark failure must not cost the slice its runs
            self.note(f"benchmark failed: {type(err).__name__}: {err}")

    def pack(self, reason: str) -> None:
        """Every finished record of the store (and the records that taught its students) into records.tar.gz."""
        from .export import export_store
        from .store import RunStore

        if not RunStore(self.runs, self.profile, results=None).runs():
            self.note(f"nothing finished to pack ({reason})")
            return
        report = export_store(self.profile, runs=self.runs, archive=self.out / "records.tar.gz",
                              grid_path=self.grid_path, results=self.results)
        self.packed = sum(r["status"] == "added" for r in report)
        self.note(f"packed {self.packed} records into records.tar.gz ({reason})")

    def over_budget(self, phase: int, seed: int, task: object, default_estimate: float, reserve: float) -> bool:
        """Whether ``task`` would pass the budget (then the slice stops before it, and says so)."""
        elapsed, guess = self.elapsed(), _estimate(task, self.seconds_by_kind, default_estimate)
        if elapsed + guess <= self.budget - reserve:
            return False
        self.summary["stopped"] = (f"before {task.name} seed {seed} (phase {phase}): {elapsed:.0f}s spent, about "
                                   f"{guess:.0f}s more would pass the {self.budget:.0f}s budget")
        self.note("stop " + self.summary["stopped"])
        return True

    def run(self, phase: int, seed: int, task: object, progress: bool) -> None:
        """One task for one seed: its runs (timed), or a skip or a failure in the summary."""
        from .execute import run_task
        from .pipeline import TeacherWeightsMissing

        started = time.perf_counter()
        try:
            done = run_task(task, runs=self.runs, device=self.device, progress=progress, grid_path=self.grid_path,
                            seeds=[seed], results=self.results)
        except TeacherWeightsMissing as err:
            why = ("its input is augmented and its teacher is a committed record (no weights)"
                   if err.online else "its teacher is a committed record without training-set logits")
            self.summary["skipped"].append({"task": task.name, "seed": seed, "phase": phase, "why": why})
            self.note(f"skip {task.name} seed {seed}: {why} (use --ignore-results to retrain the teacher too)")
            return
        except Exception as err:  # noqa: BLE001 - one broken task must not cost the slice the others
            why = f"{type(err).__name__}: {str(err).splitlines()[0] if str(err) else ''}"
            self.summary["failed"].append({"task": task.name, "seed": seed, "phase": phase, "why": why,
                                           "seconds": round(time.perf_counter() - started, 2)})
            self.note(f"FAILED {task.name} seed {seed}: {why}")
            return
        self._record(phase, seed, task, done, time.perf_counter() - started)

    def _record(self, phase: int, seed: int, task: object, done: list, took: float) -> None:
        trained = [r for r in done if not getattr(r, "record", False)]
        per_run = {r.id: round(r.provenance().get("wall_seconds", {}).get("train", 0.0), 2) for r in trained}
        epoch_s = {r.id: _median_epoch_seconds(r) for r in trained}
        engines = sorted({str(r.provenance().get("engine", "plain")) for r in trained})
        if trained:  # a cache hit says nothing about how long training takes
            self.seconds_by_kind.setdefault(_kind_key(task), []).append(took)
            self.seconds_by_kind.setdefault(task.kind, []).append(took)
        self.summary["tasks"].append({"task": task.name, "seed": seed, "phase": phase, "seconds": round(took, 2),
                                      "runs": [r.id for r in done], "train_seconds": per_run,
                                      "epoch_seconds": epoch_s, "engines": engines, "cache_hit": not trained})
        self.note(f"{task.name} seed {seed}: {took:.1f}s" + (" (cache hit)" if not trained else
                                                            f", engine {'/'.join(engines)}, train {per_run}, "
                                                            f"epoch {epoch_s}"))

    def finish(self) -> dict:
        """The summary, with speed figures, written to summary.json."""
        summary = self.summary
        summary["records"] = self.packed
        summary["seconds"] = round(self.elapsed(), 1)
        summary["speed"] = speed_summary(summary["tasks"])
        _write_text(self.out / "summary.json", json.dumps(summary, indent=1) + "\n")
        sp = summary["speed"]
        self.note(f"speed: teacher epoch median {sp['teacher_epoch_s']} s, student group median "
                  f"{sp['student_group_s']} s, seconds per seed (trained tasks) {sp['seed_s']}")
        self.note(f"device-run finished in {summary['seconds']}s; {self.packed} records in records.tar.gz")
        return summary


def _check_seeds(profile: str, grid: dict, seeds: list[int]) -> None:
    planned = grid["profiles"][profile]["seeds"] if profile in grid.get("profiles", {}) else []
    extra = [s for s in seeds if s not in planned]
    if extra:  # the book reads only the runs the grid plans: records of other seeds would never be shown
        raise ValueError(f"seeds {extra} are not in profile {profile!r}'s seeds {planned}; add them to "
                         f"grid.yaml first (the book reads only the runs the grid plans)")


def device_run(profile: str, seeds: list[int], budget: float, out: Path | str, runs: Path | str | None = None,
               device: str = "auto", only: list[str] | None = None, results: str | None = "default",
               bench: bool = False, default_estimate: float = 60.0, reserve: float = 15.0, progress: bool = False,
               grid_path: Path | str | None = None, log: Callable[[str], object] = print) -> dict:
    """Run the grid for ``seeds`` within ``budget`` seconds (see the module docstring); returns the summary."""
    from .plan import load_grid

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    runs = Path(runs or os.environ.get("KDLIB_RUNS") or out.parent / (out.name + "-runs"))
    grid = load_grid(grid_path)
    _check_seeds(profile, grid, seeds)
    slice_ = _Slice(profile, seeds, budget, out, runs, device, results, grid_path, log)
    if bench:
        slice_.bench()
    work = work_order(profile, grid, list(seeds), only)
    try:
        for i, (phase, seed, task) in enumerate(work):
            if slice_.over_budget(phase, seed, task, default_estimate, reserve):
                break
            slice_.run(phase, seed, task, progress)
            if i + 1 == len(work) or work[i + 1][:2] != (phase, seed):  # this seed of this phase is done
                slice_.pack(f"phase {phase} ({' '.join(_phase_names(phase))}) seed {seed} done")
    finally:  # whatever happened, what finished leaves the machine
        if slice_.summary["stopped"] or sys.exc_info()[0] is not None:
            try:
                slice_.pack("budget" if slice_.summary["stopped"] else f"stopped by {sys.exc_info()[0].__name__}")
            except Exception as err:  # noqa: BLE001
                slice_.note(f"packing failed: {type(err).__name__}: {err}")
    return slice_.finish()


def _phase_names(phase: int) -> list[str]:
    """The experiments of a 1-based phase (the last, beyond :data:`PHASES`: every other experiment)."""
    return PHASES[phase - 1] if phase <= len(PHASES) else ["others"]


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


def _median(values: Iterable[float | None]) -> float | None:
    """The median (the upper middle of an even count), rounded to ms; None for no values."""
    values = [v for v in values if v is not None]
    return round(statistics.median_high(values), 3) if values else None


def _median_epoch_seconds(run: object) -> float | None:
    """The median epoch time of a finished run, from its history (the pipeline's epoch, not a bare step)."""
    try:
        return _median(float(h["seconds"]) for h in run.read_history())
    except (OSError, KeyError, ValueError):
        return None


def _write_text(path: Path, text: str) -> None:
    from ..base.io import atomic_write_text

    atomic_write_text(path, text)


def main(argv: list[str] | None = None) -> int:
    from ..base.cli import ArgumentParser, CliError, check_device
    from ..base.gridfile import check_experiments, check_profile
    from ..train.recipe import ENGINES

    p = ArgumentParser(prog="kdlib device-run", description=__doc__.splitlines()[0])
    p.add_argument("--profile", default="paper", help="grid profile")
    p.add_argument("--seeds", nargs="+", type=int, required=True,
                   help="seeds: E1+E2 for every seed first, then E4/E5/E3 for every seed, then E6-E13")
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
