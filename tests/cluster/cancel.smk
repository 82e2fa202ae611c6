# One run report for the cancellation check of `make test-cluster` (tests/cluster/check_cluster.py): the teacher
# notebook of one task of the `cluster-cancel` profile, which check_cluster.py derives from grid.yaml's smoke
# profile into a grid file of its own (one teacher, long enough to pass its first checkpoint). The rule is named
# `teacher`, as the project's, so that profiles/slurm's resources for run reports (partition gpu, one GPU, retries)
# apply to it unchanged.
#   snakemake -s tests/cluster/cancel.smk --profile profiles/slurm --config grid=G runs=STORE task=teacher-NAME
import sys

PY = sys.executable
TASK = config.get("task", "teacher-main-resnet18-none")


rule all:
    input:
        f"book/runs/cancel/{TASK}.ipynb",


rule teacher:
    output:
        "book/runs/cancel/teacher-{name}.ipynb",
    log:
        "logs/cancel/teacher-{name}.log",
    params:
        grid=config["grid"],
        runs=config["runs"],
    resources:
        gpu=1,
    shell:
        f'OMP_NUM_THREADS=1 MKL_NUM_THREADS=1 "{PY}" -m kdlib notebook --progress teacher-{{wildcards.name}} '
        f'--profile cluster-cancel --grid "{{params.grid}}" --runs "{{params.runs}}" --output {{output}} > {{log}} 2>&1'
