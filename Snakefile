# The pipeline of kd-augment, expanded from grid.yaml: run reports -> chapters -> (jupyter-book) the book.
#
# The book has two parts, each filled by one profile of grid.yaml:
#   Part I  (book/part1, default profile `paper`): CIFAR-10, the paper's setting. Its runs come from the
#           committed records in results/<profile>/ (made on GPUs); nothing is trained here unless
#           `train` names part I (make book TRAIN=1). Reports are made for the tasks with finished runs.
#   Part II (book/part2, default profile `quick`): the laptop replication, trained by this pipeline.
#
#   snakemake --cores 2 --config part1=paper part2=quick              (what `make book` runs)
#   snakemake -n --config part2=paper train=II                        (dry run: the DAG of a GPU build)
#   snakemake --profile profiles/slurm --config part2=paper train=II     (a Slurm cluster: profiles/slurm/config.yaml)
# Each job executes one task's notebook with papermill (python -m kdlib notebook); every job
# writes the same run store as `python -m kdlib grid`, so the two paths are interchangeable.
#
# What reruns a job (Snakemake's default rerun triggers: mtime, params, input, code):
#   * its notebook source (notebooks/*.py) and kdlib's sources are inputs of every rule;
#   * grid.yaml is an input of the chapters (they read the whole plan), not of the run reports: a report's
#     params hold the run ids of its task (the hash of each run's config), so editing a recipe in grid.yaml
#     reruns exactly the reports whose runs it changes (and the chapters);
#   * papermill's progress and every cell's output go to logs/<part>/<notebook>.log.
#
# `snakemake --lint` leaves one warning per rule, by design:
#   * "Specify a conda environment or container": the environment is the project's .venv (requirements.txt),
#     the one `make book` creates; a second, per-rule environment would only drift from it.
import json
import os
import shlex
import sys
from glob import glob

sys.path.insert(0, workflow.basedir)
from kdlib.base.cli import DEFAULT_PROFILE  # noqa: E402
from kdlib.book.report import task_title  # noqa: E402
from kdlib.runs.execute import task_status  # noqa: E402
from kdlib.runs.plan import load_grid, plan, resolve_dataset, task_configs  # noqa: E402
from kdlib.runs.store import run_id  # noqa: E402

_KNOWN = {"part1", "part2", "train", "threads", "runs", "device", "profile"}
_unknown = set(config) - _KNOWN
if _unknown:
    raise ValueError(f"unknown --config key(s) {sorted(_unknown)}; known: {sorted(_KNOWN)}")

GRID = load_grid()
PROFILES = {"part1": config.get("part1", "paper"),
            "part2": config.get("part2", config.get("profile", os.environ.get("PROFILE", DEFAULT_PROFILE)))}
ROMAN = {"part1": "I", "part2": "II"}
TRAIN = {p for p in ("part1", "part2") if ROMAN[p] in str(config.get("train", "II")).replace(",", " ").split()}
RUNS = os.path.abspath(config.get("runs", os.environ.get("KDLIB_RUNS", "runs")))
DEVICE = config.get("device", "auto")
PY = sys.executable
# one thread per job on a CPU: `--cores N` then runs N notebooks side by side without oversubscription
THREADS = f"OMP_NUM_THREADS={config.get('threads', 1)} MKL_NUM_THREADS={config.get('threads', 1)}"
NOTEBOOK = f'{THREADS} "{PY}" -m kdlib notebook --progress'
KDLIB_SOURCES = sorted(glob(os.path.join(workflow.basedir, "kdlib", "**", "*.py"), recursive=True))  # every wing
GRID_FILE = os.path.join(workflow.basedir, "grid.yaml")
PAPER_TABLES = os.path.join(workflow.basedir, "book", "paper_tables.yaml")


def source(name):
    return os.path.join(workflow.basedir, "notebooks", f"{name}.py")


def _tasks(part):
    tasks = {t.name: t for t in plan(PROFILES[part], GRID)}
    if part in TRAIN:
        return tasks
    # a part that is not trained here reports only the tasks with at least one finished run
    return {n: t for n, t in tasks.items() if task_status(t, runs=RUNS, grid=GRID)[0]}


TASKS = {part: _tasks(part) for part in PROFILES}
CHAPTERS = ["results", "experiments", "dichotomy", "fidelity", "extensions", "explorer", "methods", "reproducibility"]


def reports(part):
    return [f"book/runs/{part}/{name}.ipynb" for name in sorted(TASKS[part])]


def task_args(part, name):
    """The planned task for `kdlib notebook --kind`: its title and every parameter (-p NAME VALUE, VALUE as JSON,
    which YAML reads back), shell-quoted. The job then neither plans the grid again nor imports torch before
    its kernel does (about 2 s a job on a 2-core CPU)."""
    task = TASKS[part][name]
    dataset = resolve_dataset(GRID, PROFILES[part], task.params["dataset"])["name"]
    args = [f"--kind {task.kind}", f"--title {shlex.quote(task_title(task, dataset))}"]
    args += [f"-p {k} {shlex.quote(json.dumps(v))}" for k, v in task.params.items() if k != "profile"]
    return " ".join(args)


