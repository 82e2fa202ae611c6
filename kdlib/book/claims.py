"""From the run store to the paper's comparisons: tables over seeds, confidence intervals, verdicts.

Seeds are paired: every run of seed *s* sees the same batch stream, so a claim such as "the
CutMix teacher's LeNet student is less accurate than the plain teacher's" is tested on the
per-seed differences, with a Student-t 95% confidence interval over seeds. A verdict is

* ``reproduced``   the paper's direction holds and the interval excludes zero;
* ``contradicted`` the interval excludes zero on the other side;
* ``inconclusive`` otherwise (including a single seed, whose interval is unbounded).
"""
from __future__ import annotations

import math

import numpy as np

from ..runs.store import RunStore
from .names import MIXER_NAMES, MODEL_NAMES, REGIME_NAMES
from .rows import PAPER_REGIMES, _by_seed, _combine, distilled, load_predictions, select
from .stats import _difference, holm, mean_ci, paired_difference, verdict

__all__ = ["claims", "CLAIMS", "claim_summary", "preconditions", "combine_verdicts", "TOLERANCE", "seeds_needed",
           "METRIC_NAMES", "headline", "seeds_label", "MIN_SEEDS", "MIXERS", "shown_seed", "table1_runs",
           "reference_runs", "seed_counts"]


TOLERANCE = 0.005  # "at least as accurate" / "matches": a mean paired difference of at most half a point below


def _filters(main: str):
    t = {"kind": "teacher", "model": "resnet18", "dataset": main}
    le = {"kind": "student", "model": "lenet", "alpha": 0.5, "regime": "none", "teacher_model": "resnet18",
          "dataset": main}
    alone = {"kind": "student", "alpha": 0.0, "regime": "none", "dataset": main}
    return t, le, alone


def preconditions(rows: list[dict], main_dataset: str, mnist_dataset: str | None = None) -> dict:
    """What the paper's claims about students take for granted, measured on ``rows``.

    * ``T:<regime>``: the augmented teacher is at least as accurate as the plain one (mean paired
      difference >= -TOLERANCE);
    * ``G:<model>``: every teacher is more accurate than the student ``model`` trained alone (α = 0);
    * ``K:<model>``: distillation from the plain teacher beats or matches training alone (mean
      paired difference >= -TOLERANCE);
    * ``S:alexnet``: the AlexNet student is at least as accurate as the LeNet student (both from the
      plain teacher): §4.2's premise, a more capable student (the paper: 0.769 against 0.652).
    Each entry: ``{"statement", "holds": True | False | None (not measured), "evidence"}``.
    """
    t, le, alone = _filters(main_dataset)
    out = {}
    for r in AUGMENTED:
        d = paired_difference(_by_seed(rows, "accuracy", **{**t, "regime": r}),
                              _by_seed(rows, "accuracy", **{**t, "regime": "none"}))
        holds = None if d["n"] == 0 else d["mean"] >= -TOLERANCE
        out[f"T:{r}"] = {"statement": f"the {REGIME_NAMES[r]} teacher is at least as accurate as the plain teacher",
                         "holds": holds, "evidence": "not measured" if holds is None else
                         f"{d['mean']:+.4f} over {d['n']} seed(s)"}
    teacher_acc = {r: mean_ci(_by_seed(rows, "accuracy", **{**t, "regime": r}).values())[0] for r in PAPER_REGIMES}
    for model in ("lenet", "alexnet"):
        solo = mean_ci(_by_seed(rows, "accuracy", **{**alone, "model": model}).values())[0]
        known = [v for v in teacher_acc.values() if not math.isnan(v)]
        holds = None if math.isnan(solo) or not known else min(known) > solo
        name = MODEL_NAMES[model]
        out[f"G:{model}"] = {"statement": f"every teacher is more accurate than {name} trained alone",
                             "holds": holds, "evidence": "not measured" if holds is None else
                             f"weakest teacher {min(known):.4f} vs {name} alone {solo:.4f}"}
        d = paired_difference(_by_seed(rows, "accuracy", **{**le, "model": model, "teacher_regime": "none"}),
                              _by_seed(rows, "accuracy", **{**alone, "model": model}))
        holds = None if d["n"] == 0 else d["mean"] >= -TOLERANCE
        out[f"K:{model}"] = {"statement": f"{name} distilled from the plain teacher beats or matches {name} alone",
                             "holds": holds, "evidence": "not measured" if holds is None else
                             f"{d['mean']:+.4f} over {d['n']} seed(s)"}
    d = paired_difference(_by_seed(rows, "accuracy", **{**le, "model": "alexnet", "teacher_regime": "none"}),
                          _by_seed(rows, "accuracy", **{**le, "teacher_regime": "none"}))
    holds = None if d["n"] == 0 else d["mean"] >= -TOLERANCE
    out["S:alexnet"] = {"statement": "the AlexNet student is at least as accurate as the LeNet student (the plain "
                                     "teacher's), the premise of §4.2", "holds": holds,
                        "evidence": "not measured" if holds is None else f"{d['mean']:+.4f} over {d['n']} seed(s)"}
    if mnist_dataset:
        at = {"kind": "teacher", "model": "alexnet", "dataset": mnist_dataset}
        accs = {r: mean_ci(_by_seed(rows, "accuracy", **{**at, "regime": r}).values())[0]
                for r in ("none", "mixup", "cutmix")}
        known = [v for v in accs.values() if not math.isnan(v)]
        solo = mean_ci(_by_seed(rows, "accuracy", **{**alone, "model": "lenet", "dataset": mnist_dataset}).values())[0]
        holds = None if math.isnan(solo) or not known else min(known) > solo
        out["G:mnist"] = {"statement": "every AlexNet teacher of the MNIST experiment is more accurate than LeNet "
                                       "trained alone on its data", "holds": holds,
                          "evidence": "not measured (no LeNet trained alone on that dataset)" if holds is None else
                          f"weakest AlexNet teacher {min(known):.4f} vs LeNet alone {solo:.4f}"}
    return out


