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
# # Explaining the dichotomy (paper §5)
#
# The paper explains why better teachers make worse students through the structure of the
# teachers' outputs and features: tighter, better separated classes (t-SNE, Fig. 4; class
# separability, Table 4; cohesion and adhesion, Table 5), calibration (Figs. 5 and 7), and
# distance to human uncertainty (Figs. 3 and 6). Every quantity here is computed by
# `kdlib.blocks.metrics` on the test predictions stored with each run.

# %% tags=["parameters", "hide-input"]
profile = "quick"
runs = None
part = "II"

# %% tags=["hide-input"]
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from IPython.display import Markdown, display
from myst_nb import glue
from sklearn.manifold import TSNE

from kdlib.runs.plan import load_grid, resolve_dataset
from kdlib.blocks.metrics import mean_confusion, reliability_curve
from kdlib.book.figures import matrix_figure
from kdlib.book.names import REGIME_NAMES, regime_color
from kdlib.book.report import part_header
from kdlib.book.rows import PAPER_REGIMES, align, collect, distilled, load_predictions, paper_tables, select, heldout_view
from kdlib.book.stats import fmt_ci
from kdlib.book.claims import seed_counts, shown_seed
from kdlib.runs.store import RunStore

store = RunStore(runs, profile)
rows = collect(store)
spec = resolve_dataset(load_grid(), profile, "main")
main = spec["name"]
view = heldout_view(store, spec, need_images=False)
classes = view["classes"]
paper = paper_tables()
teachers = {r: select(rows, kind="teacher", model="resnet18", dataset=main, regime=r) for r in PAPER_REGIMES}
# the figures show one seed: the first whose every teacher record keeps its embeddings (the t-SNE needs them)
fig_seed, preds = shown_seed(store, teachers)
display(Markdown(part_header(part, profile, rows, main)
                 + (f" Figures show seed {fig_seed} (the first seed whose teacher records keep embeddings for the "
                    f"t-SNE); tables use every seed." if fig_seed is not None else "")))
if not preds:
    display(Markdown(f"No teacher of profile `{profile}` is finished yet; the figures below are empty."))

# %% [markdown]
# ## Latent space of the teachers (Fig. 4)
#
# t-SNE of the penultimate features for four classes: the paper's automobile, bird, cat and truck
# (CIFAR-10 labels 1, 2, 3, 9; on another dataset the same label indices).

# %% tags=["hide-input"]
pick = [1, 2, 3, 9]
# class colours from a palette the regime colours do not use (dark, distinct shapes too)
CLASS_STYLE = {1: ("#1b1b1b", "o"), 2: ("#e6194b", "^"), 3: ("#0082c8", "s"), 9: ("#f58231", "D")}
with_emb = {r: p for r, p in preds.items() if "test_embeddings" in p}
def panel_grid(n, extra=0, ncols=3, size=3.0):
    """n (+ extra) panels, at most ncols per row, so that each stays readable in the book's column."""
    total = n + extra
    rows_, cols = (total + ncols - 1) // ncols, min(ncols, total)
    fig, axes = plt.subplots(rows_, cols, figsize=(size * cols, size * rows_ + 0.4), squeeze=False)
    flat = list(axes.flat)
    for ax in flat[total:]:
        ax.axis("off")
    return fig, flat[:n], flat[n:total]


