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
from pathlib import Path

import numpy as np
import yaml

from .report import MIXER_NAMES, MODEL_NAMES, REGIME_NAMES
from .runs import RunStore

__all__ = ["regime_key", "collect", "mean_ci", "paired_difference", "verdict", "claims", "paper_tables",
           "REGIMES", "PAPER_TABLES", "CLAIMS"]

REGIMES = ["none", "flipcrop", "cutout", "mixup", "cutmix"]
PAPER_TABLES = Path(__file__).resolve().parent.parent / "book" / "paper_tables.yaml"


def paper_tables(path=None) -> dict:
    return yaml.safe_load(Path(path or PAPER_TABLES).read_text())


def regime_key(spec: str) -> str:
    """The paper's name for a canonical spec: the last mixer names it (flipcrop+cutmix -> cutmix)."""
    names = [part.split("(")[0] for part in spec.split("+")]
    return names[-1]


def collect(store: RunStore, grid: dict | None = None, plan_only: bool = True, include_failed: bool | None = None,
            extensions: bool = False) -> list[dict]:
    """One flat record per finished run: config fields, teacher regime and test metrics.

    ``plan_only`` (the default): only the runs the current grid plans for ``store.profile``, so a
    one-off run (another temperature) or the runs of an edited recipe never join a table.
    Failed runs (:func:`kdlib.records.run_health`: at chance, a non-finite or flat loss) are left
    out unless ``include_failed`` (default: the profile's ``failed_runs`` setting: ``keep`` only for the
    smoke profiles, whose runs are at chance by design); each row says ``failed`` and why (``failure``).
    Each row names the ``experiments`` that plan it. Runs that only the extension experiments plan
    (``extension: true`` in grid.yaml: paper-literal and label-smoothed teachers, other temperatures, the
    cross of regimes, calibrated teachers) are left out unless ``extensions``: the paper's chapters never
    see them.
    """
    from .grid import extension_experiments, load_grid, plan, task_configs
    from .records import run_health
    from .runs import run_id

    grid = grid or load_grid()
    if include_failed is None:
        include_failed = (grid.get("profiles", {}).get(store.profile, {}).get("failed_runs") == "keep")
    experiments_of: dict = {}
    for task in plan(store.profile, grid):
        for c in task_configs(task, grid):
            experiments_of.setdefault(run_id(c), set()).update(task.experiments)
    extension = set(extension_experiments(grid))
    teachers = {r.id: r.config for r in store.runs("teacher")}
    rows = []
    for run in store.runs():
        if plan_only and run.id not in experiments_of:
            continue
        exps = experiments_of.get(run.id, set())
        if not extensions and exps and exps <= extension:
            continue
        cfg = run.config
        try:
            metrics = run.read_json("metrics.json")
            history = run.read_history()
        except (OSError, ValueError) as err:
            raise ValueError(f"{run.folder}: unreadable record ({err}); delete the folder to retrain it, or import "
                             f"the record again") from None
        test = metrics["test"]
        health = run_health(metrics, history, int(metrics.get("num_classes", 10)))
        if health["failed"] and not include_failed:
            continue
        row = {"id": run.id, "kind": cfg["kind"], "dataset": cfg["dataset"]["name"], "model": cfg["model"]["name"],
               "regime": regime_key(cfg["augment"]), "seed": cfg["seed"], "alpha": cfg.get("alpha", 0.0),
               "temperature": cfg.get("temperature")}
        tcfg = teachers.get(cfg.get("teacher")) if cfg["kind"] == "student" else None
        row["teacher"] = cfg.get("teacher") if cfg["kind"] == "student" else None
        row["teacher_model"] = tcfg["model"]["name"] if tcfg else None
        row["teacher_regime"] = regime_key(tcfg["augment"]) if tcfg else None
        row["experiments"] = sorted(exps)
        row["augment"] = cfg["augment"]
        row["teacher_augment"] = tcfg["augment"] if tcfg else None
        row["label_smoothing"] = cfg["recipe"].get("label_smoothing", 0.0)
        row["teacher_label_smoothing"] = tcfg["recipe"].get("label_smoothing", 0.0) if tcfg else None
        row["teacher_calibration"] = cfg.get("teacher_calibration", "none")
        row["matched_to"] = cfg.get("stop_at_accuracy_of")  # a teacher stopped at that teacher's accuracy (E11)
        row["teacher_matched"] = bool(tcfg.get("stop_at_accuracy_of")) if tcfg else None
        prov = run.provenance()
        row["teacher_scale"] = (prov.get("teacher_calibration") or {}).get("temperature", math.nan)
        for k in ("accuracy", "precision", "recall", "f1", "nll", "ece", "ece10", "class_separability",
                  "kl_to_human", "class_kl_to_human", "agreement_with_teacher", "kl_teacher_student"):
            row[k] = test.get(k, math.nan)
        row["discrimination"] = test["discrimination_embedding"]["discrimination"]
        row["cohesion"] = test["discrimination_embedding"]["cohesion"]
        row["adhesion"] = test["discrimination_embedding"]["adhesion"]
        row["discrimination_logits"] = test["discrimination_logits"]["discrimination"]
        row["cinic_accuracy"] = metrics.get("cinic10-imagenet", {}).get("accuracy", math.nan)
        row["failed"] = health["failed"]
        row["failure"] = "; ".join(health["reasons"])
        row["record"] = run.record
        row["device"] = prov.get("device_name")
        rows.append(row)
    return rows