AUGMENTED = ["flipcrop", "cutout", "mixup", "cutmix"]


MIXERS = ["cutout", "mixup", "cutmix"]  # the regimes that add a mixer to flip+crop


METRIC_NAMES = {"accuracy": "accuracy", "class_separability": "class separability", "discrimination": "discrimination D",
                "class_kl_to_human": "class-averaged KL to humans", "kl_to_human": "KL(human ‖ model)", "ece": "ECE",
                "nll": "test NLL", "cinic_accuracy": "CINIC-10 accuracy"}


SUPPLEMENTARY = "supplementary"  # a comparison shown with a claim that is not the paper's: no part of its verdict


def _diff(a: dict, b: dict) -> list[tuple[int, dict]]:
    return [(+1, a), (-1, b)]


def _did(a: dict, b: dict, c: dict, d: dict) -> list[tuple[int, dict]]:  # (a - b) - (c - d)
    return [(+1, a), (-1, b), (-1, c), (+1, d)]


def _teacher_claims(t: dict) -> dict:
    """C1, C6-C9: the teachers against the plain teacher (C1: beside each, the mixer against flip+crop)."""
    N = REGIME_NAMES
    return {
        # the Cutout, Mixup and CutMix teachers ran on top of flip+crop (grid.yaml E1): beside each against the
        # plain teacher, the mixer's own part, against the flip+crop teacher
        "C1": ("Augmented teachers are more accurate than the plain teacher.", "Table 1",
               [(f"teacher {N[r]} − teacher none", "accuracy", _diff({**t, "regime": r}, {**t, "regime": "none"}),
                 +1, [])
                for r in AUGMENTED]
               + [(f"teacher {N[r]} − teacher flip+crop", "accuracy",
                   _diff({**t, "regime": r}, {**t, "regime": "flipcrop"}), +1, [], SUPPLEMENTARY) for r in MIXERS]),
        "C6": ("Augmented teachers separate classes better: higher class separability and discrimination.",
               "§5, Tables 4–5",
               [(f"teacher {N[r]} − none: {METRIC_NAMES[m]}", m, _diff({**t, "regime": r}, {**t, "regime": "none"}),
                 +1, [])
                for m in ("class_separability", "discrimination") for r in AUGMENTED]),
        "C7": ("The CutMix teacher's class-averaged predictions are further from the human labels than the plain "
               "teacher's (relative KL, Fig. 6).", "§5, Fig. 6",
               [(f"teacher {N['cutmix']} − none: class-averaged KL to CIFAR-10H", "class_kl_to_human",
                 _diff({**t, "regime": "cutmix"}, {**t, "regime": "none"}), +1, [])]),
        "C8": ("Augmented teachers' predictions are closer to the human soft labels (Table 1's KLD column).",
               "Table 1",
               [(f"teacher {N[r]} − none: KL(human ‖ model)", "kl_to_human",
                 _diff({**t, "regime": r}, {**t, "regime": "none"}), -1, []) for r in AUGMENTED]),
        "C9": ("Interpolative techniques (Mixup, CutMix) give better-calibrated teachers.", "§5, Figs. 5 and 7",
               [(f"teacher {N[r]} − none: ECE", "ece", _diff({**t, "regime": r}, {**t, "regime": "none"}), -1, [])
                for r in ("mixup", "cutmix")]),
    }


