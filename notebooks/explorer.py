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
# # Latent explorer
#
# The penultimate features of every teacher (first seed), projected to two dimensions. Choose a
# model in the menu; hover a point to see its image, its label and the model's most probable
# classes (and the humans', on CIFAR-10 with CIFAR-10H).
#
# In a live Jupyter session the widget below the figure lets you choose the model, the classes
# and the projection (PCA or t-SNE) and see each point's image with the model's and the humans'
# distributions; open `notebooks/explorer.py` with `hover = True` to hover or click points in a
# plotly widget. A static page has no kernel to run those callbacks, so here the widget shows the
# state it was saved in.

# %% tags=["parameters", "hide-input"]
profile = "quick"
runs = None
per_class = 40
hover = False  # True in live Jupyter: plotly FigureWidget with hover/click callbacks (needs anywidget)

# %% tags=["hide-input"]
import numpy as np
from IPython.display import HTML, display

from kdlib.data import CLASSES
from kdlib.explorer import live_explorer, project, static_explorer
from kdlib.grid import load_grid, resolve_dataset
from kdlib.pipeline import split_of
from kdlib.results import REGIMES, collect, load_predictions, select
from kdlib.runs import RunStore

store = RunStore(runs, profile)
rows = collect(store)
spec = resolve_dataset(load_grid(), profile, "main")
classes = CLASSES[spec["name"]]
test = split_of(spec, "test", "test_subset")
models, embeddings = {}, {}
pick = None
for r in REGIMES:
    ts = sorted(select(rows, kind="teacher", model="resnet18", dataset=spec["name"], regime=r), key=lambda x: x["seed"])
    if not ts:
        continue
    p = load_predictions(store, ts[0]["id"])
    if pick is None:  # the same images for every model: per_class of each class
        rng = np.random.default_rng(0)
        pick = np.sort(np.concatenate([rng.choice(np.flatnonzero(p["test_labels"] == c),
                                                  min(per_class, int((p["test_labels"] == c).sum())), replace=False)
                                       for c in range(len(classes))]))
        labels = p["test_labels"][pick]
        human = p["test_human"][pick] if "test_human" in p else None
        rows_of = {int(i): k for k, i in enumerate(test.indices)}
        images = test.images[[rows_of[int(i)] for i in p["test_indices"][pick]]]
    emb = p["test_embeddings"][pick].astype(np.float32)
    embeddings[f"teacher {r}"] = emb
    models[f"teacher {r}"] = {"coords": project(emb, "tsne"), "probs": p["test_probs"][pick]}
display(HTML(static_explorer(models, images, labels, classes, human)))

# %% tags=["hide-input"]
live_explorer(models, images, labels, classes, embeddings, human, hover=hover)