def mean_ci(values, level: float = 0.95) -> tuple[float, float, int]:
    """(mean, half-width of the Student-t interval, n); the half-width is inf for n < 2."""
    from scipy import stats

    v = np.asarray([x for x in values if not (isinstance(x, float) and math.isnan(x))], dtype=float)
    n = len(v)
    if n == 0:
        return math.nan, math.nan, 0
    if n == 1:
        return float(v[0]), math.inf, 1
    half = stats.t.ppf(0.5 + level / 2, n - 1) * v.std(ddof=1) / math.sqrt(n)
    return float(v.mean()), float(half), n


def paired_difference(a_by_seed: dict, b_by_seed: dict, level: float = 0.95) -> dict:
    """Mean and CI of a - b over the seeds both have (with the two-sided paired t-test's p-value)."""
    seeds = sorted(set(a_by_seed) & set(b_by_seed))
    return _difference({s: a_by_seed[s] - b_by_seed[s] for s in seeds}, level)


def _difference(diff_by_seed: dict, level: float = 0.95) -> dict:
    from scipy import stats

    seeds = sorted(diff_by_seed)
    diffs = [diff_by_seed[s] for s in seeds]
    mean, half, n = mean_ci(diffs, level)
    p = math.nan
    if n >= 2:
        sd = float(np.std(diffs, ddof=1))
        if sd == 0:
            p = 0.0 if mean != 0 else 1.0
        else:
            p = float(2 * stats.t.sf(abs(mean) / (sd / math.sqrt(n)), n - 1))
    return {"mean": mean, "low": mean - half, "high": mean + half, "n": n, "seeds": seeds, "p": p,
            "per_seed": diffs}


def verdict(diff: dict, direction: int) -> str:
    """``direction`` +1: the paper says a > b; -1: a < b."""
    if direction not in (1, -1):
        raise ValueError("direction must be +1 or -1")
    low, high = diff["low"], diff["high"]
    if diff["n"] == 0 or math.isnan(low):
        return "not tested"
    if direction * low > 0 and direction * high > 0:
        return "reproduced"
    if direction * low < 0 and direction * high < 0:
        return "contradicted"
    return "inconclusive"


