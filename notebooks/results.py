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
# # Which of the paper's claims hold?
#
# Each claim of Das et al. is tested on the per-seed differences between runs of this profile
# (every run of one seed sees the same batch stream, so the seeds are paired). A comparison is
# **reproduced** when the paper's direction holds and the 95% Student-t interval over seeds
# excludes zero, **contradicted** when the interval excludes zero on the other side, and
# **inconclusive** otherwise. With two seeds the interval is wide (t = 12.7 at one degree of
# freedom): "inconclusive" then mostly says that two seeds cannot settle a difference of this size.

# %% tags=["parameters", "hide-input"]
profile = "quick"
runs = None
strict = False  # True: a missing run is an error (for CI), not a listed gap

# %% tags=["hide-input"]
import math
import os

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from IPython.display import Markdown, display
from myst_nb import glue

from kdlib.grid import load_grid, resolve_dataset
from kdlib.report import regime_color
from kdlib.results import REGIMES, claim_summary, claims, collect, fmt_ci, mean_ci, missing_runs, paper_tables
from kdlib.runs import RunStore

store = RunStore(runs, profile)
rows = collect(store)
df = pd.DataFrame(rows)
main = resolve_dataset(load_grid(), profile, "main")
paper = paper_tables()
prov = store.runs()[0].read_json("provenance.json") if rows else {}
display(Markdown(
    f"Profile **{profile}**: dataset `{main['name']}` ({main['subset'] or 'all'} training images per class, "
    f"{main['test_subset'] or 'all'} test images per class), seeds {sorted(df.seed.unique().tolist())}, "
    f"{len(df)} finished runs from `{store.root / profile}`, on {prov.get('device_name', '?')} "
    f"({prov.get('device', '?')}), torch {prov.get('versions', {}).get('torch', '?')}, "
    f"commit `{(prov.get('git_commit') or '?')[:10]}`."))
if main["name"] != "cifar10":
    display(Markdown(f"**These runs use {main['name']}, not CIFAR-10**: they test the paper's claims on another "
                     f"dataset and at a small scale; the paper's numbers (CIFAR-10) are shown beside them for "
                     f"reference, not for equality. `make book PROFILE=paper` runs the CIFAR-10 grid."))

# %% tags=["hide-input"]
gaps = missing_runs(store)
if gaps and strict:
    raise RuntimeError(f"{len(gaps)} tasks of profile {profile!r} have unfinished runs, e.g. {gaps[0]['task']}; "
                       f"fill them with: python -m kdlib grid --profile {profile}")
if gaps:
    display(Markdown(f"**The run store is incomplete**: {sum(g['missing runs'] for g in gaps)} runs of "
                     f"{len(gaps)} tasks are missing, so the comparisons that need them read *not tested*. "
                     f"`python -m kdlib grid --profile {profile}` fills them all; each line below fills one task."))
    display(pd.DataFrame(gaps).style.hide(axis="index"))
else:
    display(Markdown(f"Every run of the `{profile}` grid is in the store."))

# %% [markdown]
# ## Verdicts

# %% tags=["hide-input"]
results = pd.DataFrame(claims(rows, main["name"]))
summary = claim_summary(results.to_dict("records"))
for cid, s in summary.items():
    glue(f"verdict_{cid}", s["verdict"], display=False)
table = pd.DataFrame([{"claim": cid, "statement": results[results.claim == cid].statement.iloc[0],
                       "verdict": s["verdict"],
                       "comparisons": ", ".join(f"{n} {v}" for v, n in s["counts"].items())}
                      for cid, s in summary.items()])
table.style.hide(axis="index")

# %% [markdown]
# In one line each: C1 {glue:text}`verdict_C1`, C2 {glue:text}`verdict_C2`, C3 {glue:text}`verdict_C3`,
# C4 {glue:text}`verdict_C4`, C5 {glue:text}`verdict_C5`, C6 {glue:text}`verdict_C6`.
# C6 needs the CIFAR-10H human labels, so it is "not tested" on any other dataset.

# %% tags=["hide-input"]
detail = results[["claim", "comparison", "metric", "direction", "mean", "low", "high", "n", "verdict"]].copy()
detail.style.format({"mean": "{:+.4f}", "low": "{:+.4f}", "high": "{:+.4f}"}, na_rep="-").hide(axis="index")

