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
# # Beyond the paper: when does an augmented teacher make a worse student?
#
# The paper explains its result with pictures of latent spaces; these experiments test explanations.
# Each is planned in `grid.yaml` (E6–E13) and run by the same pipeline as the paper's:
#
# | | question | experiment |
# |---|---|---|
# | E6 | Does the dichotomy depend on training the Cutout, Mixup and CutMix teachers **without flip+crop**, as the paper apparently did? | paper-literal teachers and their students |
# | E7 | Does the penalty of a mixed-sample teacher **shrink at low temperature**, as the label-smoothing literature predicts (Müller et al. 2019; Chandrasegaran et al. 2022)? | students of every teacher at T ∈ {1, 2, 4, 8, 20} |
# | E8 | **Where does augmentation belong**: in the teacher, in the student's distillation inputs, or both (function matching, Beyer et al. 2022)? | 5 × 5 cross, LeNet students, teacher queried online on the student's own augmented batch |
# | E9 | Is a **softer teacher without augmentation** (label smoothing, ε = 0.1) enough to move the student? | label-smoothing teacher |
# | E10 | Is it the teacher's **calibration**? | students of every teacher after post-hoc temperature scaling |
# | E11 | Is it the teacher's **accuracy**? | augmented teachers stopped early at the plain teacher's accuracy |
# | E12 | **What to do** with a Mixup or CutMix teacher: does logit-standardised KD (Sun et al. 2024) or a lower T (chosen on held-out data) recover the penalty? | students of the plain, Mixup and CutMix teachers with standardised logits; E7's students |
# | E13 | Does the student learn **from the teacher**, or from the KD loss alone? | a random-weight teacher (never trained) as the control of every "distillation helps" comparison |
#
# Every comparison pairs runs of one seed (same batch stream) and gives the mean difference with its
# 95% Student-t interval over seeds. *Holds*: the interval excludes zero in the stated direction;
# *reversed*: it excludes zero the other way; *inconclusive*: it contains zero (or one seed only).
# Students are those of the paper (α = 0.5; T = 20 unless the section varies it).

# %% tags=["parameters", "hide-input"]
profile = "quick"
runs = None
part = "II"

# %% tags=["hide-input"]
import math

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from IPython.display import Markdown, display
from myst_nb import glue

from kdlib.blocks.calibration import temperature_scaling_report
from kdlib.book.extensions import MIXERS, contrast, difference, penalty, students, teacher_spec, teachers
from kdlib.runs.plan import experiment_names, extension_experiments, load_grid, resolve_dataset
from kdlib.book.names import MIXER_NAMES, MODEL_NAMES, REGIME_NAMES, regime_color
from kdlib.book.report import part_header
from kdlib.book.fill import PARTIAL_SEED_POLICY, fill_command, fill_commands, fill_plan
from kdlib.blocks.predictors import logit_std
from kdlib.book.remedies import no_teacher_students, random_teacher_rows, remedy_advice, remedy_rows
from kdlib.book.rows import PAPER_REGIMES, collect, load_predictions, paper_tables
from kdlib.book.stats import fmt_ci, verdict
from kdlib.runs.store import RunStore

grid = load_grid()
EXT = extension_experiments(grid)
asked = profile
store = RunStore(runs, profile)
if not set(EXT) & set(experiment_names(profile, grid)) and f"{profile}-ext" in grid["profiles"]:
    # a profile without the extensions (quick: make book stays within 15 minutes) shows its -ext sibling's
    # committed records, when results/ holds them
    sibling = RunStore(runs, f"{profile}-ext")
    if sibling.results is not None and (sibling.results / sibling.profile).is_dir():
        store, profile = sibling, sibling.profile
main = resolve_dataset(grid, profile, "main")["name"]
rows = [r for r in collect(store, grid, extensions=True) if r["dataset"] == main]
display(Markdown(part_header(part, profile, rows, main)))
if profile != asked:
    display(Markdown(f"The `{asked}` profile of this part runs only the paper's experiments (so that `make book` "
                     f"stays within 15 minutes on 2 cores). This chapter shows the **committed records of the "
                     f"`{profile}` profile** (`results/{profile}/`: the same data, models and recipes, with E6–E13), "
                     f"trained on the machine and at the commit their provenance names (each run report's provenance "
                     f"table). `make book PROFILE={profile}` builds this part from them and trains only what they lack; "
                     f"`python -m kdlib grid --profile {profile} --ignore-results` retrains every run here."))