def _student_claims(le: dict, ax: dict) -> dict:
    """C2, C3, C11: the students of augmented teachers against the plain teacher's."""
    N = REGIME_NAMES
    return {
        "C2": ("LeNet students of augmented teachers are less accurate than the plain teacher's.", "§4.1, Table 1",
               [(f"LeNet ← {N[r]} − LeNet ← none", "accuracy",
                 _diff({**le, "teacher_regime": r}, {**le, "teacher_regime": "none"}), -1,
                 [f"T:{r}", "G:lenet", "K:lenet"]) for r in AUGMENTED]),
        "C3": ("AlexNet students: better from flip+crop and Cutout teachers, worse from Mixup and CutMix teachers.",
               "§4.2, Table 1",
               [(f"AlexNet ← {N[r]} − AlexNet ← none", "accuracy",
                 _diff({**ax, "teacher_regime": r}, {**ax, "teacher_regime": "none"}),
                 +1 if r in ("flipcrop", "cutout") else -1, [f"T:{r}", "G:alexnet", "K:alexnet", "S:alexnet"])
                for r in AUGMENTED]),
        "C11": ("On CINIC-10 (ImageNet part) the plain teacher's LeNet student beats the students of augmented "
                "teachers.", "§4.1, Table 2",
                [(f"LeNet ← {N[r]} − LeNet ← none on CINIC-10", "cinic_accuracy",
                  _diff({**le, "teacher_regime": r}, {**le, "teacher_regime": "none"}), -1,
                  [f"T:{r}", "G:lenet", "K:lenet"]) for r in AUGMENTED]),
    }


def _ablation_claims(le: dict, alone: dict) -> dict:
    """C4, C5: augmented students, distilled against trained alone (differences in differences)."""
    N = REGIME_NAMES
    return {
        "C4": ("Augmenting the student (plain teacher) inhibits distillation: the distilled student loses more "
               "than the same student trained alone (difference in differences).", "§4.4, Table 7",
               [(f"(LeNet[{N[r]}] ← none − LeNet[{N[r]}] alone) − (LeNet ← none − LeNet alone)", "accuracy",
                 _did({**le, "regime": r, "teacher_regime": "none"}, {**alone, "model": "lenet", "regime": r},
                     {**le, "teacher_regime": "none"}, {**alone, "model": "lenet"}), -1, ["K:lenet"])
                for r in AUGMENTED]),
        "C5": ("Augmenting teacher and student alike inhibits distillation (difference in differences against the "
               "students alone).", "§4.4, Table 8",
               [(f"(LeNet[{N[r]}] ← {N[r]} − LeNet[{N[r]}] alone) − (LeNet ← none − LeNet alone)", "accuracy",
                 _did({**le, "regime": r, "teacher_regime": r}, {**alone, "model": "lenet", "regime": r},
                     {**le, "teacher_regime": "none"}, {**alone, "model": "lenet"}), -1, ["K:lenet", f"T:{r}"])
                for r in AUGMENTED]),
    }


