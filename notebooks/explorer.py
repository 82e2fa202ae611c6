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
# # Latent explorer
#
# The penultimate features of every teacher (one seed, named below), projected to two dimensions by t-SNE.
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
from IPython.display import HTML, Markdown, display

from kdlib.book.explorer import disagreement_tabs, explorer_points, live_explorer, project, static_explorer
from kdlib.runs.plan import load_grid, resolve_dataset
from kdlib.book.names import REGIME_NAMES
from kdlib.book.report import part_header
from kdlib.book.rows import PAPER_REGIMES, collect, select, heldout_view
from kdlib.book.claims import shown_seed
from kdlib.runs.store import RunStore

store = RunStore(runs, profile)
rows = collect(store)
spec = resolve_dataset(load_grid(), profile, "main")
view = heldout_view(store, spec)
classes = view["classes"]
display(Markdown(part_header(part, profile, rows, spec["name"])))
models, embeddings, missing = {}, {}, []
pick = None
teachers = {r: select(rows, kind="teacher", model="resnet18", dataset=spec["name"], regime=r) for r in PAPER_REGIMES}
shown, preds = shown_seed(store, teachers)  # the first seed whose every teacher record keeps its embeddings
if shown is not None:
    display(Markdown(f"Every teacher shown here is its **seed {shown}** run (the first seed whose records keep the "
                     f"penultimate features of 100 test images per class)."))
for r in PAPER_REGIMES:
    if r not in preds:
        continue
    p = preds[r]
    if "test_embeddings" not in p or view["images"] is None:
        missing.append(REGIME_NAMES[r])
        continue
    pts = explorer_points(p, view, per_class, pick)  # the same images for every teacher
    if pick is None:
        pick, labels, images, human = pts["pick"], pts["labels"], pts["images"], pts["human"]
    name = f"teacher: {REGIME_NAMES[r]}"
    embeddings[name] = pts["embeddings"]
    models[name] = {"coords": project(pts["embeddings"], "tsne"), "probs": pts["probs"]}
if missing:
    display(Markdown(f"Not shown: the teachers {', '.join(missing)}, whose runs here keep no embeddings"
                     + (" or whose test images are not here" if view["images"] is None else "")
                     + f" (seed {shown})."))
if models:
    display(HTML(static_explorer(models, images, labels, classes, human)))

# %% [markdown]
# ## The images each teacher gets most wrong

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