planned = [e for e in EXT if e in experiment_names(profile, grid)]
gpu_profile = profile == "paper"
if not planned:
    display(Markdown(
        f"**The `{profile}` profile runs only the paper's experiments** (it keeps `make book` within 15 minutes "
        f"on 2 cores), so the sections below are empty. `make book PROFILE={profile}-ext` builds this part with "
        f"the extensions: it reads this profile's finished runs and trains only E6–E13 "
        f"(`python -m kdlib grid --profile {profile}-ext --only {' '.join(EXT)}` trains them without the book)."
        if f"{profile}-ext" in grid["profiles"] else
        f"**The `{profile}` profile runs none of the extension experiments {EXT}.**"))
fills = {e: fill_plan(store, grid, experiments=[e]) for e in planned}
if planned and gpu_profile and any(fills.values()):
    display(Markdown("On a GPU: a student on clean input needs its teacher's weights or its training-set logits; the "
                     "committed teacher records made before 2026-12-03 keep neither, so `device-run` makes the "
                     "extension students of those seeds only where it trains their teachers again, which it never "
                     "does for a recorded teacher (another realisation). New seeds complete these experiments; the "
                     "teacher records made since carry their training-set logits, so their clean-input students can "
                     "be distilled later on any machine. " + PARTIAL_SEED_POLICY))


def show_missing(experiment):
    rows_ = fills.get(experiment) or []
    if not rows_:
        return
    bad = [r for r in rows_ if not r["fillable"]]
    commands = fill_commands(rows_, profile, gpu_profile)
    text = (f"*{len(rows_)} runs of {experiment} are missing* (e.g. of `{rows_[0]['task']}`); the comparisons that "
            f"need them read *not tested*.")
    if commands:
        text += " Fill them with " + "; ".join(f"`{c['command']}` ({len(c['ids'])} runs, seeds "
                                               f"{', '.join(map(str, c['seeds']))})" for c in commands) + "."
    if bad:
        text += (f" {len(bad)} of them (seed {', '.join(map(str, sorted({r['seed'] for r in bad})))}) can never be "
                 f"made: {bad[0]['why']}.")
    display(Markdown(text))


def ci_text(d, fmt="{:+.3f}"):
    if d["n"] == 0:
        return "-"
    if math.isinf(d["high"]) or math.isnan(d["high"]):
        return fmt.format(d["mean"]) + f" (1 seed)"
    return fmt.format(d["mean"]) + f" [{fmt.format(d['low'])}, {fmt.format(d['high'])}] ({d['n']} seeds)"


def says(d, direction):
    v = verdict(d, direction)
    return {"reproduced": "holds", "contradicted": "reversed"}.get(v, v)


summary = []


def claim(experiment, text, diff, direction):
    """One line of the summary: the comparison, its interval and verdict (direction +1: diff > 0 claimed)."""
    summary.append({"experiment": experiment, "claim": text, "difference [95% CI]": ci_text(diff),
                    "verdict": says(diff, direction)})


def show_table(caption, table):
    display(Markdown(caption))
    display(pd.DataFrame(table).style.hide(axis="index"))


MODELS = [m for m in ("lenet", "alexnet") if any(r["model"] == m for r in rows)] or ["lenet", "alexnet"]

# %% [markdown]
# ## E6 · Paper-literal teachers: Cutout, Mixup and CutMix without flip+crop
#
# The paper's Cutout (0.880) and Mixup (0.868) teachers sit far below its flip+crop teacher (0.940),
# which points to their training without flip+crop (the flags of its public code). Our E1 teachers
# stack every mixer on flip+crop. Here the same mixers are trained alone. For each, the table gives the
# teacher's accuracy in both forms and the **penalty**: its student's accuracy minus the plain teacher's
# student's (negative: the augmented teacher makes the worse student, the paper's claim for Mixup and
# CutMix).

# %% tags=["hide-input"]
if "E6" in planned:
    show_missing("E6")
    table = []
    for m in MIXERS:
        t_with, t_lit = teachers(rows, teacher_spec(m)), teachers(rows, teacher_spec(m, literal=True))
        for model in MODELS:
            with_fc = penalty(rows, model, teacher_spec(m))
            literal = penalty(rows, model, teacher_spec(m, literal=True))
            change = difference(students(rows, model, m), students(rows, model, teacher_spec(m)))
            table.append({"mixer": MIXER_NAMES[m], "student": MODEL_NAMES[model],
                          "teacher acc. (with flip+crop)": fmt_ci([r["accuracy"] for r in t_with]),
                          "teacher acc. (alone)": fmt_ci([r["accuracy"] for r in t_lit]),
                          "penalty, with flip+crop": ci_text(with_fc), "penalty, alone": ci_text(literal),
                          "alone − with": ci_text(change)})
            if m in ("mixup", "cutmix"):
                claim("E6", f"the {MIXER_NAMES[m]} teacher alone (no flip+crop) makes a worse {MODEL_NAMES[model]} "
                      f"student than the plain teacher", literal, -1)
    display(pd.DataFrame(table).style.hide(axis="index"))

