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
# The penultimate features of every teacher (first seed), projected to two dimensions by t-SNE.
# Choose a teacher in the menu; hover a point to see its image, its label and the model's most
# probable classes (and the humans', on CIFAR-10 with CIFAR-10H). Below it, one tab per teacher
# shows the test images on which that teacher and the humans disagree most.

# %% tags=["parameters", "hide-input"]
profile = "quick"
runs = None
part = "II"
per_class = 40
live = False  # True (in Jupyter): also the ipywidgets explorer (model, classes, projection), needs a kernel
hover = False  # with live: a plotly FigureWidget with hover/click callbacks (needs anywidget)

# %% tags=["hide-input"]
import numpy as np
from IPython.display import HTML, Markdown, display

from kdlib.explorer import disagreement_tabs, live_explorer, project, static_explorer
from kdlib.grid import load_grid, resolve_dataset
from kdlib.records import embedding_subset
from kdlib.report import REGIME_NAMES, part_header
from kdlib.results import REGIMES, collect, load_predictions, select, test_view
from kdlib.runs import RunStore

store = RunStore(runs, profile)
rows = collect(store)
spec = resolve_dataset(load_grid(), profile, "main")
view = test_view(store, spec)
classes = view["classes"]
display(Markdown(part_header(part, profile, rows, spec["name"])))
models, embeddings, missing = {}, {}, []
pick = None
if view["images"] is not None:
    row_of = {int(i): k for k, i in enumerate(view["indices"])}  # original test index -> row of the view
    image_of = {int(r): k for k, r in enumerate(view["image_rows"])}  # row of the view -> row of images
for r in REGIMES:
    ts = sorted(select(rows, kind="teacher", model="resnet18", dataset=spec["name"], regime=r), key=lambda x: x["seed"])
    if not ts:
        continue
    p = load_predictions(store, ts[0]["id"])
    if "test_embeddings" not in p or view["images"] is None:
        missing.append(REGIME_NAMES[r])
        continue
    # the rows with both an embedding and an image here, per_class of each class (the same for every teacher)
    emb_rows = p["test_embedding_index"]
    orig = p["test_indices"][emb_rows]
    usable = np.array([row_of.get(int(i), -1) in image_of for i in orig])
    if pick is None:
        lab = p["test_labels"][emb_rows]
        sub = embedding_subset(np.where(usable, lab, -1), per_class)
        sub = sub[lab[sub] >= 0] if len(sub) else sub
        pick = orig[sub[usable[sub]]]  # original test indices
        pos_in_p = {int(i): k for k, i in enumerate(p["test_indices"])}
        rows_p = np.array([pos_in_p[int(i)] for i in pick])
        labels = p["test_labels"][rows_p]
        images = view["images"][[image_of[row_of[int(i)]] for i in pick]]
        human = view["human"][[row_of[int(i)] for i in pick]] if view["human"] is not None else None
    pos_in_p = {int(i): k for k, i in enumerate(p["test_indices"])}
    emb_pos = {int(p["test_indices"][e]): k for k, e in enumerate(emb_rows)}
    emb = p["test_embeddings"][[emb_pos[int(i)] for i in pick]].astype(np.float32)
    name = f"teacher: {REGIME_NAMES[r]}"
    embeddings[name] = emb
    models[name] = {"coords": project(emb, "tsne"), "probs": p["test_probs"][[pos_in_p[int(i)] for i in pick]]}
if missing:
    display(Markdown(f"Not shown: the teachers {', '.join(missing)}, whose runs here keep no embeddings"
                     + (" or whose test images are not here" if view["images"] is None else "")
                     + ". Records exported by `python -m kdlib export` keep the penultimate features of 100 test "
                       "images per class; the next GPU run of the grid brings them."))
if models:
    display(HTML(static_explorer(models, images, labels, classes, human)))

# %% [markdown]
# ## Where each teacher and the humans disagree most

# %% tags=["hide-input"]
if models:
    display(disagreement_tabs(models, images, labels, classes, human))
else:
    display(Markdown("Nothing to show until a teacher with embeddings is here."))

# %% [markdown]
# **Live exploration** (needs a running kernel, not part of this static page): open
# `notebooks/explorer.py` in Jupyter (jupytext opens `.py` notebooks), set `live = True` (and
# `hover = True` to hover or click points in a plotly widget), and run all cells; or execute it
# with `python -m kdlib notebook --chapter explorer --profile quick -p live true --output explorer.ipynb`
# and open the result in Jupyter.

# %% tags=["hide-input"]
if live and models:
    display(live_explorer(models, images, labels, classes, embeddings, human, hover=hover))