def holm(pvalues: list[float]) -> list[float]:
    """Holm's step-down adjusted p-values (NaN stays NaN and does not count)."""
    idx = [i for i, p in enumerate(pvalues) if not math.isnan(p)]
    m = len(idx)
    out = [math.nan] * len(pvalues)
    running = 0.0
    for rank, i in enumerate(sorted(idx, key=lambda k: pvalues[k])):
        running = max(running, min(1.0, (m - rank) * pvalues[i]))
        out[i] = running
    return out


def _by_seed(rows, metric, **where) -> dict:
    out = {}
    for r in rows:
        if all(r.get(k) == v for k, v in where.items()) and not math.isnan(r.get(metric, math.nan)):
            out[r["seed"]] = r[metric]
    return out


def _combine(rows, metric, terms) -> dict:
    """Per seed: sum of sign * metric over ``terms`` [(sign, filter)], for the seeds every term has."""
    parts = [(sign, _by_seed(rows, metric, **where)) for sign, where in terms]
    seeds = set.intersection(*(set(v) for _, v in parts)) if parts else set()
    return {s: sum(sign * v[s] for sign, v in parts) for s in sorted(seeds)}


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
    teacher_acc = {r: mean_ci(_by_seed(rows, "accuracy", **{**t, "regime": r}).values())[0] for r in REGIMES}
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


