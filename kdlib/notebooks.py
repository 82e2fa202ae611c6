"""Execute the parameterised notebooks with papermill: ``python -m kdlib notebook TASK``.

``notebooks/*.py`` are jupytext percent sources with a cell tagged ``parameters``. papermill
cannot read them directly, so they are converted in memory, executed with the task's
parameters (``--cwd`` set to the output folder, so figures land beside the notebook), written
to a temporary file and renamed into place: a half-executed notebook never looks finished.
"""
from __future__ import annotations

import argparse
import json
import os
import tempfile
from pathlib import Path

__all__ = ["execute", "execute_task", "execute_chapter", "NOTEBOOKS", "main", "task_output"]

NOTEBOOKS = Path(__file__).resolve().parent.parent / "notebooks"
_SOURCES = {"teacher": "teacher.py", "students": "students.py"}


def _load_source(path: Path):
    import jupytext

    nb = jupytext.read(path)
    if not any("parameters" in c.get("metadata", {}).get("tags", []) for c in nb.cells):
        raise ValueError(f"{path} has no cell tagged 'parameters'; tag the cell that sets the defaults "
                         f"(`# %% tags=[\"parameters\"]` in the jupytext source) so papermill can inject values")
    nb.metadata.setdefault("kernelspec", {"name": "python3", "display_name": "Python 3", "language": "python"})
    return nb


def execute(source, output, parameters: dict, cwd=None, timeout=None):
    """Run notebook ``source`` (jupytext .py or .ipynb) with ``parameters`` into ``output`` atomically."""
    import papermill

    source, output = Path(source), Path(output)
    # the kernel runs in the output folder: make kdlib importable and the data root absolute there
    repo = str(NOTEBOOKS.parent)
    paths = os.environ.get("PYTHONPATH", "").split(os.pathsep)
    if repo not in paths:
        os.environ["PYTHONPATH"] = os.pathsep.join([repo] + [p for p in paths if p])
    os.environ.setdefault("KDLIB_DATA", str(Path("data").resolve()))
    nb = _load_source(source) if source.suffix == ".py" else None
    output.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=output.stem + ".", suffix=".tmp.ipynb", dir=output.parent)
    os.close(fd)
    try:
        # a cell that hangs (e.g. a threading deadlock) fails after $KDLIB_CELL_TIMEOUT seconds, not never
        timeout = timeout or int(os.environ.get("KDLIB_CELL_TIMEOUT", "7200"))
        papermill.execute_notebook(nb if nb is not None else str(source), tmp, parameters=parameters,
                                   cwd=str(cwd or output.parent), progress_bar=False,
                                   kernel_name="python3", execution_timeout=timeout)
        os.chmod(tmp, 0o644)
        os.replace(tmp, output)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return output


def task_output(task_name: str, profile: str, book_dir="book") -> Path:
    return Path(book_dir) / "runs" / profile / f"{task_name}.ipynb"


def execute_task(task_name: str, profile: str, runs=None, device="auto", output=None, grid_path=None):
    """Execute the notebook of one task of ``plan(profile)``."""
    from .grid import load_grid, plan

    tasks = {t.name: t for t in plan(profile, load_grid(grid_path))}
    if task_name not in tasks:
        raise ValueError(f"no task {task_name!r} in profile {profile!r}; see python -m kdlib grid --plan")
    task = tasks[task_name]
    params = dict(task.params)
    params["runs"] = str(Path(runs or os.environ.get("KDLIB_RUNS", "runs")).resolve())
    if grid_path:
        params["grid"] = str(Path(grid_path).resolve())
    params["device"] = device
    out = Path(output) if output else task_output(task_name, profile)
    return execute(NOTEBOOKS / _SOURCES[task.kind], out, params)


def execute_chapter(chapter: str, profile: str, runs=None, output=None):
    """Execute a book chapter (``notebooks/<chapter>.py``) over the run store of ``profile``."""
    source = NOTEBOOKS / f"{chapter}.py"
    if chapter in _SOURCES or not source.is_file():
        chapters = sorted(p.stem for p in NOTEBOOKS.glob("*.py") if p.name not in _SOURCES.values())
        raise ValueError(f"no chapter {chapter!r}; chapters: {chapters}")
    runs = str(Path(runs or os.environ.get("KDLIB_RUNS", "runs")).resolve())
    out = Path(output) if output else Path("book") / "chapters" / f"{chapter}.ipynb"
    return execute(source, out, {"profile": profile, "runs": runs})


def main(argv=None):
    p = argparse.ArgumentParser(prog="python -m kdlib notebook", description=__doc__.splitlines()[0])
    p.add_argument("task", nargs="?", help="a task name from `python -m kdlib grid --plan`")
    p.add_argument("--chapter", default=None, help="execute notebooks/CHAPTER.py (a book chapter) instead")
    p.add_argument("--profile", default=os.environ.get("PROFILE", "quick"))
    p.add_argument("--runs", default=None)
    p.add_argument("--device", default="auto")
    p.add_argument("--grid", default=None)
    p.add_argument("--output", default=None)
    args = p.parse_args(argv)
    if args.chapter:
        out = execute_chapter(args.chapter, args.profile, args.runs, args.output)
    elif args.task:
        out = execute_task(args.task, args.profile, args.runs, args.device, args.output, args.grid)
    else:
        p.error("name a task, or --chapter NAME")
    print(json.dumps({"task": args.task, "chapter": args.chapter, "notebook": str(out)}))