def _mnist_claim(mnist_dataset: str) -> tuple:
    """C10: the MNIST students' test loss."""
    ml = {"kind": "student", "model": "lenet", "alpha": 0.5, "regime": "none", "teacher_model": "alexnet",
          "dataset": mnist_dataset}
    return (
        "On MNIST, the LeNet students of Mixup and CutMix AlexNet teachers have a higher test loss than the "
        "plain teacher's.", "§4.3, Table 3",
        [(f"LeNet ← AlexNet {MIXER_NAMES[r]} − LeNet ← AlexNet none: NLL", "nll",
          _diff({**ml, "teacher_regime": r}, {**ml, "teacher_regime": "none"}), +1, ["G:mnist"])
         for r in ("mixup", "cutmix")])


def _comparisons(main_dataset: str, mnist_dataset: str | None = None) -> dict:
    """claim id -> (statement, source in the paper, [(label, metric, terms, direction, gates[, SUPPLEMENTARY])]).

    A supplementary comparison answers a question the claim raises here (C1: the mixers ran on top of
    flip+crop, so how much does each mixer add to the flip+crop teacher?); it is shown with the claim, with its
    own Holm family, and takes no part in the claim's verdict."""
    t, le, alone = _filters(main_dataset)
    ax = {**le, "model": "alexnet"}
    claims_ = {**_teacher_claims(t), **_student_claims(le, ax), **_ablation_claims(le, alone)}
    if mnist_dataset:
        claims_["C10"] = _mnist_claim(mnist_dataset)
    return dict(sorted(claims_.items(), key=lambda kv: int(kv[0][1:])))


CLAIMS = {k: v[0] for k, v in _comparisons("cifar10", "mnist").items()}


def claims(rows: list[dict], main_dataset: str, mnist_dataset: str | None = None) -> list[dict]:
    """Every comparison of every claim: paired difference over seeds, p-value, raw and Holm-adjusted
    verdicts, and the preconditions it needs (a failed one replaces the verdict)."""
    pre = preconditions(rows, main_dataset, mnist_dataset)
    out = []
    for cid, (statement, source, comps) in _comparisons(main_dataset, mnist_dataset).items():
        lines = []
        for label, metric, terms, direction, gates, *role in comps:
            d = _difference(_combine(rows, metric, terms))
            failed = [g for g in gates if pre.get(g, {}).get("holds") is False]
            v = verdict(d, direction)
            if failed and v != "not tested":
                v = "precondition failed"
            lines.append({"claim": cid, "statement": statement, "source": source, "comparison": label,
                          "metric": metric, "direction": "a > b" if direction > 0 else "a < b",
                          "sign": direction, **d, "verdict": v, "preconditions": gates,
                          "failed_preconditions": [pre[g]["statement"] for g in failed],
                          "supplementary": bool(role and role[0] == SUPPLEMENTARY),
                          "agrees": (None if d["n"] == 0 or math.isnan(d["mean"]) or d["mean"] == 0
                                     else bool(direction * d["mean"] > 0))})
        tested = [k for k, x in enumerate(lines) if x["verdict"] not in ("not tested", "precondition failed")
                  and not x["supplementary"]]
        adj = holm([lines[k]["p"] for k in tested])
        for x in lines:
            x["p_holm"], x["verdict_holm"] = math.nan, x["verdict"]
        for k, pa in zip(tested, adj):
            x = lines[k]
            x["p_holm"] = pa
            if x["verdict"] in ("reproduced", "contradicted") and not (pa < 0.05):
                x["verdict_holm"] = "inconclusive"
        supplementary = [x for x in lines if x["supplementary"] and x["n"] >= 2]
        for x, pa in zip(supplementary, holm([x["p"] for x in supplementary])):  # a family of their own
            x["p_holm"] = pa
            if x["verdict"] in ("reproduced", "contradicted") and not (pa < 0.05):
                x["verdict_holm"] = "inconclusive"
        out.extend(lines)
    return out


