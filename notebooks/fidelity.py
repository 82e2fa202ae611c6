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
# # What students learn of their teachers (beyond the paper)
#
# Two questions the paper does not ask, answered from the runs already in the grid (no new training):
#
# 1. **Fidelity.** Do students of augmented teachers learn *less* of their teacher (lower top-1
#    agreement, larger KL(teacher ‖ student) on the test set), or learn it as well and inherit its
#    flaws? (Stanton et al., 2021, found that students rarely match their teachers even when they could.)
# 2. **What predicts a good teacher.** Across every teacher of the grid (each regime and seed one point),
#    how well does each property of a teacher — accuracy, test NLL, ECE, KL to the human labels,
#    class separability, discrimination, the spread of its logits — rank its distilled student's
#    accuracy? Spearman's ρ with a 95% percentile bootstrap interval over teachers
#    (`kdlib.blocks.predictors`).
#
# Students here are the paper's E2 students (clean inputs, T = 20, α = 0.5).

# %% tags=["parameters", "hide-input"]
profile = "quick"
runs = None
part = "II"

# %% tags=["hide-input"]
import math

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import seaborn as sns
from IPython.display import Markdown, display

from kdlib.runs.plan import load_grid, resolve_dataset
from kdlib.blocks.predictors import PREDICTORS, correlations, teacher_properties, teacher_student_pairs
from kdlib.book.names import MODEL_NAMES, REGIME_NAMES, regime_color
from kdlib.book.report import part_header
from kdlib.book.rows import PAPER_REGIMES, collect, load_predictions, teacher_train_logits
from kdlib.book.stats import fmt_ci, paired_difference
from kdlib.runs.store import RunStore

store = RunStore(runs, profile)
rows = collect(store)
main = resolve_dataset(load_grid(), profile, "main")["name"]
rows_main = [r for r in rows if r["dataset"] == main]
display(Markdown(part_header(part, profile, rows_main, main)))
teacher_ids = [r["id"] for r in rows_main if r["kind"] == "teacher" and r["model"] == "resnet18"]
logits, props = {}, {}
for tid in teacher_ids:
    pred = load_predictions(store, tid)
    logits[tid] = pred.get("test_logits")
    train_logits, train_labels = teacher_train_logits(store, tid)
    props[tid] = teacher_properties(logits[tid], pred.get("test_labels"), train_logits, train_labels)
pairs = {m: teacher_student_pairs(rows_main, m, teacher_logits=logits, properties=props) for m in ("lenet", "alexnet")}
pairs = {m: [p for p in ps if p["teacher_model"] == "resnet18"] for m, ps in pairs.items()}
n_pairs = sum(len(p) for p in pairs.values())
if not n_pairs:
    display(Markdown(f"No distilled student of profile `{profile}` is finished yet: this chapter is empty. "
                     f"Fill the grid with `python -m kdlib grid --profile {profile}`."))
no_logits = [t for t, z in logits.items() if z is None]
if no_logits:
    display(Markdown(f"{len(no_logits)} of {len(logits)} teacher records kept no logits (the first GPU slice "
                     f"stored probabilities only): the logit-spread predictor uses the other teachers."))
no_train = [t for t, p in props.items() if math.isnan(p["t_stddev"])]
if no_train:
    display(Markdown(f"{len(no_train)} of {len(props)} teachers have no training-split logits here (records made "
                     f"before teacher records kept them, or the training data is not on this machine): T. stddev "
                     f"uses the other {len(props) - len(no_train)}."))

# %% [markdown]
# ## Fidelity: how much of its teacher does a student learn?
#
# Mean over seeds ± the half-width of the 95% Student-t interval (a single value where one seed
# finished). Agreement: the share of test images on which student and teacher predict the same
# class; KL: KL(teacher ‖ student) of the test-set predictions at T = 1, averaged over images.

# %% tags=["hide-input"]
def by_regime(model):
    out = {}
    for p in pairs[model]:
        out.setdefault(p["teacher_regime"], []).append(p)
    return out


