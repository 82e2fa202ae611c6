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
import textwrap

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from IPython.display import Markdown, display
from myst_nb import glue

from kdlib.book.findings import (cell_texts, certainty_sentence, seeds_text, short_findings, student_sentences,
                                 teacher_sentence)
from kdlib.runs.plan import load_grid, resolve_dataset
from kdlib.book.names import DATASET_NAMES, MODEL_NAMES, REGIME_NAMES, regime_color
from kdlib.book.report import linked, part_header, report_links
from kdlib.book.claims import METRIC_NAMES, MIN_SEEDS, TOLERANCE, claim_summary, claims, preconditions, reference_runs, table1_runs
from kdlib.book.fill import PARTIAL_SEED_POLICY, fill_commands, fill_plan, missing_runs
from kdlib.book.remedies import random_teacher_students
from kdlib.book.rows import PAPER_REGIMES, collect, paper_tables
from kdlib.book.stats import fmt_ci, mean_ci
from kdlib.runs.store import RunStore

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
plan_rows = fill_plan(store, grid)
if gaps and strict:
    raise RuntimeError(f"{len(gaps)} tasks of profile {profile!r} have unfinished runs, e.g. {gaps[0]['task']}; "
                       f"fill them with: python -m kdlib grid --profile {profile}")
if gaps:
    n_bad = sum(not r["fillable"] for r in plan_rows)
    display(Markdown(f"**{len(plan_rows)} runs of {len(gaps)} tasks are missing** ({n_bad} of them can never be "
                     f"made, see *Missing runs*); the comparisons that need them read *not tested* or rest on fewer "
                     f"seeds. The last section lists them with the commands that fill them."))
else:
    display(Markdown(f"Every run of the `{profile}` grid is here."))

# %% [markdown]
# ## Failed runs
#
# A run is **failed**, and left out of every mean, table and verdict, when its test accuracy lies
# within 3 binomial standard errors of chance (1/C), when a training loss is not finite, or when its
# training loss is flat (the last epoch's loss at least 98% of the first's). The rule is
# `kdlib.runs.health.run_health`; it is applied to every run as it is read. (The smoke profiles, whose
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
#
# The **headline** (the first column, and the front page) is the Holm-adjusted verdict, and only
# when every comparison of the claim rests on at least {glue:text}`min_seeds` seeds; with fewer it
# never says *reproduced* or *contradicted*, only how many seeds there are and which way the point
# estimates lean. With two seeds an interval is a t(1) interval: its half-width is 12.7 times half
# the difference between the two seeds' values, so only an effect far larger than its seed-to-seed
# spread excludes zero; one seed has no interval at all.

# %% tags=["hide-input"]
results = pd.DataFrame(claims(rows, main, mnist))
summary = claim_summary(results.to_dict("records"))
glue("min_seeds", str(MIN_SEEDS), display=False)
for cid, s in summary.items():
    glue(f"verdict_{cid}", s["headline"], display=False)
    glue(f"raw_{cid}", s["verdict"], display=False)
    glue(f"holm_{cid}", s["verdict_holm"], display=False)
    glue(f"seeds_{cid}", s["seeds"], display=False)
    glue(f"lean_{cid}", f"{s['agree']} of {s['measured']}" if s["measured"] else "-", display=False)
glue("n_seeds", str(int(df.seed.nunique()) if len(df) else 0), display=False)
glue("n_runs", str(len(df)), display=False)
table = pd.DataFrame([{"claim": cid, "statement": s["statement"], "paper": s["source"], "headline": s["headline"],
                       "seeds": s["seeds"], "Holm-adjusted": s["verdict_holm"], "raw": s["verdict"],
                       "comparisons (raw)": ", ".join(f"{n} {v}" for v, n in s["counts"].items()),
                       "point estimates in the paper's direction": (f"{s['agree']} of {s['measured']}"
                                                                      if s["measured"] else "-")}
                      for cid, s in summary.items()])
table.style.hide(axis="index")

# %% tags=["hide-input"]
n_seeds = int(df.seed.nunique()) if len(df) else 0
tested = {c: s for c, s in summary.items() if s["measured"]}
settled = {c: s for c, s in tested.items() if s["headline"] == s["verdict_holm"]}
if not len(df):
    sentence = "No run of this profile is finished yet, so no claim is tested."
