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
#   snakemake --executor slurm --jobs 20 --default-resources slurm_partition=gpu \
#             --set-resources teacher:gpu=1 students:gpu=1 --config part2=paper   (a Slurm cluster)
# Each job executes one task's notebook with papermill (python -m kdlib notebook); every job
# writes the same run store as `python -m kdlib grid`, so the two paths are interchangeable.
import os
import sys

sys.path.insert(0, workflow.basedir)
from kdlib.grid import load_grid, plan, task_status  # noqa: E402

_KNOWN = {"part1", "part2", "train", "threads", "runs", "device", "profile"}
_unknown = set(config) - _KNOWN
if _unknown:
    raise ValueError(f"unknown --config key(s) {sorted(_unknown)}; known: {sorted(_KNOWN)}")

GRID = load_grid()
PROFILES = {"part1": config.get("part1", "paper"),
            "part2": config.get("part2", config.get("profile", os.environ.get("PROFILE", "quick")))}
ROMAN = {"part1": "I", "part2": "II"}
TRAIN = {p for p in ("part1", "part2") if ROMAN[p] in str(config.get("train", "II")).replace(",", " ").split()}
RUNS = os.path.abspath(config.get("runs", os.environ.get("KDLIB_RUNS", "runs")))
DEVICE = config.get("device", "auto")
PY = sys.executable
# one thread per job on a CPU: `--cores N` then runs N notebooks side by side without oversubscription
THREADS = f"OMP_NUM_THREADS={config.get('threads', 1)} MKL_NUM_THREADS={config.get('threads', 1)}"


def _tasks(part):
    tasks = {t.name: t for t in plan(PROFILES[part], GRID)}
    if part in TRAIN:
        return tasks
    # a part that is not trained here reports only the tasks with at least one finished run
    return {n: t for n, t in tasks.items() if task_status(t, runs=RUNS, grid=GRID)[0]}


TASKS = {part: _tasks(part) for part in PROFILES}
CHAPTERS = ["results", "experiments", "dichotomy", "fidelity", "explorer", "methods", "reproducibility"]


def reports(part):
    return [f"book/runs/{part}/{name}.ipynb" for name in sorted(TASKS[part])]


wildcard_constraints:
    name="[A-Za-z0-9_.\\-]+",
    part="part1|part2",


rule all:
    input:
        [r for part in PROFILES for r in reports(part)],
        expand("book/{part}/{chapter}.ipynb", part=list(PROFILES), chapter=CHAPTERS),
        "book/chapters/audit.ipynb",
        "book/chapters/conclusion.ipynb",


rule conclusion:
    input:
        [r for part in PROFILES for r in reports(part)],
        os.path.join(workflow.basedir, "notebooks", "conclusion.py"),
    output:
        "book/chapters/conclusion.ipynb",
    shell:
        f'{THREADS} "{PY}" -m kdlib notebook --chapter conclusion --profile {PROFILES["part1"]} '
        f'-p profile2 {PROFILES["part2"]} --runs "{RUNS}" --output {{output}}'


rule chapter:
    input:
        lambda w: reports(w.part),
        os.path.join(workflow.basedir, "notebooks", "{chapter}.py"),
    output:
        "book/{part}/{chapter}.ipynb",
    params:
        profile=lambda w: PROFILES[w.part],
        roman=lambda w: ROMAN[w.part],
    shell:
        f'{THREADS} "{PY}" -m kdlib notebook --chapter {{wildcards.chapter}} --profile {{params.profile}} '
        f'--part {{params.roman}} --runs "{RUNS}" --output {{output}}'


rule audit:
    input:
        os.path.join(workflow.basedir, "notebooks", "audit.py"),
    output:
        "book/chapters/audit.ipynb",
    shell:
        f'{THREADS} "{PY}" -m kdlib notebook --chapter audit --profile {PROFILES["part1"]} --runs "{RUNS}" '
        f'--output {{output}}'


rule teacher:
    output:
        "book/runs/{part}/teacher-{name}.ipynb",
    params:
        profile=lambda w: PROFILES[w.part],
        train=lambda w: "" if w.part in TRAIN else "--no-train",
    resources:
        gpu=1,
    shell:
        f'{THREADS} "{PY}" -m kdlib notebook teacher-{{wildcards.name}} --profile {{params.profile}} '
        f'--runs "{RUNS}" --device {DEVICE} {{params.train}} --output {{output}}'


rule students:
    input:
        lambda w: ([f"book/runs/{w.part}/{d}.ipynb" for d in TASKS[w.part]["students-" + w.name].depends]
                   if w.part in TRAIN else []),
    output:
        "book/runs/{part}/students-{name}.ipynb",
    params:
        profile=lambda w: PROFILES[w.part],
        train=lambda w: "" if w.part in TRAIN else "--no-train",
    resources:
        gpu=1,
    shell:
        f'{THREADS} "{PY}" -m kdlib notebook students-{{wildcards.name}} --profile {{params.profile}} '
        f'--runs "{RUNS}" --device {DEVICE} {{params.train}} --output {{output}}'
