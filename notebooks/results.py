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
# # Which of the paper's claims hold?
#
# Each claim of Das et al. is tested on the per-seed differences between runs of one profile
# (every run of one seed sees the same batch stream, so the seeds are paired). A comparison is
# **reproduced** when the paper's direction holds and the 95% Student-t interval over seeds
# excludes zero, **contradicted** when the interval excludes zero on the other side, and
# **inconclusive** otherwise; with one seed every comparison is inconclusive, and the table then
# says only which way the point estimate leans. A comparison whose **preconditions** fail (the
# augmented teacher is not better, distillation does not help) gets no verdict.

# %% tags=["parameters", "hide-input"]
profile = "quick"
runs = None
strict = False  # True: a missing run is an error (for CI), not a listed gap
part = "II"

# %% tags=["hide-input"]
import math

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from IPython.display import Markdown, display
from myst_nb import glue

from kdlib.grid import load_grid, resolve_dataset
from kdlib.report import DATASET_NAMES, MODEL_NAMES, REGIME_NAMES, linked, part_header, regime_color, report_links
from kdlib.results import (METRIC_NAMES, REGIMES, TOLERANCE, claim_summary, claims, collect, fmt_ci, mean_ci, missing_runs,
                           paper_tables, preconditions)
from kdlib.runs import RunStore

store = RunStore(runs, profile)
grid = load_grid()
rows = collect(store, grid)
everything = collect(store, grid, include_failed=True)
df = pd.DataFrame(rows)
main = resolve_dataset(grid, profile, "main")["name"]
mnist = resolve_dataset(grid, profile, "mnist")["name"]
paper = paper_tables()
gpu_profile = profile == "paper"
links = report_links(profile, part, grid)  # every number links to the run report that produced it
display(Markdown(part_header(part, profile, rows, main)))
if main != "cifar10":
    display(Markdown(f"**These runs use {DATASET_NAMES.get(main, main)}, not CIFAR-10**: they test the paper's claims "
                     f"on another dataset and at a small scale; the paper's numbers (CIFAR-10) are shown beside them "
                     f"for reference, not for equality. Part I of this book holds the CIFAR-10 runs."))

# %% tags=["hide-input"]
gaps = missing_runs(store, grid, gpu=gpu_profile)
if gaps and strict:
    raise RuntimeError(f"{len(gaps)} tasks of profile {profile!r} have unfinished runs, e.g. {gaps[0]['task']}; "
                       f"fill them with: python -m kdlib grid --profile {profile}")
if gaps:
    display(Markdown(f"**{sum(g['missing runs'] for g in gaps)} runs of {len(gaps)} tasks are missing**; the "
                     f"comparisons that need them read *not tested*. The last section lists them with the commands "
                     f"that fill them."))
else:
    display(Markdown(f"Every run of the `{profile}` grid is here."))

# %% [markdown]
# ## Failed runs
#
# A run is **failed**, and left out of every mean, table and verdict, when its test accuracy lies
# within 3 binomial standard errors of chance (1/C), when a training loss is not finite, or when its
# training loss is flat (the last epoch's loss at least 98% of the first's). The rule is
# `kdlib.records.run_health`; it is applied to every run as it is read. (The smoke profiles, whose
# runs are at chance by design, keep them in the tables, flagged: they test code paths, not claims.)

# %% tags=["hide-input"]
failed = [r for r in everything if r["failed"]]
glue("n_failed", str(len(failed)), display=False)
if failed and len(rows) == len(everything):
    display(Markdown(f"**Profile `{profile}` keeps its failed runs in the tables** (`failed_runs: keep` in "
                     f"grid.yaml): its numbers test the code, not the paper."))
if failed:
    display(pd.DataFrame([{"run": r["id"], "kind": r["kind"], "model": r["model"], "regime": r["regime"],
                           "teacher regime": r["teacher_regime"] or "-", "seed": r["seed"],
                           "accuracy": f"{r['accuracy']:.3f}", "why": r["failure"]} for r in failed])
            .style.hide(axis="index"))