else:
    lo, hi = min((s["seeds_min"] for s in tested.values()), default=0), max((s["seeds_max"] for s in tested.values()),
                                                                             default=0)
    sentence = (f"{len(tested)} of {len(summary)} claims are measured, on {seeds_text([lo, hi])} per comparison; "
                + (f"{len(settled)} rest on {MIN_SEEDS} or more seeds everywhere ("
                   + "; ".join(f"{c} {s['headline']}" for c, s in settled.items()) + ")" if settled else
                   f"none rests on {MIN_SEEDS} seeds everywhere, so none is decided")
                + (f"; not measured: {', '.join(c for c in summary if c not in tested)}." if len(tested) < len(summary)
                   else "."))
glue("summary_sentence", sentence, display=False)
display(Markdown(sentence))
# what the data show, for the front page: the teachers, the students by teacher regime, how sure
findings = " ".join([teacher_sentence(rows, main), *student_sentences(rows, main)]) if len(df) else sentence
glue("findings", findings, display=False)
glue("certainty", certainty_sentence(summary, MIN_SEEDS), display=False)
# the front page's table of Table 1's cells (mean accuracy and seeds) and the line under it
for key, text in cell_texts(rows, main).items():
    glue(f"cell_{key}", text, display=False)
glue("short_findings", short_findings(rows, main) if len(df) else sentence, display=False)
glue("certainty_short", certainty_sentence(summary, MIN_SEEDS, explain=False), display=False)
glue("seed_list", ", ".join(map(str, sorted(df.seed.unique()))) if len(df) else "none", display=False)

# %% [markdown]
# ### Every comparison
#
# The paired difference a − b over seeds (mean, 95% interval, the per-seed values), the two-sided
# paired t-test's p-value and its Holm adjustment within the claim. Rows marked *suppl.* answer a
# question the claim raises here and take no part in its verdict: the Cutout, Mixup and CutMix
# teachers ran on top of flip+crop, so C1 also shows what each mixer adds to the flip+crop teacher
# (a Holm family of their own).

# %% tags=["hide-input"]
def _num(x, fmt="{:+.3f}"):
    return "-" if x is None or (isinstance(x, float) and not np.isfinite(x)) else fmt.format(x)


