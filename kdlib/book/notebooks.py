"""Execute the parameterised notebooks with papermill: ``python -m kdlib notebook TASK``.

``notebooks/*.py`` are jupytext percent sources with a cell tagged ``parameters``. papermill
cannot read them directly, so they are converted in memory, executed with the task's
parameters (``--cwd`` set to the output folder, so figures land beside the notebook), written
to a temporary file and renamed into place: a half-executed notebook never looks finished.
"""
from __future__ import annotations

import json
import os
import sys
from pathlib import Path

from ..base.io import atomic_path
from ..base.paths import NOTEBOOKS, REPO

__all__ = ["execute", "execute_task", "execute_prepared", "execute_chapter", "NOTEBOOKS", "main", "task_output"]




_SOURCES = {"teacher": "teacher.py", "students": "students.py"}


def _load_source(path: Path):
    import jupytext

    nb = jupytext.read(path)
    if not any("parameters" in c.get("metadata", {}).get("tags", []) for c in nb.cells):
        raise ValueError(f"{path} has no cell tagged 'parameters'; tag the cell that sets the defaults "
                         f"(`# %% tags=[\"parameters\"]` in the jupytext source) so papermill can inject values")
    nb.metadata.setdefault("kernelspec", {"name": "python3", "display_name": "Python 3", "language": "python"})
    return nb


def _relative_paths(parameters: dict, cwd: Path) -> dict:
    """Path parameters relative to the kernel's folder: no absolute path of this machine in a page."""
    out = dict(parameters)
    for key in ("runs", "grid"):
        if isinstance(out.get(key), str) and os.path.isabs(out[key]):
            out[key] = os.path.relpath(out[key], cwd)
    return out


def _fold_injected_parameters(path):
    """Fold papermill's injected-parameters cell like the notebook's own parameters cell (a reader opens it
    with "Show code cell source"; the values stay in the page)."""
    import nbformat

    nb = nbformat.read(path, as_version=4)
    changed = False
    for cell in nb.cells:
        tags = cell.get("metadata", {}).get("tags", [])
        if "injected-parameters" in tags and "hide-input" not in tags:
            cell.metadata["tags"] = tags + ["hide-input"]
            changed = True
    if changed:
        nbformat.write(nb, path)


def _retitle(nb, title: str):
    """Replace the first heading of the first markdown cell by ``title``."""
    for cell in nb.cells:
        if cell.cell_type == "markdown":
            lines = cell.source.splitlines()
            for i, line in enumerate(lines):
                if line.startswith("# "):
                    lines[i] = "# " + title
                    cell.source = "\n".join(lines)
                    return


def execute(source: Path | str, output: Path | str, parameters: dict, cwd: Path | str | None = None,
            timeout: float | None = None, title: str | None = None, fold_parameters: bool = False,
            progress: bool | None = None) -> Path:
    """Run notebook ``source`` (jupytext .py or .ipynb) with ``parameters`` into ``output`` atomically.

    ``title`` replaces the notebook's first heading (run reports are titled by what they show);
    ``fold_parameters`` folds papermill's injected-parameters cell (chapters; reports show it: it says
    how to re-run them). ``progress``: papermill's progress bar and each cell's output on stderr (default:
    ``$KDLIB_NOTEBOOK_PROGRESS``; ``kdlib notebook --progress``, what the Snakefile's logs hold)."""
    import papermill

    source, output = Path(source), Path(output)
    # the kernel runs in the output folder: make kdlib importable and the data root absolute there
    repo = str(REPO)
    paths = os.environ.get("PYTHONPATH", "").split(os.pathsep)
    if repo not in paths:
        os.environ["PYTHONPATH"] = os.pathsep.join([repo] + [p for p in paths if p])
    os.environ.setdefault("KDLIB_DATA", str(Path("data").resolve()))
    nb = _load_source(source) if source.suffix == ".py" else None
    if title and nb is not None:
        _retitle(nb, title)
    output.parent.mkdir(parents=True, exist_ok=True)
    kernel_cwd = Path(cwd or output.parent).resolve()
    parameters = _relative_paths(parameters, kernel_cwd)
    with atomic_path(output, suffix=".tmp.ipynb", fix="free space for the executed notebook") as tmp:
        # a cell that hangs (e.g. a threading deadlock) fails after $KDLIB_CELL_TIMEOUT seconds, not never
        timeout = timeout or int(os.environ.get("KDLIB_CELL_TIMEOUT", "7200"))
        if progress is None:
            progress = os.environ.get("KDLIB_NOTEBOOK_PROGRESS", "") not in ("", "0")
        if progress:
            import logging

            logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s", stream=sys.stderr)
        papermill.execute_notebook(nb if nb is not None else str(source), str(tmp), parameters=parameters,
                                   cwd=str(kernel_cwd), progress_bar=bool(progress), log_output=bool(progress),
                                   kernel_name="python3", execution_timeout=timeout)
        if fold_parameters:
            _fold_injected_parameters(tmp)
    return output