else:
    display(Markdown(f"No run of the {len(everything)} read here failed."))

# %% [markdown]
# ## Preconditions
#
# The paper's claims about students assume that augmentation made the teachers better, that the
# teachers are better than the students can be alone, and that distillation helps at all. Each is
# measured here ("at least as accurate" and "matches" allow a mean paired difference down to
# −{glue:text}`tolerance`); a claim's comparison that rests on a failed precondition is withheld.

# %% tags=["hide-input"]
glue("tolerance", f"{TOLERANCE:.3f}", display=False)
pre = preconditions(rows, main, mnist)
display(pd.DataFrame([{"id": k, "precondition": v["statement"],
                       "holds": {True: "yes", False: "NO", None: "not measured"}[v["holds"]],
                       "measured": v["evidence"]} for k, v in pre.items()]).style.hide(axis="index"))

# %% [markdown]
# ## Verdicts
#
# A claim's verdict combines its comparisons: **reproduced** (or **contradicted**) when every
# tested comparison is; **mixed** when some are reproduced and some contradicted; **partly
# reproduced** (or **partly contradicted**) when some are and the rest inconclusive;
# **inconclusive** when none is decisive; **precondition failed** when every comparison was
# withheld; **not tested** when the runs are missing. The Holm column adjusts the comparisons of
# each claim for multiplicity (Holm's step-down method at 5%).

# %% tags=["hide-input"]
results = pd.DataFrame(claims(rows, main, mnist))
summary = claim_summary(results.to_dict("records"))
for cid, s in summary.items():
    glue(f"verdict_{cid}", s["verdict"], display=False)
    glue(f"holm_{cid}", s["verdict_holm"], display=False)
    glue(f"lean_{cid}", f"{s['agree']} of {s['measured']}" if s["measured"] else "-", display=False)
glue("n_seeds", str(int(df.seed.nunique()) if len(df) else 0), display=False)
glue("n_runs", str(len(df)), display=False)
table = pd.DataFrame([{"claim": cid, "statement": s["statement"], "paper": s["source"], "verdict": s["verdict"],
                       "Holm-adjusted": s["verdict_holm"],
                       "comparisons": ", ".join(f"{n} {v}" for v, n in s["counts"].items()),
                       "point estimates in the paper's direction": (f"{s['agree']} of {s['measured']}"
                                                                      if s["measured"] else "-")}
                      for cid, s in summary.items()])
table.style.hide(axis="index")

# %% tags=["hide-input"]
decisive = [c for c, s in summary.items() if s["verdict"] in ("reproduced", "contradicted", "mixed",
                                                                 "partly reproduced", "partly contradicted")]
n_seeds = int(df.seed.nunique()) if len(df) else 0
if not len(df):
    sentence = "No run of this profile is finished yet, so no claim is tested."
elif n_seeds < 2:
    sentence = (f"With {n_seeds} seed, no comparison can be decided (a single seed has no interval); the point "
                f"estimates lean the paper's way in {sum(s['agree'] for s in summary.values())} of "
                f"{sum(s['measured'] for s in summary.values())} measured comparisons.")
else:
    sentence = (f"Over {n_seeds} seeds: " + "; ".join(f"{c} {summary[c]['verdict']}" for c in summary) + ".")
glue("summary_sentence", sentence, display=False)
display(Markdown(sentence))

# %% [markdown]
# ### Every comparison
#
# The paired difference a − b over seeds (mean, 95% interval, the per-seed values), the two-sided
# paired t-test's p-value and its Holm adjustment within the claim.

# %% tags=["hide-input"]
def _num(x, fmt="{:+.3f}"):
    return "-" if x is None or (isinstance(x, float) and not np.isfinite(x)) else fmt.format(x)