table = []
for model in ("lenet", "alexnet"):
    groups = by_regime(model)
    for regime in PAPER_REGIMES:
        ps = groups.get(regime, [])
        if not ps:
            continue
        table.append({"student": MODEL_NAMES[model], "teacher": REGIME_NAMES[regime], "seeds": len(ps),
                      "teacher accuracy": fmt_ci([p["accuracy"] for p in ps]),
                      "student accuracy": fmt_ci([p["student_accuracy"] for p in ps]),
                      "agreement": fmt_ci([p["agreement"] for p in ps]),
                      "KL(teacher ‖ student)": fmt_ci([p["kl_teacher_student"] for p in ps])})
if table:
    display(pd.DataFrame(table).style.hide(axis="index"))

# %% [markdown]
# Paired against the plain teacher's student of the same seed (a − b, 95% interval): a negative
# agreement difference means the student of the augmented teacher copies its teacher less.

# %% tags=["hide-input"]
diffs = []
for model in ("lenet", "alexnet"):
    groups = by_regime(model)
    base = {p["seed"]: p for p in groups.get("none", [])}
    for regime in PAPER_REGIMES[1:]:
        other = {p["seed"]: p for p in groups.get(regime, [])}
        if not (set(base) & set(other)):
            continue
        row = {"student": MODEL_NAMES[model], "teacher": f"{REGIME_NAMES[regime]} − none"}
        for key, label in (("agreement", "agreement"), ("kl_teacher_student", "KL(t ‖ s)"),
                           ("student_accuracy", "student accuracy")):
            d = paired_difference({s: p[key] for s, p in other.items()}, {s: p[key] for s, p in base.items()})
            ci = "" if math.isinf(d["high"]) or math.isnan(d["high"]) else f" [{d['low']:+.3f}, {d['high']:+.3f}]"
            row[label] = f"{d['mean']:+.3f}{ci} (n={d['n']})"
        diffs.append(row)
if diffs:
    display(pd.DataFrame(diffs).style.hide(axis="index"))
else:
    display(Markdown("No seed has both a plain and an augmented teacher's student yet."))

# %% tags=["hide-input"]
records = [{"student": MODEL_NAMES[m], "teacher regime": REGIME_NAMES[p["teacher_regime"]], "seed": p["seed"],
            "agreement with teacher": p["agreement"], "student accuracy": p["student_accuracy"]}
           for m in pairs for p in pairs[m]]
if records:
    df = pd.DataFrame(records)
    order = [REGIME_NAMES[r] for r in PAPER_REGIMES if REGIME_NAMES[r] in set(df["teacher regime"])]
    palette = {REGIME_NAMES[r]: regime_color(r) for r in PAPER_REGIMES}
    students = [MODEL_NAMES[m] for m in ("lenet", "alexnet") if MODEL_NAMES[m] in set(df["student"])]
    fig, axes = plt.subplots(2, len(students), figsize=(4.8 * len(students), 6.4), constrained_layout=True,
                             squeeze=False)
    for col, student in enumerate(students):
        sub = df[df["student"] == student]
        for row, y in enumerate(("agreement with teacher", "student accuracy")):
            ax = axes[row, col]
            sns.pointplot(data=sub, x="teacher regime", y=y, order=order, errorbar=("ci", 95), color="black",
                          linestyle="none", markers="_", markersize=18, ax=ax)
            sns.stripplot(data=sub, x="teacher regime", y=y, order=order, hue="teacher regime", palette=palette,
                          size=6, jitter=0.15, edgecolor="black", linewidth=0.4, legend=False, ax=ax)
            ax.set_xlabel("teacher's training regime" if row else "")
            ax.set_ylabel(y)
            ax.set_title(f"{student} students: " + ("how much of the teacher they copy" if row == 0
                                                    else "their test accuracy"), fontsize=10)
            ax.tick_params(axis="x", labelrotation=20)
    plt.show()