def combine_verdicts(verdicts: list[str]) -> str:
    """How comparison verdicts make a claim verdict (stated in the book):

    * every tested comparison reproduced: ``reproduced``; every one contradicted: ``contradicted``;
    * some reproduced and some contradicted: ``mixed``;
    * some reproduced, the others inconclusive: ``partly reproduced`` (``partly contradicted`` likewise);
    * all inconclusive: ``inconclusive``;
    * none tested: ``precondition failed`` if a precondition withheld some, else ``not tested``.
    """
    tested = [v for v in verdicts if v not in ("not tested", "precondition failed")]
    if not tested:
        return "precondition failed" if "precondition failed" in verdicts else "not tested"
    rep, con = tested.count("reproduced"), tested.count("contradicted")
    if rep == len(tested):
        return "reproduced"
    if con == len(tested):
        return "contradicted"
    if rep and con:
        return "mixed"
    if rep:
        return "partly reproduced"
    if con:
        return "partly contradicted"
    return "inconclusive"


def claim_summary(results: list[dict]) -> dict:
    """claim -> its verdict (raw and Holm-adjusted), the counts of comparison verdicts, and how many point
    estimates lean the paper's way."""
    summary = {}
    for cid in dict.fromkeys(r["claim"] for r in results):
        lines = [r for r in results if r["claim"] == cid and not r.get("supplementary")]
        verdicts = [r["verdict"] for r in lines]
        counts = {v: verdicts.count(v) for v in ("reproduced", "contradicted", "inconclusive", "precondition failed",
                                                 "not tested") if verdicts.count(v)}
        leaning = [r["agrees"] for r in lines if r["agrees"] is not None and r["verdict"] != "precondition failed"]
        holm_verdict = combine_verdicts([r.get("verdict_holm", r["verdict"]) for r in lines])
        seeds = [int(r["n"]) for r in lines if r["n"] and r["verdict"] != "precondition failed"]
        untested = sum(1 for r in lines if not r["n"])
        summary[cid] = {"verdict": combine_verdicts(verdicts), "verdict_holm": holm_verdict,
                        "counts": counts, "agree": sum(leaning), "measured": len(leaning),
                        "seeds_min": min(seeds, default=0), "seeds_max": max(seeds, default=0), "untested": untested,
                        "statement": lines[0]["statement"], "source": lines[0].get("source", "")}
        summary[cid]["seeds"] = seeds_label(summary[cid])
        summary[cid]["headline"] = headline(summary[cid])
    return summary


MIN_SEEDS = 3  # a claim's headline verdict needs every comparison on at least this many seeds


def seeds_label(s: dict) -> str:
    """'2 seeds', '1–2 seeds' (the fewest and most seeds behind a claim's measured comparisons), plus the
    comparisons not measured at all."""
    lo, hi = s["seeds_min"], s["seeds_max"]
    if not hi:
        return "no seed"
    text = f"{lo} seed{'s' if lo != 1 else ''}" if lo == hi else f"{lo}–{hi} seeds"
    return text + (f", {s['untested']} comparison{'s' if s['untested'] != 1 else ''} not run" if s["untested"] else "")