def task_output(task_name: str, profile: str, book_dir: Path | str = "book") -> Path:
    return Path(book_dir) / "runs" / profile / f"{task_name}.ipynb"


def execute_task(task_name: str, profile: str, runs: Path | str | None = None, device: str = "auto",
                 output: Path | str | None = None, grid_path: Path | str | None = None, train: bool = True,
                 extra: dict | None = None) -> Path:
    """Execute the notebook of one task of ``plan(profile)`` (``train=False``: report the finished
    runs and committed records, list the missing ones, train nothing)."""
    from ..runs.plan import load_grid, plan
    from .report import task_title

    grid = load_grid(grid_path)
    tasks = {t.name: t for t in plan(profile, grid)}
    if task_name not in tasks:
        from ..base.hints import did_you_mean

        raise ValueError(f"no task {task_name!r} in profile {profile!r}" + did_you_mean(task_name, tasks)
                         + f" (kdlib grid --profile {profile} --plan lists them)")
    task = tasks[task_name]
    from ..runs.plan import resolve_dataset

    dataset = resolve_dataset(grid, profile, task.params["dataset"])["name"]
    return execute_prepared(task.kind, task_name, profile, task.params, task_title(task, dataset), runs, device,
                            output, grid_path, train, extra)


def execute_prepared(kind: str, task_name: str, profile: str, params: dict, title: str,
                     runs: Path | str | None = None, device: str = "auto", output: Path | str | None = None,
                     grid_path: Path | str | None = None, train: bool = True, extra: dict | None = None) -> Path:
    """Execute a task's notebook from parameters already planned (what Snakemake passes: it planned the grid
    once, so each job starts without planning it again, and without importing torch before the kernel)."""
    if kind not in _SOURCES:
        raise ValueError(f"task kind must be one of {sorted(_SOURCES)}, got {kind!r}")
    params = dict(params)
    params["profile"] = profile
    params["runs"] = str(Path(runs or os.environ.get("KDLIB_RUNS", "runs")).resolve())
    if grid_path:
        params["grid"] = str(Path(grid_path).resolve())
    params["device"] = device
    params["train"] = bool(train)
    params.update(extra or {})
    out = Path(output) if output else task_output(task_name, profile)
    return execute(NOTEBOOKS / _SOURCES[kind], out, params, title=title)


def _raw_grid(path=None) -> dict:
    """grid.yaml as YAML, unvalidated: enough to name a profile; the notebook validates the grid itself."""
    from ..base.cli import CliError
    from ..base.gridfile import read_grid

    try:
        grid = read_grid(path)
    except (OSError, ValueError) as err:
        raise CliError(' '.join(str(err).split())[:300]) from None
    return grid if isinstance(grid, dict) else {}


def execute_chapter(chapter: str, profile: str, runs: Path | str | None = None, output: Path | str | None = None,
                    part: str | None = None, extra: dict | None = None) -> Path:
    """Execute a book chapter (``notebooks/<chapter>.py``) over the run store of ``profile``
    (``part``: 'I' or 'II', the part of the book the chapter belongs to)."""
    source = NOTEBOOKS / f"{chapter}.py"
    if chapter in _SOURCES or not source.is_file():
        chapters = sorted(p.stem for p in NOTEBOOKS.glob("*.py") if p.name not in _SOURCES.values())
        raise ValueError(f"no chapter {chapter!r}; chapters: {chapters}")
    runs = str(Path(runs or os.environ.get("KDLIB_RUNS", "runs")).resolve())
    out = Path(output) if output else Path("book") / "chapters" / f"{chapter}.ipynb"
    params = {"profile": profile, "runs": runs}
    if part is not None:
        params["part"] = part
    params.update(extra or {})
    return execute(source, out, params, fold_parameters=True)