# %% [markdown]
# ## Teachers and students (the paper's Table 1)
#
# Mean ± half-width of the 95% interval over seeds, beside the paper's single-seed values on CIFAR-10.

# %% tags=["hide-input"]
teachers = df[(df.kind == "teacher") & (df.model == "resnet18") & (df.dataset == main["name"])]
students = df[(df.kind == "student") & (df.regime == "none") & (df.alpha == 0.5) & (df.teacher_model == "resnet18")]
lines = []
for r in REGIMES:
    line = {"teacher regime": r}
    for who, sel in (("teacher", teachers[teachers.regime == r]),
                     ("lenet", students[(students.model == "lenet") & (students.teacher_regime == r)]),
                     ("alexnet", students[(students.model == "alexnet") & (students.teacher_regime == r)])):
        line[f"{who} acc"] = fmt_ci(sel.accuracy)
        line[f"{who} acc (paper)"] = paper["table1"][who][r]["accuracy"]
        line[f"{who} ECE"] = fmt_ci(sel.ece)
        line[f"{who} ECE (paper)"] = paper["table1"][who][r]["ece"]
        line[f"{who} KL human"] = fmt_ci(sel.kl_to_human)
        line[f"{who} KL human (paper)"] = paper["table1"][who][r]["kld"]
    lines.append(line)
table1 = pd.DataFrame(lines)
for r, line in zip(REGIMES, lines):
    glue(f"teacher_acc_{r}", line["teacher acc"], display=False)
table1.style.format(precision=3).hide(axis="index")

# %% [markdown]
# The teacher trained without augmentation reaches {glue:text}`teacher_acc_none` and the flip+crop
# teacher {glue:text}`teacher_acc_flipcrop` in this profile (accuracy on the test split).
# "KL human" is the mean over images of KL(human ‖ model) on CIFAR-10H; "-" where the dataset has
# no human labels.
#
# ### No-teacher reference
#
# Students trained on hard labels alone (α = 0), by student regime: without them nobody can tell
# whether distillation helps at all.

# %% tags=["hide-input"]
alone = df[(df.kind == "student") & (df.alpha == 0.0) & (df.dataset == main["name"])]
ref = []
for model in ("lenet", "alexnet"):
    for r in REGIMES:
        sel = alone[(alone.model == model) & (alone.regime == r)]
        distilled = students[(students.model == model) & (students.teacher_regime == "none")] if r == "none" else \
            df[(df.kind == "student") & (df.model == model) & (df.regime == r) & (df.teacher_regime == "none")]
        if len(sel):
            ref.append({"student": model, "student regime": r, "alone (alpha=0)": fmt_ci(sel.accuracy),
                        "distilled from the plain teacher": fmt_ci(distilled.accuracy)})
pd.DataFrame(ref).style.hide(axis="index")

# %% [markdown]
# ## Figure 1: teachers improve, students do not follow

# %% tags=["hide-input"]
fig, ax = plt.subplots(figsize=(8, 3.6))
width = 0.26
for i, (who, sel_fn) in enumerate((("ResNet-18 teacher", lambda r: teachers[teachers.regime == r]),
                                   ("LeNet student", lambda r: students[(students.model == "lenet") & (students.teacher_regime == r)]),
                                   ("AlexNet student", lambda r: students[(students.model == "alexnet") & (students.teacher_regime == r)]))):
    means, errs = [], []
    for r in REGIMES:
        m, h, n = mean_ci(sel_fn(r).accuracy)
        means.append(m)
        errs.append(0 if not np.isfinite(h) else h)
    x = np.arange(len(REGIMES)) + (i - 1) * width
    ax.bar(x, means, width, yerr=errs, capsize=3, label=who, color=[regime_color(r) for r in REGIMES],
           alpha=[1.0, 0.65, 0.35][i], edgecolor="black", linewidth=0.5)
    for xi, m in zip(x, means):
        ax.text(xi, 0.02, who.split()[0][0], ha="center", fontsize=7, color="white")
ax.set_xticks(np.arange(len(REGIMES)), ["none", "flip+crop", "Cutout", "Mixup", "CutMix"])
ax.set_ylabel(f"test accuracy ({main['name']})")
ax.set_ylim(0, 1)
ax.set_title("Teacher (R), LeNet (L) and AlexNet (A) students by teacher regime; bars: 95% CI over seeds")
fig.tight_layout()
glue("fig_overview", fig, display=False)