def run_ids(part, task):
    """The run ids of a task, sorted: a params value that changes exactly when one of its runs' configs does."""
    return " ".join(sorted(run_id(c) for c in task_configs(TASKS[part][task], GRID)))


wildcard_constraints:
    name="[A-Za-z0-9_.\\-]+",
    part="part1|part2",
    chapter="[a-z]+",


rule all:
    input:
        [r for part in PROFILES for r in reports(part)],
        expand("book/{part}/{chapter}.ipynb", part=list(PROFILES), chapter=CHAPTERS),
        "book/chapters/audit.ipynb",
        "book/chapters/conclusion.ipynb",


rule conclusion:
    input:
        [r for part in PROFILES for r in reports(part)],
        source("conclusion"),
        KDLIB_SOURCES,
        GRID_FILE,
    output:
        "book/chapters/conclusion.ipynb",
    log:
        "logs/chapters/conclusion.log",
    params:
        profile=PROFILES["part1"],
        profile2=PROFILES["part2"],
        runs=RUNS,
    shell:
        f'{NOTEBOOK} --chapter conclusion --profile {{params.profile}} -p profile2 {{params.profile2}} '
        f'--runs "{{params.runs}}" --output {{output}} > {{log}} 2>&1'


rule chapter:
    input:
        lambda w: reports(w.part),
        lambda w: source(w.chapter),
        KDLIB_SOURCES,
        GRID_FILE,
        PAPER_TABLES,
    output:
        "book/{part}/{chapter}.ipynb",
    log:
        "logs/{part}/{chapter}.log",
    params:
        profile=lambda w: PROFILES[w.part],
        roman=lambda w: ROMAN[w.part],
        runs=RUNS,
    shell:
        f'{NOTEBOOK} --chapter {{wildcards.chapter}} --profile {{params.profile}} --part {{params.roman}} '
        f'--runs "{{params.runs}}" --output {{output}} > {{log}} 2>&1'


rule audit:
    input:
        source("audit"),
        KDLIB_SOURCES,
        PAPER_TABLES,
    output:
        "book/chapters/audit.ipynb",
    log:
        "logs/chapters/audit.log",
    params:
        profile=PROFILES["part1"],
        runs=RUNS,
    shell:
        f'{NOTEBOOK} --chapter audit --profile {{params.profile}} --runs "{{params.runs}}" --output {{output}} > {{log}} 2>&1'


rule teacher:
    input:
        # a teacher stopped at another teacher's accuracy (E11) waits for that teacher
        lambda w: ([f"book/runs/{w.part}/{d}.ipynb" for d in TASKS[w.part][f"teacher-{w.name}"].depends]
                   if w.part in TRAIN else []),
        source("teacher"),
        KDLIB_SOURCES,
    output:
        "book/runs/{part}/teacher-{name}.ipynb",
    log:
        "logs/{part}/teacher-{name}.log",
    # Teachers first: every student report waits for its teacher, and a late teacher with many students (the
    # plain one: E2, E4) left one core idle for 90 s of a 13-minute build (measured on 2 cores).
    priority: 50
    params:
        profile=lambda w: PROFILES[w.part],
        train=lambda w: "" if w.part in TRAIN else "--no-train",
        run_ids=lambda w: run_ids(w.part, f"teacher-{w.name}"),
        task=lambda w: task_args(w.part, f"teacher-{w.name}"),
        runs=RUNS,
        device=DEVICE,
    resources:
        gpu=1,
    shell:
        f'{NOTEBOOK} teacher-{{wildcards.name}} --profile {{params.profile}} --runs "{{params.runs}}" '
        f'--device {{params.device}} {{params.train}} {{params.task}} --output {{output}} > {{log}} 2>&1'


rule students:
    input:
        lambda w: ([f"book/runs/{w.part}/{d}.ipynb" for d in TASKS[w.part][f"students-{w.name}"].depends]
                   if w.part in TRAIN else []),
        source("students"),
        KDLIB_SOURCES,
    output:
        "book/runs/{part}/students-{name}.ipynb",
    log:
        "logs/{part}/students-{name}.log",
    params:
        profile=lambda w: PROFILES[w.part],
        train=lambda w: "" if w.part in TRAIN else "--no-train",
        run_ids=lambda w: run_ids(w.part, f"students-{w.name}"),
        task=lambda w: task_args(w.part, f"students-{w.name}"),
        runs=RUNS,
        device=DEVICE,
    resources:
        gpu=1,
    shell:
        f'{NOTEBOOK} students-{{wildcards.name}} --profile {{params.profile}} --runs "{{params.runs}}" '
        f'--device {{params.device}} {{params.train}} {{params.task}} --output {{output}} > {{log}} 2>&1'
