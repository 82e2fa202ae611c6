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
# # Explaining the dichotomy (paper §5)
#
# The paper explains why better teachers make worse students through the structure of the
# teachers' outputs and features: tighter, better separated classes (t-SNE, Fig. 4; class
# separability, Table 4; cohesion and adhesion, Table 5), calibration (Figs. 5 and 7), and
# distance to human uncertainty (Figs. 3 and 6). Every quantity here is computed by
# `kdlib.metrics` on the test predictions stored with each run.

# %% tags=["parameters", "hide-input"]
profile = "quick"
runs = None

# %% tags=["hide-input"]
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from IPython.display import Markdown, display
from myst_nb import glue
from sklearn.manifold import TSNE

from kdlib.data import CLASSES
from kdlib.grid import load_grid, resolve_dataset
from kdlib.metrics import mean_confusion, reliability_curve
from kdlib.report import regime_color
from kdlib.results import REGIMES, collect, distilled, fmt_ci, load_predictions, paper_tables, select
from kdlib.runs import RunStore

store = RunStore(runs, profile)
rows = collect(store)
main = resolve_dataset(load_grid(), profile, "main")["name"]
classes = CLASSES[main]
paper = paper_tables()
teachers = {r: select(rows, kind="teacher", model="resnet18", dataset=main, regime=r) for r in REGIMES}
seed0 = {r: next((t for t in ts if t["seed"] == min(x["seed"] for x in ts)), None) for r, ts in teachers.items()}
preds = {r: load_predictions(store, t["id"]) for r, t in seed0.items() if t}
display(Markdown(f"Teachers: ResNet-18 on `{main}`, profile `{profile}`; figures use the first seed, tables all seeds."))

# %% [markdown]
# ## Latent space of the teachers (Fig. 4)
#
# t-SNE of the penultimate features for four classes: the paper's automobile, bird, cat and truck
# (CIFAR-10 labels 1, 2, 3, 9; on another dataset the same label indices).

# %% tags=["hide-input"]
pick = [1, 2, 3, 9]
fig, axes = plt.subplots(1, len(preds), figsize=(3.2 * len(preds), 3.2))
for ax, (r, p) in zip(np.atleast_1d(axes), preds.items()):
    keep = np.isin(p["test_labels"], pick)
    emb = TSNE(n_components=2, init="pca", random_state=0, perplexity=30).fit_transform(
        p["test_embeddings"][keep].astype(np.float32))
    for c, color in zip(pick, ["tab:orange", "tab:red", "tab:blue", "tab:green"]):
        sel = p["test_labels"][keep] == c
        ax.scatter(emb[sel, 0], emb[sel, 1], s=4, color=color, label=classes[c])
    ax.set_title(r, color=regime_color(r))
    ax.set_xticks([]), ax.set_yticks([])
np.atleast_1d(axes)[-1].legend(fontsize=7, markerscale=3)
fig.suptitle("t-SNE of teacher penultimate features")
fig.tight_layout()

# %% [markdown]
# ## Class separability (Table 4)
#
# S_f = (1/C²) Σ_i Σ_j KL(p̄_i ‖ p̄_j) over the mean predicted distributions of the true classes.

# %% tags=["hide-input"]
def students(model, teacher_regime):
    return distilled(rows, model, teacher_regime, main)


table4 = pd.DataFrame([{
    "teacher regime": r,
    "teacher": fmt_ci(x["class_separability"] for x in teachers[r]), "teacher (paper)": paper["table4"]["teacher"][r],
    "LeNet": fmt_ci(x["class_separability"] for x in students("lenet", r)), "LeNet (paper)": paper["table4"]["lenet"][r],
    "AlexNet": fmt_ci(x["class_separability"] for x in students("alexnet", r)),
    "AlexNet (paper)": paper["table4"]["alexnet"][r]} for r in REGIMES])
table4.style.format(precision=3).hide(axis="index")

# %% [markdown]
# ## Cohesion, adhesion and discrimination (Table 5)
#
# On the standardised penultimate features (d = 512 at full width) and on the 10-d logits. The
# paper's Table 5 satisfies D·√10 = cohesion − adhesion for four of its five rows, so it was
# computed on 10-d outputs, not on the 512-d features its text describes; both are shown.

# %% tags=["hide-input"]
def disc(r, key):
    return fmt_ci(x[key] for x in teachers[r])


logit_rows = {r: [] for r in REGIMES}
for r, ts in teachers.items():
    for t in ts:
        m = next(x for x in store.runs("teacher") if x.id == t["id"]).read_json("metrics.json")["test"]
        logit_rows[r].append(m["discrimination_logits"])