# %% [markdown]
# ## E7 · Temperature: does the penalty shrink when the teacher's targets are sharper?
#
# Students of every E1 teacher at T ∈ {1, 2, 4, 8, 20}, from the cached teacher logits (clean inputs).
# Mixed-sample training, like label smoothing, erases information about class similarity from a
# teacher's logits; at high T the student is asked to copy exactly that information, so the penalty
# should be largest at T = 20 and shrink at T = 1.

# %% tags=["hide-input"]
TEMPS = [1.0, 2.0, 4.0, 8.0, 20.0]
if "E7" in planned:
    show_missing("E7")
    fig, axes = plt.subplots(1, len(MODELS), figsize=(5.2 * len(MODELS), 3.8), constrained_layout=True,
                             squeeze=False)
    for ax, model in zip(axes[0], MODELS):
        for regime in PAPER_REGIMES:
            per = {t: [r["accuracy"] for r in students(rows, model, teacher_spec(regime), temperature=t)]
                   for t in TEMPS}
            ts = [t for t in TEMPS if per[t]]
            if not ts:
                continue
            ax.plot(ts, [np.mean(per[t]) for t in ts], marker="o", color=regime_color(regime),
                    label=REGIME_NAMES[regime])
            ax.fill_between(ts, [min(per[t]) for t in ts], [max(per[t]) for t in ts], color=regime_color(regime),
                            alpha=0.15, linewidth=0)
        ax.set_xscale("log", base=2)
        ax.set_xticks(TEMPS, [f"{t:g}" for t in TEMPS])
        ax.set_xlabel("distillation temperature T")
        ax.set_ylabel(f"{MODEL_NAMES[model]} test accuracy")
        ax.set_title(f"{MODEL_NAMES[model]} students by teacher regime", fontsize=10)
    axes[0, -1].legend(title="teacher", fontsize=8, frameon=False, loc="best")
    plt.show()
    display(Markdown("*Figure: mean test accuracy over seeds (line) and the range of the seeds (band) of "
                     "students distilled at each temperature, by the regime of their teacher.*"))
    table = []
    for model in MODELS:
        for m in ["flipcrop"] + MIXERS:
            row = {"student": MODEL_NAMES[model], "teacher": REGIME_NAMES[m]}
            for t in TEMPS:
                row[f"T={t:g}"] = ci_text(penalty(rows, model, teacher_spec(m), temperature=t))
            shrink = contrast(penalty(rows, model, teacher_spec(m), temperature=1.0),
                              penalty(rows, model, teacher_spec(m), temperature=20.0))
            row["T=1 minus T=20"] = ci_text(shrink)
            table.append(row)
            if m in ("mixup", "cutmix"):
                claim("E7", f"the {REGIME_NAMES[m]} teacher's {MODEL_NAMES[model]} "
                      f"penalty is smaller at T = 1 than at T = 20", shrink, +1)
    show_table("Penalty of each augmented teacher (its student − the plain teacher's student, same T), "
               "and how it changes from T = 20 to T = 1 (positive: the penalty shrinks at T = 1).", table)

# %% [markdown]
# ## E8 · Where augmentation belongs: the teacher's regime × the student's inputs
#
# LeNet students of every E1 teacher, each trained on inputs of every regime; the teacher is queried
# online on exactly the student's augmented batch, so teacher and student always see the same image
# (function matching). The diagonal is the paper's Table 8, the first row its Table 7 (CIFAR-10 values
# beside ours in Part I only).