if with_emb:
    fig, axes, spare = panel_grid(len(with_emb), extra=1)
    for ax, (r, p) in zip(axes, with_emb.items()):
        rows_ = p["test_embedding_index"]
        lab = p["test_labels"][rows_]
        keep = np.isin(lab, pick)
        x = p["test_embeddings"][keep].astype(np.float32)
        emb = TSNE(n_components=2, init="pca", random_state=0, perplexity=min(30, max(5, len(x) // 4))).fit_transform(x)
        for c in pick:
            sel = lab[keep] == c
            color, marker = CLASS_STYLE[c]
            ax.scatter(emb[sel, 0], emb[sel, 1], s=7, color=color, marker=marker, label=classes[c], alpha=0.8)
        ax.set_title(f"teacher: {REGIME_NAMES[r]}", fontsize=10)
        ax.set_xticks([]), ax.set_yticks([])
        for side in ax.spines.values():
            side.set_edgecolor(regime_color(r))
            side.set_linewidth(2)
    spare[0].axis("off")
    spare[0].legend(*axes[0].get_legend_handles_labels(), fontsize=10, markerscale=2.5, loc="center",
                    title="class", title_fontsize=10)
    n_pts = int(np.isin(next(iter(with_emb.values()))["test_labels"][next(iter(with_emb.values()))["test_embedding_index"]], pick).sum())
    fig.suptitle(f"t-SNE of the teachers' penultimate features (seed {fig_seed}): {n_pts} test images of four "
                 f"classes", fontsize=10)
    fig.tight_layout()
    plt.show()
else:
    display(Markdown("**No embeddings in these runs.** No seed's teacher records keep their penultimate features "
                     "(a profile may set `record_embeddings: false`), so the t-SNE cannot be drawn here."))

# %% [markdown]
# ## Class separability (Table 4)
#
# S_f = (1/C²) Σ_i Σ_j KL(p̄_i ‖ p̄_j) over the mean predicted distributions of the true classes.

# %% tags=["hide-input"]
def students(model, teacher_regime):
    return distilled(rows, model, teacher_regime, main)


n_seeds = seed_counts  # teacher, LeNet and AlexNet cells may rest on different numbers


table4 = pd.DataFrame([{
    "teacher regime": REGIME_NAMES[r],
    "seeds (teacher, LeNet, AlexNet)": n_seeds(teachers[r], students("lenet", r), students("alexnet", r)),
    "teacher": fmt_ci(x["class_separability"] for x in teachers[r]), "teacher (paper)": paper["table4"]["teacher"][r],
    "LeNet": fmt_ci(x["class_separability"] for x in students("lenet", r)), "LeNet (paper)": paper["table4"]["lenet"][r],
    "AlexNet": fmt_ci(x["class_separability"] for x in students("alexnet", r)),
    "AlexNet (paper)": paper["table4"]["alexnet"][r]} for r in PAPER_REGIMES])
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


logit_rows = {r: [] for r in PAPER_REGIMES}
feature_dims = set()
for r, ts in teachers.items():
    for t in ts:
        m = store.find(t["id"], "teacher").read_json("metrics.json")["test"]
        logit_rows[r].append(m["discrimination_logits"])
        feature_dims.add(m["discrimination_embedding"].get("dim"))


def paper5(r, key):
    return f"{paper['table5']['teacher'][r][key]:.3f}"


table5f = pd.DataFrame([{
    "teacher regime": REGIME_NAMES[r], "seeds": n_seeds(teachers[r]), "cohesion": disc(r, "cohesion"), "(paper)": paper5(r, "cohesion"),
    "adhesion": disc(r, "adhesion"), " (paper)": paper5(r, "adhesion"),
    "D": disc(r, "discrimination"), "  (paper)": paper5(r, "discrimination")} for r in PAPER_REGIMES])
table5l = pd.DataFrame([{
    "teacher regime": REGIME_NAMES[r], "seeds": n_seeds(teachers[r]), "cohesion": fmt_ci(x["cohesion"] for x in logit_rows[r]),
    "adhesion": fmt_ci(x["adhesion"] for x in logit_rows[r]),
    "D": fmt_ci(x["discrimination"] for x in logit_rows[r])} for r in PAPER_REGIMES])
display(Markdown(f"**Table 5a.** On the penultimate features (d = {', '.join(map(str, sorted(feature_dims))) or '?'}), "
                 f"beside the paper's Table 5"))
display(table5f.style.hide(axis="index"))
display(Markdown("**Table 5b.** On the 10-d logits (the paper's Table 5 matches this reading, see the audit)"))
display(table5l.style.hide(axis="index"))

# %% [markdown]
# ## Calibration: reliability diagrams (Fig. 5) and ECE (Fig. 7)

# %% tags=["hide-input"]
if preds:
    fig, axes, _ = panel_grid(len(preds), size=2.9)
    for ax, (r, p) in zip(axes, preds.items()):
        curve = reliability_curve(p["test_probs"], p["test_labels"], n_bins=15)
        filled = curve["count"] > 0
        centers = (curve["lower"] + curve["upper"]) / 2
        ax.bar(centers[filled], curve["accuracy"][filled], width=1 / 15, color=regime_color(r), edgecolor="black",
               linewidth=0.4, label="accuracy in bin")
        ax.plot([0, 1], [0, 1], "k--", linewidth=0.8, label="perfect calibration")
        ax.set_title(f"teacher: {REGIME_NAMES[r]}", fontsize=10)
        ax.set_xlabel("confidence")
    axes[0].set_ylabel("accuracy in bin")
    axes[0].legend(fontsize=7, loc="upper left")
    fig.suptitle(f"Reliability diagrams of the teachers (15 bins, seed {fig_seed})", fontsize=10)
    fig.tight_layout()
    plt.show()

# %% tags=["hide-input"]
fig, axes = plt.subplots(1, 3, figsize=(9.5, 3), sharey=True)
groups = [("ResNet-18 teacher", lambda r: teachers[r]), ("LeNet student", lambda r: students("lenet", r)),
          ("AlexNet student", lambda r: students("alexnet", r))]
for ax, (who, fn) in zip(axes, groups):
    for k, r in enumerate(PAPER_REGIMES):
        v = [x["ece"] for x in fn(r)]
        if v:
            ax.bar(k, np.mean(v), 0.7, color=regime_color(r), edgecolor="black", linewidth=0.4)
            ax.scatter([k] * len(v), v, s=10, color="black", zorder=3)
    ax.set_xticks(range(5), [REGIME_NAMES[r] for r in PAPER_REGIMES], rotation=30, fontsize=9)
    ax.set_title(who, fontsize=10)
axes[0].set_ylabel("ECE (15 bins)")
axes[1].set_xlabel("teacher regime")
fig.suptitle("ECE by teacher regime (bars: mean over seeds; dots: seeds)", fontsize=10)
fig.tight_layout()
plt.show()

# %% [markdown]
# ## What the teachers confuse: masked mean-confusion matrices
#
# Row c is the mean predicted distribution over the test images of class c, with the diagonal
# masked so the off-diagonal structure, the "dark knowledge" a student can learn from, shows.

# %% tags=["hide-input"]
if preds:
    mats = {}
    for r, p in preds.items():
        m = mean_confusion(p["test_probs"], p["test_labels"])
        np.fill_diagonal(m, np.nan)
        mats[f"teacher: {REGIME_NAMES[r]}"] = m
    matrix_figure(mats, classes, "viridis", "mean predicted probability of the column's class",
                  f"Masked mean confusion of the teachers (seed {fig_seed}, one colour scale)")
    plt.show()

# %% [markdown]
# ## Human uncertainty (Figs. 3 and 6)

# %% tags=["hide-input"]
if view["human"] is not None and preds:
    from kdlib.blocks.metrics import class_kl_matrix

    human, labels = view["human"], view["labels"]
    hm = mean_confusion(human, labels)
    np.fill_diagonal(hm, np.nan)
    matrix_figure({"CIFAR-10H humans": hm}, classes, "viridis", "mean human probability of the column's class",
                  "Human confusion on the CIFAR-10 test set (Fig. 3), diagonal masked")
    plt.show()
    matrix_figure({f"{REGIME_NAMES[r]}": class_kl_matrix(align(p, view), human, labels) for r, p in preds.items()},
                  classes, "magma", "relative KL to the humans (nats)",
                  f"The teachers' relative KL to the human labels (Fig. 6; seed {fig_seed}, one colour scale)")
    plt.show()
elif not preds:
    display(Markdown("No teacher is finished here, so there is nothing to compare with the human labels."))
else:
    display(Markdown(f"Not available for `{main}`: CIFAR-10H holds human labels for the CIFAR-10 test set only; "
                     f"Part I of this book (CIFAR-10) draws the human confidence matrix (Fig. 3) and the relative KL "
                     f"matrices (Fig. 6)." if main != "cifar10" else
                     "CIFAR-10H is not here (neither under `$KDLIB_DATA` nor in the records' dataset sidecar), so "
                     "Figs. 3 and 6 cannot be drawn."))