detail = pd.DataFrame([{
    "claim": r["claim"], "comparison (a − b)": r["comparison"],
    "difference [95% interval]": (f"{_num(r['mean'])} [{_num(r['low'])}, {_num(r['high'])}]" if r["n"] else "-"),
    "seeds": r["n"], "p (Holm)": f"{_num(r['p'], '{:.3f}')} ({_num(r['p_holm'], '{:.3f}')})",
    "verdict (Holm)": r["verdict"] + ("" if r["verdict_holm"] == r["verdict"] else f" ({r['verdict_holm']})"),
    "per seed": ", ".join(f"{v:+.3f}" for v in r["per_seed"]) or "-",
    "withheld because": "; ".join(r["failed_preconditions"]) or ""} for r in results.to_dict("records")])
detail.style.hide(axis="index")

# %% tags=["hide-input"]
shown = results[results.n > 0].reset_index(drop=True)
if len(shown):
    colors = {"reproduced": "#2a9d8f", "contradicted": "#e76f51", "inconclusive": "#6c757d",
              "precondition failed": "#bbbbbb"}
    metrics_shown = list(dict.fromkeys(shown.metric))
    sizes = [int((shown.metric == m).sum()) for m in metrics_shown]
    fig, axes = plt.subplots(len(metrics_shown), 1, figsize=(8.2, 0.3 * sum(sizes) + 0.75 * len(sizes) + 0.6),
                             gridspec_kw={"height_ratios": [n + 1.2 for n in sizes]}, squeeze=False)
    for ax, metric in zip(axes[:, 0], metrics_shown):
        part_ = shown[shown.metric == metric].reset_index(drop=True)
        y = np.arange(len(part_))[::-1]
        for yi, r in zip(y, part_.itertuples()):
            c = colors.get(r.verdict, "#6c757d")
            if np.isfinite(r.low) and np.isfinite(r.high):
                ax.plot([r.sign * r.low, r.sign * r.high], [yi, yi], color=c, lw=2)
            ax.scatter([r.sign * v for v in r.per_seed], [yi] * len(r.per_seed), s=10, color="black", zorder=3)
            ax.scatter([r.sign * r.mean], [yi], s=42, color=c, edgecolor="black", zorder=4)
        ax.axvline(0, color="black", lw=0.8)
        ax.set_yticks(y, [f"{r.claim}: {r.comparison}" for r in part_.itertuples()], fontsize=8)
        vals = np.concatenate([np.abs(np.asarray(v, float)) for v in part_.per_seed] + [np.abs(part_["mean"].values)])
        span = max(1e-4, float(np.nanmax(vals)))
        ax.set_xlim(-1.25 * span, 1.25 * span)
        ax.set_ylim(-0.7, len(part_) - 0.3)
        ax.set_xlabel(f"Δ {METRIC_NAMES.get(metric, metric)}, signed: > 0 is the paper's direction", fontsize=8)
        ax.tick_params(axis="x", labelsize=8)
    axes[0, 0].text(1.0, 1.02, "paper's direction →", transform=axes[0, 0].transAxes, ha="right", va="bottom",
                    fontsize=8)
    handles = [plt.Line2D([], [], marker="o", ls="", color=c, markeredgecolor="black", label=v)
               for v, c in colors.items() if v in set(shown.verdict)]
    handles.append(plt.Line2D([], [], marker="o", ls="", color="black", markersize=3, label="one seed"))
    axes[0, 0].legend(handles=handles, fontsize=8, loc="lower left", bbox_to_anchor=(0, 1.0), ncol=4, frameon=False)
    fig.tight_layout()
    glue("fig_comparisons", fig, display=False)
    plt.show()
else:  # the front page shows this figure: it always exists
    fig, ax = plt.subplots(figsize=(6, 1.2))
    ax.text(0.5, 0.5, "no comparison measured yet", ha="center", va="center")
    ax.axis("off")
    glue("fig_comparisons", fig, display=False)
    plt.close(fig)

# %% [markdown]
# ## Teachers and students (the paper's Table 1)
#
# Mean ± half-width of the 95% interval over seeds (the seeds column counts them; one seed has no
# interval), beside the paper's single-seed values on CIFAR-10. "KL human" is the mean over test
# images of KL(human ‖ model) against CIFAR-10H; "-" where the dataset has no human labels.