# %% tags=["hide-input"]
if "E8" in planned:
    show_missing("E8")
    model = "lenet"
    mean = np.full((5, 5), np.nan)
    text = [["" for _ in PAPER_REGIMES] for _ in PAPER_REGIMES]
    for i, tr in enumerate(PAPER_REGIMES):
        for j, sr in enumerate(PAPER_REGIMES):
            acc = [r["accuracy"] for r in students(rows, model, teacher_spec(tr), regime=teacher_spec(sr))]
            if acc:
                mean[i, j] = np.mean(acc)
                text[i][j] = fmt_ci(acc)
    if np.isfinite(mean).any():
        fig, ax = plt.subplots(figsize=(7.6, 5.2), constrained_layout=True)
        im = ax.imshow(mean, cmap="viridis")
        for i in range(5):
            for j in range(5):
                if text[i][j]:
                    ax.text(j, i, text[i][j].replace(" ± ", "\n± "), ha="center", va="center", fontsize=8,
                            color="white" if mean[i, j] < np.nanmean(mean) else "black")
        names = [REGIME_NAMES[r] for r in PAPER_REGIMES]
        ax.set_xticks(range(5), names, rotation=20)
        ax.set_yticks(range(5), names)
        ax.set_xlabel("regime of the student's distillation inputs")
        ax.set_ylabel("regime the teacher was trained with")
        fig.colorbar(im, ax=ax, label="LeNet test accuracy (mean over seeds)")
        plt.show()
        display(Markdown("*Figure: LeNet test accuracy, mean ± 95% half-width over seeds, for each teacher "
                         "regime (rows) and distillation-input regime (columns).*"))
        if main == "cifar10":  # the paper's one-seed CIFAR-10 values of these cells (Tables 7 and 8, accuracy)
            paper = paper_tables()
            display(Markdown("The paper's LeNet accuracy (one seed): plain teacher, student inputs of each regime "
                             "(Table 7): " + ", ".join(f"{REGIME_NAMES[r]} {paper['table7']['lenet'][r]['cifar10'][0]:.3f}"
                                                       for r in PAPER_REGIMES)
                             + "; teacher and student inputs of the same regime (Table 8): "
                             + ", ".join(f"{REGIME_NAMES[r]} {paper['table8']['lenet'][r]['cifar10'][0]:.3f}"
                                         for r in PAPER_REGIMES) + "."))
        table = []
        for m in ["flipcrop"] + MIXERS:
            t_only = students(rows, model, teacher_spec(m), regime="none")
            s_only = students(rows, model, "none", regime=teacher_spec(m))
            both = students(rows, model, teacher_spec(m), regime=teacher_spec(m))
            d_ts, d_bt = difference(t_only, s_only), difference(both, t_only)
            table.append({"regime": REGIME_NAMES[m], "teacher only": fmt_ci([r["accuracy"] for r in t_only]),
                          "student inputs only": fmt_ci([r["accuracy"] for r in s_only]),
                          "both": fmt_ci([r["accuracy"] for r in both]),
                          "teacher only − student only": ci_text(d_ts), "both − teacher only": ci_text(d_bt)})
            claim("E8", f"{REGIME_NAMES[m]}: augmenting the teacher beats "
                  f"augmenting the LeNet student's inputs", d_ts, +1)
        display(pd.DataFrame(table).style.hide(axis="index"))

# %% [markdown]
# ## E9 · A softer teacher without augmentation: label smoothing (ε = 0.1)
#
# Label smoothing makes a teacher less confident and, by Müller et al. (2019), erases the information
# about class similarity that distillation transmits. If the mixed-sample penalty comes from soft,
# information-poor targets, the label-smoothing teacher should carry a penalty too, without any
# augmentation.

# %% tags=["hide-input"]
if "E9" in planned:
    show_missing("E9")
    plain_t, ls_t = teachers(rows, "none"), teachers(rows, "none", label_smoothing=0.1)
    table = [{"teacher": name, "seeds": len(ts), "accuracy": fmt_ci([r["accuracy"] for r in ts]),
              "ECE": fmt_ci([r["ece"] for r in ts]), "NLL": fmt_ci([r["nll"] for r in ts])}
             for name, ts in (("plain", plain_t), ("label smoothing 0.1", ls_t))]
    display(pd.DataFrame(table).style.hide(axis="index"))
    table = []
    for model in MODELS:
        d = difference(students(rows, model, "none", label_smoothing=0.1), students(rows, model, "none"))
        mix = penalty(rows, model, teacher_spec("mixup"))
        table.append({"student": MODEL_NAMES[model], "label-smoothing teacher − plain teacher": ci_text(d),
                      "Mixup teacher − plain teacher (E2)": ci_text(mix)})
        claim("E9", f"a label-smoothing teacher makes a worse {MODEL_NAMES[model]} "
              f"student than the plain teacher", d, -1)
    show_table("Students' accuracy, paired by seed:", table)

# %% [markdown]
# ## E10 · Calibration: students of temperature-scaled teachers
#
# Each E1 teacher's logits are divided by the one temperature that minimises its NLL on half of the
# test set (images of even index; `kdlib.blocks.calibration`), then distilled as before (T = 20). Scaling never
# changes the teacher's predictions, only its confidence. The teacher's ECE before and after is
# measured on the other half. If calibration is what moves the student, scaling should close the gap
# between the students of augmented and plain teachers. (The scale is one number fitted on test labels;
# the students are still evaluated on the whole test set.)

