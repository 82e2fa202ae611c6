# The pipeline of kd-augment, expanded from grid.yaml: teacher notebooks -> student notebooks -> book.
#   snakemake --cores 1 --config profile=quick            (what `make book` runs)
#   snakemake -n --config profile=paper                   (dry run: the DAG)
#   snakemake --executor slurm --jobs 20 --default-resources slurm_partition=gpu \
#             --set-resources teacher:gpu=1 students:gpu=1 --config profile=paper   (a Slurm cluster)
# Each job executes one task's notebook with papermill (python -m kdlib notebook); every job
# writes the same run store as `python -m kdlib grid`, so the two paths are interchangeable.
import os
import sys

sys.path.insert(0, workflow.basedir)
from kdlib.grid import load_grid, plan  # noqa: E402

PROFILE = config.get("profile", os.environ.get("PROFILE", "quick"))
RUNS = os.path.abspath(config.get("runs", os.environ.get("KDLIB_RUNS", "runs")))
DEVICE = config.get("device", "auto")
TASKS = {t.name: t for t in plan(PROFILE, load_grid())}
OUT = f"book/runs/{PROFILE}"
PY = sys.executable


# one thread per job on a CPU: `--cores N` then runs N notebooks side by side without oversubscription
THREADS = f"OMP_NUM_THREADS={config.get('threads', 1)} MKL_NUM_THREADS={config.get('threads', 1)}"


wildcard_constraints:
    name="[A-Za-z0-9_.\\-]+",


CHAPTERS = ["results", "methods", "experiments", "dichotomy", "explorer", "audit", "reproducibility"]


rule all:
    input:
        expand(OUT + "/{name}.ipynb", name=sorted(TASKS)),
        expand("book/chapters/{chapter}.ipynb", chapter=CHAPTERS),


rule chapter:
    input:
        expand(OUT + "/{name}.ipynb", name=sorted(TASKS)),
        "notebooks/{chapter}.py",
    output:
        "book/chapters/{chapter}.ipynb",
    shell:
        f'{THREADS} "{PY}" -m kdlib notebook --chapter {{wildcards.chapter}} --profile {PROFILE} --runs "{RUNS}" '
        f'--output {{output}}'


rule teacher:
    output:
        OUT + "/teacher-{name}.ipynb",
    resources:
        gpu=1,
    shell:
        f'{THREADS} "{PY}" -m kdlib notebook teacher-{{wildcards.name}} --profile {PROFILE} --runs "{RUNS}" '
        f'--device {DEVICE} --output {{output}}'


rule students:
    input:
        lambda w: [f"{OUT}/{d}.ipynb" for d in TASKS["students-" + w.name].depends],
    output:
        OUT + "/students-{name}.ipynb",
    resources:
        gpu=1,
    shell:
        f'{THREADS} "{PY}" -m kdlib notebook students-{{wildcards.name}} --profile {PROFILE} --runs "{RUNS}" '
        f'--device {DEVICE} --output {{output}}'