# %% tags=["hide-input"]
teachers = df[(df.kind == "teacher") & (df.model == "resnet18") & (df.dataset == main)] if len(df) else df
students = (df[(df.kind == "student") & (df.regime == "none") & (df.alpha == 0.5) & (df.teacher_model == "resnet18")]
            if len(df) else df)


def table1(who, sel_fn):
    lines = []
    for r in REGIMES:
        sel = sel_fn(r)
        p = paper["table1"][who][r]
        lines.append({"teacher regime": REGIME_NAMES[r], "seeds": len(sel),
                      "accuracy": linked(fmt_ci(sel.accuracy), sel, links) if len(sel) else "-",
                      "accuracy (paper)": f"{p['accuracy']:.3f}",
                      "ECE": fmt_ci(sel.ece) if len(sel) else "-", "ECE (paper)": f"{p['ece']:.3f}",
                      "KL human": fmt_ci(sel.kl_to_human) if len(sel) else "-", "KL human (paper)": f"{p['kld']:.3f}"})
    return pd.DataFrame(lines)


t1 = {}
for who, fn in (("teacher", lambda r: teachers[teachers.regime == r] if len(teachers) else teachers),
                ("lenet", lambda r: students[(students.model == "lenet") & (students.teacher_regime == r)]
                 if len(students) else students),
                ("alexnet", lambda r: students[(students.model == "alexnet") & (students.teacher_regime == r)]
                 if len(students) else students)):
    t1[who] = table1(who, fn)
for r in REGIMES:
    sel = teachers[teachers.regime == r] if len(teachers) else teachers
    glue(f"teacher_acc_{r}", fmt_ci(sel.accuracy) if len(sel) else "-", display=False)
display(Markdown("**Table 1a.** ResNet-18 teachers"))
display(t1["teacher"].style.hide(axis="index"))
display(Markdown("**Table 1b.** LeNet students, by teacher regime"))
display(t1["lenet"].style.hide(axis="index"))
display(Markdown("**Table 1c.** AlexNet students, by teacher regime"))
display(t1["alexnet"].style.hide(axis="index"))

# %% [markdown]
# The plain teacher reaches {glue:text}`teacher_acc_none` and the flip+crop teacher
# {glue:text}`teacher_acc_flipcrop` on the test split here.
#
# ### No-teacher reference
#
# Students trained on hard labels alone (α = 0), by student regime: without them nobody can tell
# whether distillation helps at all.

# %% tags=["hide-input"]
ref = []
if len(df):
    alone = df[(df.kind == "student") & (df.alpha == 0.0) & (df.dataset == main)]
    for model in ("lenet", "alexnet"):
        for r in REGIMES:
            sel = alone[(alone.model == model) & (alone.regime == r)]
            dist = df[(df.kind == "student") & (df.model == model) & (df.regime == r) & (df.alpha == 0.5)
                      & (df.teacher_regime == "none") & (df.dataset == main)]
            if len(sel) or len(dist):
                ref.append({"student": MODEL_NAMES[model], "student regime": REGIME_NAMES[r], "seeds": len(sel),
                            "alone (α = 0)": linked(fmt_ci(sel.accuracy), sel, links) if len(sel) else "-",
                            "distilled from the plain teacher": (linked(fmt_ci(dist.accuracy), dist, links)
                                                                 if len(dist) else "-")})
if ref:
    display(pd.DataFrame(ref).style.hide(axis="index"))
else:
    display(Markdown("No α = 0 student is finished yet: distillation cannot be judged against training alone."))

# %% tags=["hide-input"]
def accuracy_by_regime(fn):
    return {r: list(fn(r).accuracy) if len(df) else [] for r in REGIMES}


groups = {"ResNet-18 teacher": accuracy_by_regime(lambda r: teachers[teachers.regime == r]),
          "LeNet student": accuracy_by_regime(lambda r: students[(students.model == "lenet")
                                                                 & (students.teacher_regime == r)]),
          "AlexNet student": accuracy_by_regime(lambda r: students[(students.model == "alexnet")
                                                                   & (students.teacher_regime == r)])}