# %% tags=["hide-input"]
if "E10" in planned:
    show_missing("E10")
    table = []
    for regime in PAPER_REGIMES:
        for t in teachers(rows, teacher_spec(regime)):
            pred = load_predictions(store, t["id"])
            if "test_logits" not in pred:
                continue
            rep = temperature_scaling_report(pred["test_logits"], pred["test_labels"], pred["test_indices"])
            table.append({"teacher": REGIME_NAMES[regime], "seed": t["seed"], "fitted scale": f"{rep['temperature']:.2f}",
                          "ECE before": f"{rep['ece_before']:.3f}", "ECE after": f"{rep['ece_after']:.3f}",
                          "NLL before": f"{rep['nll_before']:.3f}", "NLL after": f"{rep['nll_after']:.3f}"})
    if table:
        show_table("Teachers, on the held-out half (odd test indices):", table)
    table = []
    for model in MODELS:
        for m in ["none", "flipcrop"] + MIXERS:
            scaled = students(rows, model, teacher_spec(m), calibration="temperature")
            effect = difference(scaled, students(rows, model, teacher_spec(m)))
            after = penalty(rows, model, teacher_spec(m), calibration="temperature") if m != "none" else None
            before = penalty(rows, model, teacher_spec(m)) if m != "none" else None
            table.append({"student": MODEL_NAMES[model], "teacher": REGIME_NAMES[m],
                          "scaled − unscaled teacher's student": ci_text(effect),
                          "penalty before scaling": ci_text(before) if before else "",
                          "penalty after scaling": ci_text(after) if after else ""})
            if m in ("mixup", "cutmix"):
                change = contrast(after, before)
                claim("E10", f"temperature scaling shrinks the {REGIME_NAMES[m]} "
                      f"teacher's {MODEL_NAMES[model]} penalty", change, +1)
    show_table("Students' accuracy, paired by seed (penalty: the augmented teacher's student − the plain "
               "teacher's student, both teachers scaled or both not):", table)

# %% [markdown]
# ## E11 · Accuracy: augmented teachers stopped at the plain teacher's accuracy
#
# Each augmented E1 teacher is trained again with its own schedule but stopped at the first epoch its
# accuracy on the held-out half of the test set (even indices) reaches the plain teacher's on the same
# images (`kdlib.runs.pipeline`; a teacher that never reaches it trains to the end and is flagged). Its
# students are then distilled as in E2. If the augmented teachers' students differ from the plain
# teacher's only because their teachers are more accurate, the difference vanishes here.

# %% tags=["hide-input"]
if "E11" in planned:
    show_missing("E11")
    table = []
    teacher_runs = {r.id: r for r in store.runs("teacher")}
    for m in ["flipcrop"] + MIXERS:
        for t in teachers(rows, teacher_spec(m), matched=True):
            match = teacher_runs[t["id"]].read_json("metrics.json").get("accuracy_match", {})
            full = teachers(rows, teacher_spec(m))
            table.append({"teacher": REGIME_NAMES[m], "seed": t["seed"],
                          "stopped at epoch": f"{match.get('stopped_at_epoch', '?')}",
                          "held-out accuracy": f"{match.get('heldout_accuracy', math.nan):.3f}",
                          "plain teacher's": f"{match.get('target', math.nan):.3f}",
                          "reached": "yes" if match.get("reached") else "no (trained to the end)",
                          "test accuracy": f"{t['accuracy']:.3f}",
                          "fully trained": fmt_ci([r["accuracy"] for r in full if r["seed"] == t["seed"]])})
    if table:
        show_table("Teachers stopped early (test accuracy on the whole test set):", table)
    table = []
    for model in MODELS:
        for m in ["flipcrop"] + MIXERS:
            matched = students(rows, model, teacher_spec(m), matched=True)
            d_matched = difference(matched, students(rows, model, "none"))
            d_full = penalty(rows, model, teacher_spec(m))
            table.append({"student": MODEL_NAMES[model], "teacher": REGIME_NAMES[m],
                          "penalty, fully trained teacher": ci_text(d_full),
                          "penalty, accuracy-matched teacher": ci_text(d_matched)})
            if m in ("mixup", "cutmix"):
                claim("E11", f"the {REGIME_NAMES[m]} teacher, stopped at the plain "
                      f"teacher's accuracy, still makes a worse {MODEL_NAMES[model]} student", d_matched, -1)
    show_table("Penalty: the augmented teacher's student − the plain teacher's student, paired by seed:", table)

