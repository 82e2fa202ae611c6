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
# # Teacher run report
#
# Trains (or finds in the run store) one teacher configuration for every seed of the profile,
# then shows its training curves and test metrics. Everything is computed by `kdlib`.

# %% tags=["parameters", "hide-input"]
profile = "quick"
dataset = "main"
model = "resnet18"
regime = "flipcrop"
label_smoothing = 0.0  # > 0: the teacher's targets are smoothed (the control of experiment E9)
match_accuracy_of = None  # a regime: stop at the first epoch this teacher reaches that teacher's accuracy (E11)
untrained = False  # True: the random-weight teacher of the control E13, evaluated at its seeded initial weights
seeds = None
runs = None
device = "auto"
progress = False
grid = None
train = True  # False: show the finished runs (committed records included) and list the missing ones; train nothing

# %%
from kdlib.book.report import notebook_params

params = notebook_params("teacher", globals())

# %%
from IPython.display import Markdown, display

from kdlib.runs.execute import task_runs
from kdlib.book.report import history_figure, metrics_table, missing_table, provenance_table, run_location

task = {"kind": "teacher", **{k: params[k] for k in ("profile", "dataset", "model", "regime", "label_smoothing",
                                                    "match_accuracy_of", "untrained")}}
done, missing = task_runs(task, train, runs=runs, device=device, progress=progress, grid_path=grid, seeds=seeds)
if done:
    display(Markdown(f"**{model}**, regime `{done[0].config['augment']}`"
                     + (f", label smoothing {label_smoothing:g}" if label_smoothing else "")
                     + (f", stopped at the `{match_accuracy_of}` teacher's accuracy" if match_accuracy_of else "")
                     + (", random weights, never trained (the E13 control)" if untrained else "")
                     + ", dataset "
                     f"`{done[0].config['dataset']['name']}`, profile `{profile}`, seeds "
                     f"{[r.config['seed'] for r in done]}; runs: " + ", ".join(run_location(r) for r in done)))
if missing:
    display(missing_table(missing, profile, runs=runs, grid_path=grid))

# %%
if done:
    fig = history_figure(done, title=f"teacher {model} / {regime}")

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