def _comparisons(main_dataset: str, mnist_dataset: str | None = None):
    """claim id -> (statement, source in the paper, [(label, metric, terms, direction, gates[, SUPPLEMENTARY])]).

    A supplementary comparison answers a question the claim raises here (C1: the mixers ran on top of
    flip+crop, so how much does each mixer add to the flip+crop teacher?); it is shown with the claim, with its
    own Holm family, and takes no part in the claim's verdict."""
    t, le, alone = _filters(main_dataset)
    ax = {**le, "model": "alexnet"}
    N = REGIME_NAMES

    def diff(a, b):
        return [(+1, a), (-1, b)]

    def did(a, b, c, d):  # (a - b) - (c - d)
        return [(+1, a), (-1, b), (-1, c), (+1, d)]

    claims_ = {
        # the Cutout, Mixup and CutMix teachers ran on top of flip+crop (grid.yaml E1): beside each against the
        # plain teacher, the mixer's own part, against the flip+crop teacher
        "C1": ("Augmented teachers are more accurate than the plain teacher.", "Table 1",
               [(f"teacher {N[r]} − teacher none", "accuracy", diff({**t, "regime": r}, {**t, "regime": "none"}), +1, [])
                for r in AUGMENTED]
               + [(f"teacher {N[r]} − teacher flip+crop", "accuracy",
                   diff({**t, "regime": r}, {**t, "regime": "flipcrop"}), +1, [], SUPPLEMENTARY) for r in MIXERS]),
        "C2": ("LeNet students of augmented teachers are less accurate than the plain teacher's.", "§4.1, Table 1",
               [(f"LeNet ← {N[r]} − LeNet ← none", "accuracy",
                 diff({**le, "teacher_regime": r}, {**le, "teacher_regime": "none"}), -1,
                 [f"T:{r}", "G:lenet", "K:lenet"]) for r in AUGMENTED]),
        "C3": ("AlexNet students: better from flip+crop and Cutout teachers, worse from Mixup and CutMix teachers.",
               "§4.2, Table 1",
               [(f"AlexNet ← {N[r]} − AlexNet ← none", "accuracy",
                 diff({**ax, "teacher_regime": r}, {**ax, "teacher_regime": "none"}),
                 +1 if r in ("flipcrop", "cutout") else -1, [f"T:{r}", "G:alexnet", "K:alexnet", "S:alexnet"])
                for r in AUGMENTED]),
        "C4": ("Augmenting the student (plain teacher) inhibits distillation: the distilled student loses more "
               "than the same student trained alone (difference in differences).", "§4.4, Table 7",
               [(f"(LeNet[{N[r]}] ← none − LeNet[{N[r]}] alone) − (LeNet ← none − LeNet alone)", "accuracy",
                 did({**le, "regime": r, "teacher_regime": "none"}, {**alone, "model": "lenet", "regime": r},
                     {**le, "teacher_regime": "none"}, {**alone, "model": "lenet"}), -1, ["K:lenet"])
                for r in AUGMENTED]),
        "C5": ("Augmenting teacher and student alike inhibits distillation (difference in differences against the "
               "students alone).", "§4.4, Table 8",
               [(f"(LeNet[{N[r]}] ← {N[r]} − LeNet[{N[r]}] alone) − (LeNet ← none − LeNet alone)", "accuracy",
                 did({**le, "regime": r, "teacher_regime": r}, {**alone, "model": "lenet", "regime": r},
                     {**le, "teacher_regime": "none"}, {**alone, "model": "lenet"}), -1, ["K:lenet", f"T:{r}"])
                for r in AUGMENTED]),
        "C6": ("Augmented teachers separate classes better: higher class separability and discrimination.",
               "§5, Tables 4–5",
               [(f"teacher {N[r]} − none: {METRIC_NAMES[m]}", m, diff({**t, "regime": r}, {**t, "regime": "none"}), +1, [])
                for m in ("class_separability", "discrimination") for r in AUGMENTED]),
        "C7": ("The CutMix teacher's class-averaged predictions are further from the human labels than the plain "
               "teacher's (relative KL, Fig. 6).", "§5, Fig. 6",
               [(f"teacher {N['cutmix']} − none: class-averaged KL to CIFAR-10H", "class_kl_to_human",
                 diff({**t, "regime": "cutmix"}, {**t, "regime": "none"}), +1, [])]),
        "C8": ("Augmented teachers' predictions are closer to the human soft labels (Table 1's KLD column).",
               "Table 1",
               [(f"teacher {N[r]} − none: KL(human ‖ model)", "kl_to_human",
                 diff({**t, "regime": r}, {**t, "regime": "none"}), -1, []) for r in AUGMENTED]),
        "C9": ("Interpolative techniques (Mixup, CutMix) give better-calibrated teachers.", "§5, Figs. 5 and 7",
               [(f"teacher {N[r]} − none: ECE", "ece", diff({**t, "regime": r}, {**t, "regime": "none"}), -1, [])
                for r in ("mixup", "cutmix")]),
        "C11": ("On CINIC-10 (ImageNet part) the plain teacher's LeNet student beats the students of augmented "
                "teachers.", "§4.1, Table 2",
                [(f"LeNet ← {N[r]} − LeNet ← none on CINIC-10", "cinic_accuracy",
                  diff({**le, "teacher_regime": r}, {**le, "teacher_regime": "none"}), -1,
                  [f"T:{r}", "G:lenet", "K:lenet"]) for r in AUGMENTED]),
    }
    if mnist_dataset:
        ml = {"kind": "student", "model": "lenet", "alpha": 0.5, "regime": "none", "teacher_model": "alexnet",
              "dataset": mnist_dataset}
        claims_["C10"] = (
            "On MNIST, the LeNet students of Mixup and CutMix AlexNet teachers have a higher test loss than the "
            "plain teacher's.", "§4.3, Table 3",
            [(f"LeNet ← AlexNet {MIXER_NAMES[r]} − LeNet ← AlexNet none: NLL", "nll",
              diff({**ml, "teacher_regime": r}, {**ml, "teacher_regime": "none"}), +1, ["G:mnist"])
             for r in ("mixup", "cutmix")])
        claims_ = dict(sorted(claims_.items(), key=lambda kv: int(kv[0][1:])))
    return claims_


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


def seeds_needed(per_seed, level: float = 0.95, cap: int = 50):
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