# %% [markdown]
# ## E12 · Remedies: what to do with a Mixup or CutMix teacher
#
# A practitioner who already has a mixed-sample teacher can change how it is distilled. Two remedies, each
# against standard KD at T = 20 for the same teacher and seed:
#
# - **Logit-standardised KD** (Sun et al., CVPR 2024; Choi et al., WACV 2023 rescale logits in the same spirit):
#   teacher and student logits are z-scored per image before the softmax, so the student copies the shape of the
#   teacher's logits and not their (for a mixer teacher, small) scale. Their base temperature, T = 2; the
#   paper's α = 0.5 (their code weights KD 9 : 1, which we leave for a later run). Runs of E12.
# - **A lower temperature**, chosen per seed among E7's T ∈ {1, 2, 4, 8, 20} on the held-out half of the test set
#   (even dataset index; ties go to the higher T). No new runs.
#
# Every accuracy in this section, standard KD's included, is measured on the **other half** (odd index, half of
# the test images): the temperature is never chosen on the images it is judged on. *Penalty*:
# the mixer teacher's student − the plain teacher's student (standard KD); *gain*: the remedy's student − standard
# KD's student of the same teacher; *left*: the remedy's student − the plain teacher's standard-KD student (≥ 0:
# the penalty is recovered in full).
# Failed runs are left out (the book's rule), so where some of a mixer teacher's students fail at T = 20
# (AlexNet here), the penalty shown is the one of the students that trained.

# %% tags=["hide-input"]
remedy_summary, remedy_results = [], []
advice = f"E12 is not planned in profile {profile}"
if "E12" in planned:
    show_missing("E12")
    table = []
    for model in MODELS:
        for m in ["none"] + [x for x in MIXERS if x in ("mixup", "cutmix")]:
            res = remedy_rows(store, rows, model, teacher_spec(m), temperatures=TEMPS)
            chosen = res["chosen"]
            table.append({"student": MODEL_NAMES[model], "teacher": REGIME_NAMES[m],
                          "penalty (T = 20)": "-" if m == "none" else ci_text(res["penalty"]),
                          "standardised: gain": ci_text(res["lsd_gain"]),
                          "standardised: left": "-" if m == "none" else ci_text(res["lsd_left"]),
                          "best T: chosen": ", ".join(f"{chosen[s]:g}" for s in sorted(chosen)) or "-",
                          "best T: gain": ci_text(res["best_t_gain"]),
                          "best T: left": "-" if m == "none" else ci_text(res["best_t_left"])})
            if m != "none" and (res["lsd_gain"]["n"] or res["best_t_gain"]["n"]):
                claim("E12", f"logit-standardised KD improves the {REGIME_NAMES[m]} teacher's "
                      f"{MODEL_NAMES[model]} student", res["lsd_gain"], +1)
                claim("E12", f"the best held-out T improves the {REGIME_NAMES[m]} teacher's "
                      f"{MODEL_NAMES[model]} student", res["best_t_gain"], +1)
                remedy_summary.append((model, m, res))
            remedy_results.append((model, m, res))
    show_table("Accuracy differences on the evaluation half (odd test indices), paired by seed; *best T: chosen* "
               "lists the temperature chosen for each seed:", table)

    def recovered(res, key):
        pen, gain = res["penalty"], res[key]
        if pen["n"] == 0 or gain["n"] == 0 or not pen["mean"] < 0:
            return None
        return gain["mean"] / -pen["mean"]

    lines = []
    for model, m, res in remedy_summary:
        parts = []
        for key, name in (("lsd_gain", "standardised logits"), ("best_t_gain", "the best held-out T")):
            share = recovered(res, key)
            if share is not None:
                parts.append(f"{name} {res[key]['mean']:+.3f} ({share:.0%} of it, {says(res[key], +1)})")
        if parts:
            lines.append(f"{MODEL_NAMES[model]} ← {REGIME_NAMES[m]}: penalty {res['penalty']['mean']:+.3f} "
                         f"({res['penalty']['n']} seeds); " + ", ".join(parts))
    if lines:
        display(Markdown("What each remedy recovers of the penalty, on the mean (the interval of each gain is in "
                         "the table; *holds* only where it excludes zero):\n\n" + "\n".join(f"- {x}" for x in lines)))
    advice = remedy_advice([(MODEL_NAMES[model], "none" if m == "none" else REGIME_NAMES[m], res)
                            for model, m, res in remedy_results])
    display(Markdown(f"**Advice from these runs** (profile `{profile}`): {advice}."))
glue("ext_advice", remedy_advice([(MODEL_NAMES[mo], "none" if m == "none" else REGIME_NAMES[m], r)
                                  for mo, m, r in remedy_results], short=True) if "E12" in planned else advice,
     display=False)

