# ---
# jupyter:
#   jupytext:
#     formats: py:percent
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

# %% tags=["parameters"]
profile = "smoke"
dataset = "main"
model = "resnet18"
regime = "flipcrop"
seeds = None
runs = None
device = "auto"
progress = False
grid = None

# %%
from kdlib.report import notebook_params

params = notebook_params("teacher", globals())

# %%
from IPython.display import Markdown, display

from kdlib.grid import run_task
from kdlib.report import history_figure, metrics_table

done = run_task({"kind": "teacher", **{k: params[k] for k in ("profile", "dataset", "model", "regime")}},
                runs=runs, device=device, progress=progress, grid_path=grid, seeds=seeds)
display(Markdown(f"**{model}**, regime `{done[0].config['augment']}`, dataset "
                 f"`{done[0].config['dataset']['name']}`, profile `{profile}`, seeds "
                 f"{[r.config['seed'] for r in done]}; run folders: "
                 + ", ".join(f"`{r.folder}`" for r in done)))

# %%
fig = history_figure(done, title=f"teacher {model} / {regime}")

# %%
table = metrics_table(done)
table

# %%
import json

prov = done[0].read_json("provenance.json")
print(json.dumps({k: prov[k] for k in ("git_commit", "git_dirty", "versions", "device", "device_name",
                                       "datasets", "wall_seconds")}, indent=1))