def fill_command(profile: str, seeds, experiments=None, gpu: bool = True) -> str:
    """The command that makes runs of ``profile`` for ``seeds`` (``experiments``: only the tasks of these): on a
    GPU machine ``device-run`` and the import that brings its records here; on this machine ``kdlib grid``."""
    only = f" --only {' '.join(experiments)}" if experiments else ""
    seeds_ = " ".join(map(str, seeds))
    if not gpu:
        return f"python -m kdlib grid --profile {profile}{only} --seeds {seeds_}"
    return (f"python -m kdlib device-run --profile {profile}{only} --seeds {seeds_} --budget 540 "
            f"--out OUT  # on a GPU; then here: python -m kdlib import OUT/records.tar.gz")


__all__ += ["claim_summary", "holm", "preconditions", "combine_verdicts", "TOLERANCE", "seeds_needed", "fill_command",
            "METRIC_NAMES", "headline", "seeds_label", "MIN_SEEDS", "MIXERS"]

# What a missing run is, and what fills it (stated in the book's "Missing runs" sections):
# a run is *fillable* when a command can make it: a teacher always (it needs nothing but data); a student when
# it needs no teacher, when its teacher is missing too (the same command trains the teacher first), or when its
# teacher can teach from where it is (a run store with weights and training logits, or a committed record that
# carries its training-set logits, for the students distilled from cached logits: see kdlib.pipeline). It is
# *not fillable* when its teacher is a committed record that cannot teach it (no weights, and no logits or a
# student that needs the teacher online): a retrained teacher would be another realisation, whose students the
# importer refuses. Such a seed stays partial for good: new seeds complete the cell, never a retrained teacher.
NOT_FILLABLE = ("its teacher is a committed record that cannot teach it (no weights here, and no training-set logits "
                "or a student that needs the teacher online)")
PARTIAL_SEED_POLICY = ("A seed whose teachers are committed records without what their missing students need stays "
                       "partial: no command can add those students (a retrained teacher is another realisation, "
                       "whose students the importer refuses), and its completed comparisons are used as they are. "
                       "New seeds complete the cells.")


def fill_plan(store: RunStore, grid: dict | None = None, experiments=None, seeds=None) -> list[dict]:
    """Every unfinished run that the grid plans for ``store.profile`` (``experiments``: the tasks of these; by
    default the paper's, every experiment not marked ``extension``), one row each: ``task``, ``experiments``,
    ``seed``, ``id``, ``kind``, ``only`` (the task's experiments among those asked for: what a command selects it
    by), ``fillable`` and, when not, ``why`` and the ``teacher``. The rule is the pipeline's own
    (`kdlib.pipeline._teacher_for` decides whether a finished teacher can teach), so what is listed as
    fillable is what ``device-run`` or ``kdlib grid`` trains and what is not is what they skip."""
    from .grid import extension_experiments, load_grid, plan, task_configs
    from .pipeline import TeacherWeightsMissing, _teacher_for as teacher_for
    from .runs import run_id

    grid = grid or load_grid()
    wanted = set(experiments) if experiments is not None else set(grid.get("experiments") or {}) - set(
        extension_experiments(grid))
    tasks = [t for t in plan(store.profile, grid) if set(t.experiments) & wanted]
    tasks.sort(key=lambda t: t.kind != "teacher")  # stable: teachers first, as every runner orders them
    seeds = list(seeds) if seeds is not None else list(grid["profiles"][store.profile]["seeds"])
    out = []
    for seed in seeds:
        coming: set = set()  # teachers of this seed that the same command trains first
        for task in tasks:
            for cfg in task_configs(task, grid, [seed]):
                if store.run(cfg).done:
                    continue
                rid = run_id(cfg)
                row = {"task": task.name, "experiments": ",".join(task.experiments), "seed": seed, "id": rid,
                       "kind": cfg["kind"], "model": cfg["model"]["name"], "fillable": True, "why": "",
                       "only": ",".join(e for e in task.experiments if e in wanted)}
                tid = cfg.get("teacher") if cfg["kind"] == "student" and cfg.get("alpha", 0) > 0 else None
                if tid and tid not in coming:
                    try:
                        teacher_for(store, tid, [cfg])
                    except TeacherWeightsMissing:
                        row.update(fillable=False, teacher=tid, why=NOT_FILLABLE)
                    except FileNotFoundError:
                        row.update(fillable=False, teacher=tid, why="its teacher is neither finished nor planned")
                if cfg["kind"] == "teacher":
                    coming.add(rid)
                out.append(row)
    return out