# %% [markdown]
# ## E13 · The random-teacher control: does the student learn from the teacher at all?
#
# A ResNet-18 with the initial weights of its seed (the same initialisation the plain teacher of that seed
# started from), never trained, is distilled into each student at the paper's T = 20 and α = 0.5. Its targets
# carry no knowledge of the data, so what its student gains over the α = 0 student is the KD loss's
# regularisation alone; a trained teacher's student must beat *this* baseline, not only the α = 0 one, before
# "the student learned from its teacher" holds (Mason-Williams et al. 2026 ask this of every transfer claim).

# %% tags=["hide-input"]
if "E13" in planned:
    show_missing("E13")
    rt = teachers(rows, "none", untrained=True)

    def spread(teacher_rows):
        values = [logit_std(load_predictions(store, r["id"]).get("test_logits")) for r in teacher_rows]
        values = [v for v in values if not math.isnan(v)]
        return float(np.mean(values)) if values else math.nan

    if rt:
        display(Markdown(f"The random-weight teachers: test accuracy {fmt_ci([r['accuracy'] for r in rt])} "
                         f"(chance: 0.100), {len(rt)} seeds."))
    table = []
    for model in MODELS:
        alone = no_teacher_students(rows, model)
        rnd = students(rows, model, "none", untrained=True)
        table.append({"student": MODEL_NAMES[model], "teacher": "none (α = 0)",
                      "accuracy": fmt_ci([r["accuracy"] for r in alone]), "− random-weight teacher's student": "-",
                      "− α = 0 student": "-"})
        comps = random_teacher_rows(rows, model, [teacher_spec(m) for m in PAPER_REGIMES])
        table.append({"student": MODEL_NAMES[model], "teacher": "random weights",
                      "accuracy": fmt_ci([r["accuracy"] for r in rnd]), "− random-weight teacher's student": "-",
                      "− α = 0 student": ci_text(comps[0]["diff"])})
        claim("E13", f"a random-weight teacher's {MODEL_NAMES[model]} student beats the α = 0 student (the KD "
              f"loss alone helps)",
              comps[0]["diff"], +1)
        for m in PAPER_REGIMES:
            spec = teacher_spec(m)
            vs_random = next(c["diff"] for c in comps if c["teacher"] == spec and c["comparison"].startswith("− random"))
            vs_alone = next(c["diff"] for c in comps if c["teacher"] == spec and c["comparison"].startswith("− no"))
            table.append({"student": MODEL_NAMES[model], "teacher": REGIME_NAMES[m],
                          "accuracy": fmt_ci([r["accuracy"] for r in students(rows, model, spec)]),
                          "− random-weight teacher's student": ci_text(vs_random), "− α = 0 student": ci_text(vs_alone)})
            claim("E13", f"the {REGIME_NAMES[m]} teacher's {MODEL_NAMES[model]} student beats the random-weight "
                  f"teacher's", vs_random, +1)
    show_table("Test accuracy (mean ± 95% half-width over seeds) and paired differences, whole test set:", table)
    failed = [r for r in collect(store, grid, extensions=True, include_failed=True)
              if r["failed"] and r["kind"] == "student" and r.get("teacher_untrained") and r["dataset"] == main]
    for model in MODELS:
        bad = sorted((r for r in failed if r["model"] == model), key=lambda r: r["seed"])
        if bad:
            n_all = len(bad) + len(students(rows, model, "none", untrained=True))
            accs = ", ".join(f"{r['accuracy']:.3f}" for r in bad)
            display(Markdown(
                f"**{len(bad)} of {n_all} {MODEL_NAMES[model]} students of the random-weight teacher failed** (left "
                f"out above, by the book's rule): seeds {', '.join(str(r['seed']) for r in bad)}, test accuracy "
                f"{accs}; {bad[0]['failure']}. The random teacher's logits spread by {spread(rt):.3f} (mean over "
                f"test images of their std over classes; the plain teachers': {spread(teachers(rows, 'none')):.3f}), "
                f"so at T = 20 its targets are almost uniform."))

# %% [markdown]
# ## Teacher training length: do the verdicts move with 4× longer teachers?
#
# The paper states no epoch count (its public code defaults to 218 epochs of a step schedule, see the
# methods chapter); ours train for 35 (`paper`) or 40
# (`quick`) epochs of a one-cycle schedule. The sibling profile with 4× longer teachers (`paper-long`,
# `quick-long`: same recipe otherwise, experiments E1 and E2) is compared here, seed by seed, with this
# profile's runs.