detail = pd.DataFrame([{
    "claim": r["claim"] + (" (suppl.)" if r["supplementary"] else ""), "comparison (a − b)": r["comparison"],
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
    # rows per panel, a wrapped label counting for its lines
    lines_of = {m: sum(1 + len(f"{r.claim}: {r.comparison} (NN seeds)") // 58 for r in shown[shown.metric == m]
                       .itertuples()) for m in metrics_shown}
    sizes = [lines_of[m] for m in metrics_shown]
    fig, axes = plt.subplots(len(metrics_shown), 1, figsize=(9.0, 0.24 * sum(sizes) + 0.75 * len(sizes) + 1.0),
                             gridspec_kw={"height_ratios": [n + 1.2 for n in sizes]}, squeeze=False)
    clipped_any = False
    for ax, metric in zip(axes[:, 0], metrics_shown):
        part_ = shown[shown.metric == metric].reset_index(drop=True)
        y = np.arange(len(part_))[::-1]
        # the axis spans the seeds' values and means; an interval that runs past it ends in an arrow, never silently
        vals = np.concatenate([np.abs(np.asarray(v, float)) for v in part_.per_seed] + [np.abs(part_["mean"].values)])
        span = 1.3 * max(1e-4, float(np.nanmax(vals)))
        for yi, r in zip(y, part_.itertuples()):
            c = colors.get(r.verdict_holm, "#6c757d")
            if np.isfinite(r.low) and np.isfinite(r.high):
                lo, hi = sorted((r.sign * r.low, r.sign * r.high))
                ax.plot([max(lo, -span), min(hi, span)], [yi, yi], color=c, lw=2)
                for end, edge, mark in ((lo, -span, "<"), (hi, span, ">")):
                    if abs(end) > span and np.sign(end) == np.sign(edge):
                        ax.plot([edge], [yi], marker=mark, color=c, markersize=7, clip_on=False)
                        clipped_any = True
            ax.scatter([r.sign * v for v in r.per_seed], [yi] * len(r.per_seed), s=12, color="black", zorder=5,
                       marker="|" if len(r.per_seed) > 1 else "o")
            ax.scatter([r.sign * r.mean], [yi], s=42, color=c, edgecolor="black", zorder=4,
                       alpha=0.85 if r.n > 1 else 0.4)
        ax.axvline(0, color="black", lw=0.8)
        # one seed has no interval at all: the row says so (a bare dot would look tight)
        # long labels (the difference-in-differences of C4, C5) wrap, so that the plot keeps its width
        ax.set_yticks(y, [textwrap.fill(f"{r.claim}{' suppl.' if r.supplementary else ''}: {r.comparison} "
                                        f"({'1 seed, no interval' if r.n == 1 else f'{r.n} seeds'})", 58)
                          for r in part_.itertuples()], fontsize=8)
        ax.set_xlim(-span, span)
        ax.set_ylim(-0.7, len(part_) - 0.3)
        ax.set_xlabel(f"Δ {METRIC_NAMES.get(metric, metric)}, signed: > 0 is the paper's direction →", fontsize=8)
        ax.tick_params(axis="x", labelsize=8)
    handles = [plt.Line2D([], [], marker="o", ls="", color=c, markeredgecolor="black", label=f"{v} (Holm)")
               for v, c in colors.items() if v in set(shown.verdict_holm)]
    handles.append(plt.Line2D([], [], marker="|", ls="", color="black", markersize=8, label="one seed's value"))
    if clipped_any:
        handles.append(plt.Line2D([], [], marker=">", ls="", color="#6c757d", label="interval runs past the axis"))
    fig.legend(handles=handles, fontsize=8, loc="upper center", ncol=3, frameon=False)
    fig.tight_layout(rect=(0, 0, 1, 1 - 0.5 / fig.get_figheight()))
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
cells = table1_runs(rows, main)


def table1(who):
    lines = []
    for r in PAPER_REGIMES:
        sel = pd.DataFrame(cells[who][r])
        p = paper["table1"][who][r]
        lines.append({"teacher regime": REGIME_NAMES[r], "seeds": len(sel),
                      "accuracy": linked(fmt_ci(sel.accuracy), sel, links) if len(sel) else "-",
                      "accuracy (paper)": f"{p['accuracy']:.3f}",
                      "ECE": fmt_ci(sel.ece) if len(sel) else "-", "ECE (paper)": f"{p['ece']:.3f}",
                      "KL human": fmt_ci(sel.kl_to_human) if len(sel) else "-", "KL human (paper)": f"{p['kld']:.3f}"})
    return pd.DataFrame(lines)


t1 = {who: table1(who) for who in ("teacher", "lenet", "alexnet")}
for r in PAPER_REGIMES:
    glue(f"teacher_acc_{r}", fmt_ci(x["accuracy"] for x in cells["teacher"][r]) if cells["teacher"][r] else "-",
         display=False)
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
random_rows, random_profile = random_teacher_students(store, grid, main)
ref = []
for cell in reference_runs(rows, main):
    sel, dist = pd.DataFrame(cell["alone"]), pd.DataFrame(cell["distilled"])
    rnd = [r["accuracy"] for r in random_rows if r["model"] == cell["model"]] if cell["regime"] == "none" else []
    ref.append({"student": MODEL_NAMES[cell["model"]], "student regime": REGIME_NAMES[cell["regime"]],
                "seeds (alone, distilled)": f"{len(sel)}, {len(dist)}",
                "alone (α = 0)": linked(fmt_ci(sel.accuracy), sel, links) if len(sel) else "-",
                "distilled from the plain ResNet-18 teacher": (linked(fmt_ci(dist.accuracy), dist, links)
                                                               if len(dist) else "-"),
                "from a random-weight ResNet-18 (E13)": f"{fmt_ci(rnd)} ({len(rnd)} seeds)" if rnd else "-"})
if ref:
    reference = pd.DataFrame(ref)
    glue("reference_table", reference, display=False)
    display(reference.style.hide(axis="index"))
    if random_profile is None:
        display(Markdown("No profile here runs E13 (the random-weight teacher control)."))
    else:
        display(Markdown(
            f"*From a random-weight ResNet-18*: students distilled at T = 20, α = 0.5 from a ResNet-18 that keeps its "
            f"seeded initial weights (E13, profile `{random_profile}`"
            + ("" if random_profile == profile else ", its committed records") + "): the KD loss with a teacher "
            f"that knows nothing. A student that beats the α = 0 one but not this one learned from the loss, not "
            f"from the teacher; failed runs are left out (the extensions chapter lists them)."))
else:
    display(Markdown("No α = 0 student is finished yet: distillation cannot be judged against training alone."))

# %% tags=["hide-input"]
groups = {"ResNet-18 teacher": {r: [x["accuracy"] for x in cells["teacher"][r]] for r in PAPER_REGIMES},
          "LeNet student": {r: [x["accuracy"] for x in cells["lenet"][r]] for r in PAPER_REGIMES},
          "AlexNet student": {r: [x["accuracy"] for x in cells["alexnet"][r]] for r in PAPER_REGIMES}}


def trend(values):
    base = np.mean(values["none"]) if values["none"] else math.nan
    better = [r for r in PAPER_REGIMES[1:] if values[r] and np.mean(values[r]) > base]
    worse = [r for r in PAPER_REGIMES[1:] if values[r] and np.mean(values[r]) <= base]
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
    fig, axes = plt.subplots(1, 3, figsize=(10, 3.6))
    order = [REGIME_NAMES[r] for r in PAPER_REGIMES]
    clipped_any = False
    for ax, who in zip(axes, groups):
        values = [v for r in PAPER_REGIMES for v in groups[who][r]]
        if values:
            # the axis spans the seeds' values; a Student-t whisker that runs past it (two seeds: 12.7 x half their
            # difference) ends in an arrow at the edge instead of leaving the figure
            lo, hi = min(values), max(values)
            pad = max(0.02, (hi - lo) * 0.6)
            y0, y1 = max(0, lo - pad), min(1, hi + pad)
            ax.set_ylim(y0, y1)
            for k, r in enumerate(PAPER_REGIMES):
                v = groups[who][r]
                if not v:
                    ax.text(k, y0 + 0.1 * pad, "not run\nyet", ha="center", fontsize=7, color="#666")
                    continue
                m, h, n = mean_ci(v)
                # seeds left of the mean, so that no dot hides under its diamond
                ax.scatter(k - 0.16 + 0.06 * (np.arange(n) - (n - 1) / 2), v, s=14, color="black", zorder=4)
                ax.scatter([k + 0.1], [m], marker="D", s=55, color=regime_color(r), edgecolor="black", zorder=3)
                if n >= 2 and np.isfinite(h):
                    a, b = max(m - h, y0), min(m + h, y1)
                    ax.plot([k + 0.1, k + 0.1], [a, b], color="black", lw=1, zorder=2)
                    for end, edge, mark in ((m - h, y0, "v"), (m + h, y1, "^")):
                        if (end < y0 and edge == y0) or (end > y1 and edge == y1):
                            ax.plot([k + 0.1], [edge], marker=mark, color="black", markersize=5, clip_on=False)
                            clipped_any = True
                        else:
                            ax.plot([k + 0.05, k + 0.15], [end, end], color="black", lw=1)
                ax.text(k, y0, f"{n} seed{'s' if n != 1 else ''}", ha="center", va="bottom", fontsize=7,
                        color="#444")
        ax.set_xticks(range(len(order)), order, rotation=30, ha="right", fontsize=8)
        ax.set_xlabel("teacher regime" if who != "ResNet-18 teacher" else "regime", fontsize=9)
        ax.set_title(who, fontsize=10)
        ax.set_ylabel(f"test accuracy ({DATASET_NAMES.get(main, main)})" if ax is axes[0] else "")
    fig.suptitle("Diamonds: mean over seeds; dots: seeds; whiskers: 95% Student-t interval (two seeds or more)"
                 + ("; arrows: the interval runs past the axis" if clipped_any else ""), fontsize=9)
    fig.tight_layout()
    plt.show()

# %% [markdown]
# ## Missing runs

# %% tags=["hide-input"]
if gaps:
    done_seeds = sorted({r["seed"] for r in rows})
    bad = [r for r in plan_rows if not r["fillable"]]
    commands = fill_commands(plan_rows, profile, gpu_profile)
    how = ("These runs are made on a GPU (`scripts/device_check.sh` runs the commands below in slices of at most "
           "ten minutes: each slice packs whole seeds of E1 + E2 first, then E4, E5 and E3), then brought back "
           "with `python -m kdlib import OUT/records.tar.gz`; nothing of this profile is trained by `make book` "
           "unless `TRAIN=1`." if gpu_profile else
           f"`make book` trains them on this machine; the commands below train them without the book.")
    display(Markdown(f"**{len(plan_rows)} runs of {len(gaps)} tasks are missing.** {how}"))
    display(pd.DataFrame([{"seeds": ", ".join(map(str, c["seeds"])), "runs it makes": len(c["ids"]),
                           "command": f"`{c['command']}`"} for c in commands]).style.hide(axis="index"))
    if bad:
        seeds_bad = sorted({r["seed"] for r in bad})
        new_seeds = [x for x in grid["profiles"][profile]["seeds"] if x not in done_seeds]
        display(Markdown(
            f"**{len(bad)} runs can never be made** (seed{'s' if len(seeds_bad) > 1 else ''} "
            f"{', '.join(map(str, seeds_bad))}): {bad[0]['why']}. {PARTIAL_SEED_POLICY}"
            + (f" The new seeds {', '.join(map(str, new_seeds))} in the commands above complete these cells."
               if new_seeds else "")))
    detail = pd.DataFrame(gaps).drop(columns=["command"])
    display(Markdown("Per task:"))
    display(detail.style.hide(axis="index"))
else:
    display(Markdown("None."))