def fill_commands(plan_rows: list[dict], profile: str, gpu: bool) -> list[dict]:
    """The commands that make every fillable run of ``plan_rows`` (:func:`fill_plan`): one per group of seeds
    whose fillable runs lie in the same experiments, each with the run ids it trains (``ids``)."""
    by_seed: dict = {}
    for r in plan_rows:
        if r["fillable"]:
            by_seed.setdefault(r["seed"], []).append(r)
    groups: dict = {}
    for seed, rs in sorted(by_seed.items()):
        exps = tuple(sorted({e for r in rs for e in r["only"].split(",")}, key=lambda e: (len(e), e)))
        groups.setdefault(exps, []).append(seed)
    return [{"seeds": seeds, "experiments": list(exps), "command": fill_command(profile, seeds, list(exps), gpu),
             "ids": sorted(r["id"] for s in seeds for r in by_seed[s])} for exps, seeds in groups.items()]


def missing_runs(store: RunStore, grid: dict | None = None, gpu: bool = False, experiments=None) -> list[dict]:
    """The tasks of ``store.profile`` whose runs are not all finished, one row per task: how many runs are
    missing, for which seeds, how many of them a command can make and the command that does (``gpu``: the
    profile is made for a GPU, so the command is the GPU machine's), and the seeds whose runs no command can
    make, with why (:func:`fill_plan`)."""
    from .grid import load_grid, plan, task_configs

    grid = grid or load_grid()
    rows = fill_plan(store, grid, experiments)
    by_task: dict = {}
    for r in rows:
        by_task.setdefault(r["task"], []).append(r)
    tasks = {t.name: t for t in plan(store.profile, grid)}
    missing = []
    for name, rs in by_task.items():
        ok = [r for r in rs if r["fillable"]]
        bad = [r for r in rs if not r["fillable"]]
        seeds_ok = sorted({r["seed"] for r in ok})
        missing.append({"task": name, "experiments": rs[0]["experiments"], "missing runs": len(rs),
                        "of": len(task_configs(tasks[name], grid)), "seeds": ", ".join(map(str, sorted({r["seed"] for r in rs}))),
                        "fillable": len(ok),
                        "command": fill_command(store.profile, seeds_ok, rs[0]["only"].split(","), gpu) if ok else "-",
                        "cannot be filled": (f"{len(bad)} (seed {', '.join(map(str, sorted({r['seed'] for r in bad})))}):"
                                             f" {bad[0]['why']}" if bad else "")})
    return missing


__all__ += ["missing_runs", "fill_plan", "fill_commands", "PARTIAL_SEED_POLICY"]


def fmt_ci(values, fmt: str = "{:.3f}") -> str:
    """'mean ± half-width' of the 95% interval over seeds ('-' when there is no value)."""
    m, h, n = mean_ci(list(values))
    if n == 0:
        return "-"
    return fmt.format(m) + ("" if math.isinf(h) else " ± " + fmt.format(h))


def select(rows: list[dict], **where) -> list[dict]:
    """The records matching every ``key=value``."""
    return [r for r in rows if all(r.get(k) == v for k, v in where.items())]


def distilled(rows: list[dict], model: str, teacher_regime: str, dataset: str, regime: str = "none",
              teacher_model: str = "resnet18", alpha: float = 0.5) -> list[dict]:
    """Students ``model`` (trained under ``regime``) distilled from the ``teacher_regime`` teacher."""
    return select(rows, kind="student", model=model, alpha=alpha, regime=regime, teacher_model=teacher_model,
                  teacher_regime=teacher_regime, dataset=dataset)