def main(argv: list[str] | None = None) -> int:
    from ..base.cli import ArgumentParser, CliError, check_device, default_profile
    from ..base.gridfile import check_profile

    p = ArgumentParser(prog="kdlib notebook", description=__doc__.splitlines()[0])
    p.add_argument("task", nargs="?", help="a task name from `kdlib grid --plan` (or --chapter NAME)")
    p.add_argument("--chapter", default=None, help="execute notebooks/CHAPTER.py (a book chapter) instead")
    p.add_argument("--profile", default=default_profile(), help="grid profile ($PROFILE overrides the default)")
    p.add_argument("--runs", default=None, help="run store root (None: $KDLIB_RUNS or ./runs)")
    p.add_argument("--device", default="auto", help="auto (CUDA when visible, else CPU), cpu, cuda, cuda:N or mps")
    p.add_argument("--grid", default=None, help="grid YAML (None: grid.yaml at the repository root)")
    p.add_argument("--output", default=None,
                   help="the executed notebook (None: book/runs/PROFILE/TASK.ipynb or book/chapters/CHAPTER.ipynb)")
    p.add_argument("--part", default=None, choices=["I", "II"], help="the part of the book a chapter belongs to")
    p.add_argument("--no-train", action="store_true",
                   help="report finished runs and committed records only; list the missing ones, train nothing")
    p.add_argument("--progress", action="store_true",
                   help="papermill's progress bar and every cell's output on stderr (for a log file)")
    p.add_argument("-p", "--parameter", nargs=2, action="append", default=[], metavar=("NAME", "VALUE"),
                   help="a papermill parameter of the notebook, repeatable (VALUE read as YAML: 4.0, true, [lenet])")
    p.add_argument("--kind", default=None, choices=sorted(_SOURCES),
                   help="with --title: TASK is already planned, its parameters all given by -p (what Snakemake "
                        "does); the grid is not planned again")
    p.add_argument("--title", default=None, help="the run report's title (with --kind)")
    args = p.parse_args(argv)
    import yaml

    if args.progress:
        os.environ["KDLIB_NOTEBOOK_PROGRESS"] = "1"
    try:
        check_profile(args.profile, _raw_grid(args.grid))
        check_device(args.device)
        extra = {}
        for name, value in args.parameter:
            try:
                extra[name] = yaml.safe_load(value)
            except yaml.YAMLError as err:
                raise CliError(f"-p {name} {value!r}: not a YAML value ({str(err).splitlines()[0]}); "
                               f"quote strings with spaces or colons") from None
        if args.chapter:
            out = execute_chapter(args.chapter, args.profile, args.runs, args.output, args.part, extra)
        elif args.task and args.kind:
            if not args.title:
                p.error("--kind needs --title")
            out = execute_prepared(args.kind, args.task, args.profile, extra, args.title, args.runs, args.device,
                                   args.output, args.grid, train=not args.no_train)
        elif args.task:
            out = execute_task(args.task, args.profile, args.runs, args.device, args.output, args.grid,
                               train=not args.no_train, extra=extra)
        else:
            p.error("name a task, or --chapter NAME")
    except ValueError as err:  # CliError, an unknown task or chapter: one line, nothing written
        print(f"error: {err}", file=sys.stderr)
        return 2
    except Exception as err:  # papermill's: the failing cell, the notebook's own message
        if type(err).__name__ != "PapermillExecutionError":
            raise
        lines = [ln for ln in str(err).splitlines() if ln.strip()]
        print(f"error: the notebook stopped: {lines[-1] if lines else err}", file=sys.stderr)
        return 1
    print(json.dumps({"task": args.task, "chapter": args.chapter, "notebook": str(out)}))
    return 0