# %% tags=["hide-input"]
base_profile = profile[:-len("-ext")] if profile.endswith("-ext") else profile
long_profile = f"{base_profile}-long"
if long_profile in grid["profiles"]:
    long_store = RunStore(runs, long_profile)
    rows_long = [r for r in collect(long_store, grid) if r["dataset"] == main]
    epochs = (grid["profiles"][base_profile]["recipes"]["teacher"]["epochs"],
              grid["profiles"][long_profile]["recipes"]["teacher"]["epochs"])
    seeds_long = sorted({r["seed"] for r in rows_long})
    if not rows_long:
        display(Markdown(f"No run of `{long_profile}` is here yet. Fill it with "
                         + (f"`{fill_command(long_profile, grid['profiles'][long_profile]['seeds'])}`" if gpu_profile
                            else f"`python -m kdlib grid --profile {long_profile}`") + "."))
    else:
        table = []
        for m in PAPER_REGIMES:
            short_t, long_t = teachers(rows, teacher_spec(m)), teachers(rows_long, teacher_spec(m))
            if not long_t:
                continue
            row = {"teacher": REGIME_NAMES[m], f"teacher, {epochs[0]} epochs": fmt_ci([r["accuracy"] for r in short_t]),
                   f"teacher, {epochs[1]} epochs": fmt_ci([r["accuracy"] for r in long_t]),
                   "gain": ci_text(difference(long_t, short_t))}
            for model in MODELS:
                s_long = students(rows_long, model, teacher_spec(m))
                if s_long:
                    row[f"{MODEL_NAMES[model]} student, gain"] = ci_text(difference(s_long,
                                                                                 students(rows, model, teacher_spec(m))))
            table.append(row)
        if table:
            display(Markdown(f"`{long_profile}`: seeds {seeds_long}, {len(rows_long)} finished runs. Accuracy "
                             f"(mean ± 95% half-width) and the gain of the long teacher over this profile's, paired "
                             f"by seed:"))
            display(pd.DataFrame(table).style.hide(axis="index"))
        else:
            display(Markdown(f"`{long_profile}` has no finished teacher yet ({len(rows_long)} other runs)."))
        table = []
        for model in MODELS:
            for m in ["flipcrop"] + MIXERS:
                p_short = penalty([r for r in rows if r["seed"] in seeds_long], model, teacher_spec(m))
                p_long = penalty(rows_long, model, teacher_spec(m))
                if p_long["n"] == 0:
                    continue
                same = says(p_short, -1) == says(p_long, -1)
                table.append({"student": MODEL_NAMES[model], "teacher": REGIME_NAMES[m],
                              f"penalty, {epochs[0]}-epoch teachers": ci_text(p_short),
                              f"penalty, {epochs[1]}-epoch teachers": ci_text(p_long),
                              "verdict (worse student) at 1× → 4×": f"{says(p_short, -1)} → {says(p_long, -1)}"})
                if m in ("mixup", "cutmix"):
                    claim(f"{long_profile}", f"the {REGIME_NAMES[m]} teacher makes a "
                          f"worse {MODEL_NAMES[model]} student with {epochs[1]}-epoch teachers "
                          f"({'same verdict' if same else 'verdict moved'} from {epochs[0]} epochs)", p_long, -1)
        if table:
            show_table("Penalty (augmented teacher's student − plain teacher's student) with short and long "
                       "teachers, on the seeds both have:", table)
        else:
            display(Markdown(f"`{long_profile}` has no distilled student yet: only the teachers compare."))
else:
    display(Markdown(f"No 4×-teacher profile `{long_profile}` in the grid."))

# %% [markdown]
# ## Summary
#
# One line per question and student model; the difference is in accuracy (fractions), paired by seed.

# %% tags=["hide-input"]
if summary:
    display(pd.DataFrame(summary).style.hide(axis="index"))
    counts = pd.Series([s["verdict"] for s in summary]).value_counts()
    sentence = (", ".join(f"{v}: {n}" for v, n in counts.items()) + f" of {len(summary)} comparisons (profile "
                f"{profile}, seeds {', '.join(map(str, sorted({r['seed'] for r in rows if set(r['experiments']) & set(EXT)})))})")
    display(Markdown(sentence + "."))
elif planned:
    sentence = f"not run yet (profile {profile}: {sum(len(v) for v in fills.values())} runs missing)"
    display(Markdown("No extension run of this profile is finished: nothing to summarise yet."))
else:
    sentence = f"not planned in profile {profile} (make book PROFILE={profile}-ext runs them)"
    display(Markdown("No extension run of this profile is finished: nothing to summarise yet."))
glue("ext_summary", sentence, display=False)