def load_predictions(store: RunStore, run_id_: str) -> dict:
    """The run's test predictions (full or compact record), see :meth:`kdlib.runs.Run.read_predictions`."""
    run = store.find(run_id_)
    if run is None:
        raise KeyError(f"no finished run {run_id_} in {store.root / store.profile} or its records")
    return run.read_predictions()


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
    out = {"teacher": {r: select(rows, kind="teacher", model="resnet18", dataset=main, regime=r) for r in REGIMES}}
    for model in ("lenet", "alexnet"):
        out[model] = {r: distilled(rows, model, r, main) for r in REGIMES}
    return out


def reference_runs(rows: list[dict], main: str) -> list[dict]:
    """The no-teacher reference: per student model and student regime, the runs trained alone (α = 0) and those
    distilled from the plain ResNet-18 teacher (the same cells as Table 1's 'none' row for clean inputs)."""
    out = []
    for model in ("lenet", "alexnet"):
        for r in REGIMES:
            alone = select(rows, kind="student", model=model, alpha=0.0, regime=r, dataset=main)
            dist = distilled(rows, model, "none", main, regime=r)
            if alone or dist:
                out.append({"model": model, "regime": r, "alone": alone, "distilled": dist})
    return out


def seed_counts(*groups) -> str:
    """The seeds behind a table row's cells, one count per group of rows ('2, 2, 1': teacher, LeNet, AlexNet)."""
    return ", ".join(str(len({x["seed"] for x in g})) for g in groups)


__all__ += ["fmt_ci", "select", "distilled", "load_predictions", "shown_seed", "table1_runs", "reference_runs",
            "seed_counts"]


def test_view(store: RunStore, spec: dict, need_images: bool = True) -> dict:
    """What chapters need of the profile's test split, from the data when they are here, else from the
    dataset sidecar committed with the records (``results/<profile>/datasets/``).

    Keys: ``labels``, ``indices`` (original test indices), ``classes``, ``human`` (CIFAR-10H rows in the
    same order, or None), ``images`` (uint8, N×H×W×C) with ``image_rows`` (their rows in the split:
    every row from the data, the explorer subset from the sidecar; None when neither is here),
    ``source`` ('data' or 'sidecar' or None).
    """
    from .data import CLASSES, DataError, human_labels_for, load_human_labels
    from .pipeline import split_of
    from .records import read_dataset_sidecar

    out = {"classes": CLASSES[spec["name"]], "human": None, "images": None, "image_rows": None, "source": None}
    try:
        test = split_of(spec, "test", "test_subset")
    except (DataError, FileNotFoundError, ValueError):
        test = None
    if test is not None:
        out.update(labels=test.labels.astype(np.int64), indices=test.indices.astype(np.int64), source="data")
        if need_images:
            out["images"], out["image_rows"] = test.images, np.arange(len(test.labels))
        if spec["name"] == "cifar10":
            try:
                out["human"] = human_labels_for(test, load_human_labels())
            except (DataError, ValueError):
                pass
    side = read_dataset_sidecar(store.results, store.profile, spec["name"]) if store.results is not None else None
    if side is not None and (test is None or (out["human"] is None and "human" in side)):
        if test is None:
            out.update(labels=side["labels"], indices=side["indices"], source="sidecar")
            if need_images:
                out["images"], out["image_rows"] = side["images"], side["image_index"].astype(np.int64)
        if "human" in side and np.array_equal(side["indices"], out["indices"]):
            out["human"] = side["human"]
    if "labels" not in out:
        out.update(labels=None, indices=None)
    return out


def align(pred: dict, view: dict, key: str = "test_probs"):
    """Rows of ``pred[key]`` reordered to the view's test order (joined on the original indices)."""
    pos = {int(i): k for k, i in enumerate(pred["test_indices"])}
    return pred[key][[pos[int(i)] for i in view["indices"]]]


__all__ += ["test_view", "align"]