def trend(values):
    base = np.mean(values["none"]) if values["none"] else math.nan
    better = [r for r in REGIMES[1:] if values[r] and np.mean(values[r]) > base]
    worse = [r for r in REGIMES[1:] if values[r] and np.mean(values[r]) <= base]
    return better, worse


tb, tw = trend(groups["ResNet-18 teacher"])
lb, lw = trend(groups["LeNet student"])
title = (f"Figure 1: {len(tb)} of {len(tb) + len(tw)} augmented teachers beat the plain one; "
         f"{len(lw)} of {len(lb) + len(lw)} of their LeNet students fall below the plain teacher's"
         if tb or tw else "Figure 1: teachers and students by teacher regime")
glue("figure1_title", title, display=False)
display(Markdown(f"**{title}**"))

# %% tags=["hide-input"]
if len(df):
    import seaborn as sns

    long = pd.DataFrame([{"who": who, "regime": REGIME_NAMES[r], "accuracy": v, "key": r}
                         for who, values in groups.items() for r in REGIMES for v in values[r]])
    fig, axes = plt.subplots(1, 3, figsize=(10, 3.4))
    order = [REGIME_NAMES[r] for r in REGIMES]
    palette = {REGIME_NAMES[r]: regime_color(r) for r in REGIMES}
    for ax, who in zip(axes, groups):
        sub = long[long.who == who]
        if len(sub):
            # means as large markers (not bars: the axis does not start at zero), seeds as dots
            sns.pointplot(data=sub, x="regime", y="accuracy", hue="regime", order=order, palette=palette,
                          errorbar=None, ax=ax, markers="D", markersize=9, linestyle="none", legend=False)
            sns.stripplot(data=sub, x="regime", y="accuracy", order=order, color="black", size=3.5, jitter=0.12,
                          ax=ax, zorder=4)
            for k, r in enumerate(REGIMES):  # Student-t 95% intervals, as in every table (not bootstrap)
                m, h, n = mean_ci(groups[who][r])
                if n >= 2 and np.isfinite(h):
                    ax.errorbar(k, m, yerr=h, color="black", capsize=3, lw=1)
            lo, hi = sub.accuracy.min(), sub.accuracy.max()
            pad = max(0.02, (hi - lo) * 0.6)
            ax.set_ylim(max(0, lo - pad), min(1, hi + pad))
            for k, r in enumerate(REGIMES):
                if not groups[who][r]:
                    ax.text(k, max(0, lo - pad) + 0.1 * pad, "not run\nyet", ha="center", fontsize=7, color="#666")
        ax.set_xticks(range(len(order)), order, rotation=30, fontsize=9)
        ax.set_xlabel("teacher regime" if who != "ResNet-18 teacher" else "regime", fontsize=9)
        ax.set_title(who, fontsize=10)
        ax.set_ylabel(f"test accuracy ({DATASET_NAMES.get(main, main)})" if ax is axes[0] else "")
    fig.suptitle("Diamonds: mean over seeds; dots: seeds; whiskers: 95% Student-t interval (two seeds or more)",
                 fontsize=9)
    fig.tight_layout()
    plt.show()

# %% [markdown]
# ## Missing runs

# %% tags=["hide-input"]
if gaps:
    how = ("These runs are made on a GPU (the commands below; `scripts/device_check.sh` runs whole seeds), then "
           "brought back with `python -m kdlib import OUT/records.tar.gz`; nothing of this profile is trained by "
           "`make book` unless `TRAIN=1`." if gpu_profile else
           f"`python -m kdlib grid --profile {profile}` fills them all; each line below fills one task.")
    display(Markdown(f"**{sum(g['missing runs'] for g in gaps)} runs of {len(gaps)} tasks are missing.** {how}"))
    display(pd.DataFrame(gaps).style.hide(axis="index"))
else:
    display(Markdown("None."))