def headline(s: dict) -> str:
    """A claim's verdict as the front page states it: the Holm-adjusted verdict when every comparison rests on
    at least MIN_SEEDS seeds and was run; otherwise never 'reproduced' or 'contradicted', only the seeds it has
    and which way its point estimates lean ('2 seeds: leaning the paper's way in 3 of 4')."""
    v = s["verdict_holm"]
    if v in ("not tested", "precondition failed"):
        return v
    if s["seeds_min"] >= MIN_SEEDS and not s["untested"]:
        return v
    if not s["measured"]:  # measured, but every difference is exactly zero: nothing leans
        return f"{s['seeds']}: no difference"
    a, m = s["agree"], s["measured"]
    lean = "leaning against the paper" if a == 0 else "leaning the paper's way" + ("" if a == m else f" in {a} of {m}")
    return f"{s['seeds']}: {lean}" + (f" ({a} of {m} the paper's way)" if a == 0 else f" ({m} of {m})" if a == m else "")


def seeds_needed(per_seed: list[float] | np.ndarray, level: float = 0.95, cap: int = 50) -> int | str | None:
    """Seeds a paired t interval needs to exclude zero if the mean and spread stay as measured
    (None with fewer than two values or no spread; ``f">{cap}"`` beyond ``cap``)."""
    from scipy import stats

    v = np.asarray(per_seed, float)
    if len(v) < 2 or v.std(ddof=1) == 0 or v.mean() == 0:
        return None
    ratio = abs(v.mean()) / v.std(ddof=1)
    for n in range(2, cap + 1):
        if stats.t.ppf(0.5 + level / 2, n - 1) / math.sqrt(n) < ratio:
            return n
    return f">{cap}"


def shown_seed(store: RunStore, by_key: dict, need: str = "test_embeddings") -> tuple:
    """The seed a chapter's figures show, and its runs' predictions: of ``by_key`` (key -> rows of finished runs,
    e.g. the teachers by regime) the smallest seed whose every key has predictions holding ``need`` (the
    embeddings that a t-SNE needs; records keep them only where the exporter had them), else the seed with the
    most such keys, else the smallest seed. Returns (seed or None, {key: predictions of that seed's run})."""
    seeds = sorted({r["seed"] for rs in by_key.values() for r in rs})
    preds: dict = {}

    def of(key, seed):
        if (key, seed) not in preds:
            run = next((r for r in by_key[key] if r["seed"] == seed), None)
            preds[key, seed] = load_predictions(store, run["id"]) if run else None
        return preds[key, seed]

    def having(seed):
        return [k for k in by_key if of(k, seed) is not None and need in of(k, seed)]

    if not seeds:
        return None, {}
    best = max(seeds, key=lambda s: (len(having(s)), -s))
    full = [s for s in seeds if len(having(s)) == sum(1 for k in by_key if by_key[k])]
    seed = full[0] if full else (best if having(best) else seeds[0])
    return seed, {k: of(k, seed) for k in by_key if of(k, seed) is not None}


def table1_runs(rows: list[dict], main: str) -> dict:
    """The runs behind each cell of the paper's Table 1: ``{"teacher" | "lenet" | "alexnet": {regime: rows}}``
    (ResNet-18 teachers on ``main``; their students on clean inputs at the paper's α)."""
    out = {"teacher": {r: select(rows, kind="teacher", model="resnet18", dataset=main, regime=r) for r in PAPER_REGIMES}}
    for model in ("lenet", "alexnet"):
        out[model] = {r: distilled(rows, model, r, main) for r in PAPER_REGIMES}
    return out


def reference_runs(rows: list[dict], main: str) -> list[dict]:
    """The no-teacher reference: per student model and student regime, the runs trained alone (α = 0) and those
    distilled from the plain ResNet-18 teacher (the same cells as Table 1's 'none' row for clean inputs)."""
    out = []
    for model in ("lenet", "alexnet"):
        for r in PAPER_REGIMES:
            alone = select(rows, kind="student", model=model, alpha=0.0, regime=r, dataset=main)
            dist = distilled(rows, model, "none", main, regime=r)
            if alone or dist:
                out.append({"model": model, "regime": r, "alone": alone, "distilled": dist})
    return out


def seed_counts(*groups: list[dict]) -> str:
    """The seeds behind a table row's cells, one count per group of rows ('2, 2, 1': teacher, LeNet, AlexNet)."""
    return ", ".join(str(len({x["seed"] for x in g})) for g in groups)