# %% [markdown]
# *Figure: per-seed values (dots, coloured by the teacher's regime) and their mean (black bar, with
# seaborn's 95% bootstrap interval where there are several seeds) of each student's top-1 agreement
# with its teacher (top) and its test accuracy (bottom), by the teacher's regime; one column per student.*
#
# ## What predicts a good teacher?
#
# Spearman's ρ between each teacher property and its distilled student's accuracy, over every
# (teacher regime, seed), with a 95% percentile bootstrap interval (2,000 resamples of the teachers; no
# interval under four teachers). With ten teachers an interval that excludes zero is a strong hint,
# not a law: regimes differ in more than one property at once.
#
# Two of the properties come from later work. **T. stddev** (Wang et al., NeurIPS 2022, who report Pearson
# 0.958 between it and the student's test loss over eight augmentations, CIFAR-100): the standard deviation over
# batches of the teacher's mean probability of the true class, here on the clean training split the students
# distil from, shuffled once (seed 0) into batches of 64 with the last incomplete batch dropped
# (`kdlib.blocks.predictors.t_stddev`). **Adaptive ECE** (Kim et al. 2025 find the teacher's calibration error
# predicts its student's accuracy over 17 teachers): top-label ECE over 15 equal-mass bins of the test set
# (`kdlib.blocks.metrics.adaptive_ece`), beside the equal-width ECE.

# %% tags=["hide-input"]
corr_rows, summaries = [], []
for model in ("lenet", "alexnet"):
    if len(pairs[model]) < 2:
        continue
    res = correlations(pairs[model])
    for c in res:
        ci = "-" if math.isnan(c["low"]) else f"[{c['low']:+.2f}, {c['high']:+.2f}]"
        corr_rows.append({"student": MODEL_NAMES[model], "teacher property": c["label"],
                          "Spearman ρ": "-" if math.isnan(c["r"]) else f"{c['r']:+.2f}", "95% interval": ci,
                          "teachers": c["n"]})
    decisive = [c for c in res if not math.isnan(c["low"]) and (c["low"] > 0 or c["high"] < 0)]
    if decisive:
        best = max(decisive, key=lambda c: abs(c["r"]))
        summaries.append(f"For {MODEL_NAMES[model]} students, the {best['label']} ranks the student's accuracy best "
                         f"(ρ = {best['r']:+.2f}, interval [{best['low']:+.2f}, {best['high']:+.2f}], "
                         f"{best['n']} teachers); {len(decisive)} of {len(res)} properties have an interval that "
                         f"excludes zero.")
    else:
        summaries.append(f"For {MODEL_NAMES[model]} students, no teacher property's interval excludes zero over "
                         f"{len(pairs[model])} teachers.")
if corr_rows:
    display(pd.DataFrame(corr_rows).style.hide(axis="index"))
    display(Markdown(" ".join(summaries)))
else:
    display(Markdown("Fewer than two teachers with a distilled student: no correlation to show."))

# %% tags=["hide-input"]
from matplotlib.ticker import MaxNLocator  # noqa: E402

for model in ("lenet", "alexnet"):
    if len(pairs[model]) < 2:
        continue
    keys = [k for k in PREDICTORS if any(not math.isnan(p[k]) for p in pairs[model])]
    ncol = 4
    nrow = math.ceil(len(keys) / ncol)
    fig, axes = plt.subplots(nrow, ncol, figsize=(11, 2.9 * nrow), constrained_layout=True, squeeze=False)
    for ax, key in zip(axes.flat, keys):
        for p in pairs[model]:
            if not math.isnan(p[key]):
                ax.scatter(p[key], p["student_accuracy"], color=regime_color(p["teacher_regime"]), s=34,
                           edgecolor="black", linewidth=0.4)
        ax.set_xlabel(PREDICTORS[key], fontsize=9)
        ax.set_ylabel(f"{MODEL_NAMES[model]} accuracy", fontsize=9)
        ax.xaxis.set_major_locator(MaxNLocator(4))
        ax.tick_params(labelsize=8)
    for ax in list(axes.flat)[len(keys):]:
        ax.axis("off")
    handles = [plt.Line2D([], [], color=regime_color(r), marker="o", linestyle="", markeredgecolor="black",
                          label=REGIME_NAMES[r]) for r in PAPER_REGIMES]
    fig.legend(handles=handles, loc="outside lower center", ncol=5, fontsize=9, frameon=False,
               title=f"teacher's regime ({MODEL_NAMES[model]} students)")
    plt.show()

# %% [markdown]
# *Figures: each teacher (colour: its regime; one point per seed) against the accuracy of its distilled
# LeNet student (first figure) and AlexNet student (second).*
