# ---
# jupyter:
#   jupytext:
#     formats: py:percent
#     notebook_metadata_filter: -jupytext.text_representation.jupytext_version,-jupytext.text_representation.format_version
#     text_representation:
#       extension: .py
#       format_name: percent
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # Student run report
#
# Distils a group of students from one teacher (or trains them with no teacher when
# `alpha = 0`), for every seed of the profile; the students of one seed train in lockstep on
# one batch stream, so one teacher forward serves them all.

# %% tags=["parameters", "hide-input"]
profile = "quick"
dataset = "main"
teacher_model = "resnet18"
teacher_regime = "none"
students = ["lenet", "alexnet"]
regime = "none"
temperature = 20.0
alpha = 0.5
teacher_label_smoothing = 0.0  # the label-smoothed teacher of experiment E9
teacher_calibration = "none"  # "temperature": distil after post-hoc temperature scaling of the teacher (E10)
teacher_match_accuracy_of = None  # the teacher stopped early at this regime's teacher's accuracy (E11)
teacher_untrained = False  # the random-weight teacher of the control E13 (never trained)
kd_logits = "raw"  # "standardized": logit-standardised KD, both logit vectors z-scored per image (E12)
seeds = None
runs = None
device = "auto"
progress = False
grid = None
train = True  # False: show the finished runs (committed records included) and list the missing ones; train nothing

# %%
from kdlib.book.report import notebook_params

params = notebook_params("students", globals())

# %%
from IPython.display import Markdown, display

from kdlib.runs.execute import task_runs
from kdlib.book.report import history_figure, metrics_table, missing_table, provenance_table, run_location

keys = ("profile", "dataset", "teacher_model", "teacher_regime", "students", "regime", "temperature", "alpha",
        "teacher_label_smoothing", "teacher_calibration", "teacher_match_accuracy_of", "teacher_untrained", "kd_logits")
task = {"kind": "students", **{k: params[k] for k in keys}}
done, missing = task_runs(task, train, runs=runs, device=device, progress=progress, grid_path=grid, seeds=seeds)
source = (f"teacher {teacher_model} / `{teacher_regime}`"
          + (f" (label smoothing {teacher_label_smoothing:g})" if teacher_label_smoothing else "")
          + (" after post-hoc temperature scaling" if teacher_calibration == "temperature" else "")
          + (f" stopped at the `{teacher_match_accuracy_of}` teacher's accuracy" if teacher_match_accuracy_of else "")
          + (" with random weights (never trained)" if teacher_untrained else "")
          + (", logit-standardised KD" if kd_logits == "standardized" else "")
          if alpha > 0 else "no teacher (alpha = 0)")
display(Markdown(f"Students {students} with regime `{regime}`, T = {temperature:g}, alpha = {alpha:g}, from "
                 f"{source}; profile `{profile}`, {len(done)} finished runs: "
                 + ", ".join(run_location(r) for r in done)))
if missing:
    display(missing_table(missing, profile, runs=runs, grid_path=grid))

# %%
if done:
    fig = history_figure(done, title=f"students <- {teacher_regime if alpha > 0 else 'no teacher'} / {regime}")

# %%
metrics_table(done).style.hide(axis="index").format(precision=3) if done else None

# %% [markdown]
# ## Provenance
#
# Where and how each run was made, from its `provenance.json`. *commit* is the git commit of the copy
# the run ran from, *(dirty)* that the copy had uncommitted changes; for committed records made on a
# GPU machine the copy was not a clone of this repository, and `results/README.md` names the code that
# ran for each batch of records (the chapter *Reproducibility* explains it).

# %%
provenance_table(done) if done else None