table5 = pd.DataFrame([{
    "teacher regime": r,
    "cohesion (features)": disc(r, "cohesion"), "adhesion (features)": disc(r, "adhesion"),
    "D (features)": disc(r, "discrimination"),
    "cohesion (logits)": fmt_ci(x["cohesion"] for x in logit_rows[r]),
    "adhesion (logits)": fmt_ci(x["adhesion"] for x in logit_rows[r]),
    "D (logits)": fmt_ci(x["discrimination"] for x in logit_rows[r]),
    "cohesion (paper)": paper["table5"]["teacher"][r]["cohesion"],
    "adhesion (paper)": paper["table5"]["teacher"][r]["adhesion"],
    "D (paper)": paper["table5"]["teacher"][r]["discrimination"]} for r in REGIMES])
table5.style.format(precision=3).hide(axis="index")

# %% [markdown]
# ## Calibration: reliability diagrams (Fig. 5) and ECE (Fig. 7)

# %% tags=["hide-input"]
fig, axes = plt.subplots(1, len(preds), figsize=(3.0 * len(preds), 3.0), sharey=True)
for ax, (r, p) in zip(np.atleast_1d(axes), preds.items()):
    curve = reliability_curve(p["test_probs"], p["test_labels"], n_bins=15)
    filled = curve["count"] > 0
    centers = (curve["lower"] + curve["upper"]) / 2
    ax.bar(centers[filled], curve["accuracy"][filled], width=1 / 15, color=regime_color(r), edgecolor="black",
           linewidth=0.4, label="accuracy")
    ax.plot([0, 1], [0, 1], "k--", linewidth=0.8)
    ax.set_title(r)
    ax.set_xlabel("confidence")
np.atleast_1d(axes)[0].set_ylabel("accuracy in bin")
fig.suptitle("Reliability diagrams of the teachers (15 bins)")
fig.tight_layout()

# %% tags=["hide-input"]
fig, ax = plt.subplots(figsize=(7, 3))
groups = [("teacher", lambda r: teachers[r]), ("LeNet", lambda r: students("lenet", r)),
          ("AlexNet", lambda r: students("alexnet", r))]
for i, (who, fn) in enumerate(groups):
    vals = [[x["ece"] for x in fn(r)] for r in REGIMES]
    means = [np.mean(v) if v else np.nan for v in vals]
    ax.bar(np.arange(5) + (i - 1) * 0.27, means, 0.27, color=[regime_color(r) for r in REGIMES],
           alpha=[1, 0.65, 0.35][i], edgecolor="black", linewidth=0.4, label=who)
    for k, v in enumerate(vals):
        ax.scatter([k + (i - 1) * 0.27] * len(v), v, s=6, color="black", zorder=3)
ax.set_xticks(range(5), REGIMES)
ax.set_ylabel("ECE (15 bins)")
ax.set_title("ECE by teacher regime: teacher, LeNet and AlexNet students (dots: seeds)")
fig.tight_layout()

# %% [markdown]
# ## What the teachers confuse: masked mean-confusion matrices
#
# Row c is the mean predicted distribution over the test images of class c, with the diagonal
# masked so the off-diagonal structure, the "dark knowledge" a student can learn from, shows.

# %% tags=["hide-input"]
fig, axes = plt.subplots(1, len(preds), figsize=(3.1 * len(preds), 3.1))
for ax, (r, p) in zip(np.atleast_1d(axes), preds.items()):
    m = mean_confusion(p["test_probs"], p["test_labels"])
    np.fill_diagonal(m, np.nan)
    ax.imshow(m, cmap="viridis")
    ax.set_title(f"{r} (max {np.nanmax(m):.3f})", fontsize=9)
    ax.set_xticks([]), ax.set_yticks([])
fig.suptitle("Masked mean confusion of the teachers (each panel on its own colour scale)")
fig.tight_layout()

# %% [markdown]
# ## Human uncertainty (Figs. 3 and 6)

# %% tags=["hide-input"]
if all("test_human" in p for p in preds.values()) and preds:
    from kdlib.metrics import class_kl_matrix

    human = next(iter(preds.values()))["test_human"]
    labels = next(iter(preds.values()))["test_labels"]
    fig, axes = plt.subplots(1, 1 + len(preds), figsize=(3.1 * (1 + len(preds)), 3.1))
    hm = mean_confusion(human, labels)
    np.fill_diagonal(hm, np.nan)
    axes[0].imshow(hm, cmap="viridis")
    axes[0].set_title("CIFAR-10H, diagonal masked", fontsize=9)
    for ax, (r, p) in zip(axes[1:], preds.items()):
        ax.imshow(class_kl_matrix(p["test_probs"], human, labels), cmap="magma")
        ax.set_title(f"relative KL, {r}", fontsize=9)
    for ax in axes:
        ax.set_xticks([]), ax.set_yticks([])
    fig.tight_layout()
else:
    display(Markdown(f"Not available for `{main}`: CIFAR-10H holds human labels for the CIFAR-10 test set only. "
                     f"`make book PROFILE=paper` (CIFAR-10, with `cifar10h/` under `$KDLIB_DATA`) draws the human "
                     f"confidence matrix (Fig. 3) and the relative KL matrices (Fig. 6)."))
