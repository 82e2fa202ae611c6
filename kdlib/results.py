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


def collect(store: RunStore) -> list[dict]:
    """One flat record per finished run: config fields, teacher regime and test metrics."""
    teachers = {r.id: r.config for r in store.runs("teacher")}
    rows = []
    for run in store.runs():
        cfg = run.config
        metrics = run.read_json("metrics.json")
        test = metrics["test"]
        row = {"id": run.id, "kind": cfg["kind"], "dataset": cfg["dataset"]["name"], "model": cfg["model"]["name"],
               "regime": regime_key(cfg["augment"]), "seed": cfg["seed"], "alpha": cfg.get("alpha", 0.0),
               "temperature": cfg.get("temperature")}
        tcfg = teachers.get(cfg.get("teacher")) if cfg["kind"] == "student" else None
        row["teacher_model"] = tcfg["model"]["name"] if tcfg else None
        row["teacher_regime"] = regime_key(tcfg["augment"]) if tcfg else None
        for k in ("accuracy", "precision", "recall", "f1", "nll", "ece", "ece10", "class_separability",
                  "kl_to_human", "class_kl_to_human", "agreement_with_teacher", "kl_teacher_student"):
            row[k] = test.get(k, math.nan)
        row["discrimination"] = test["discrimination_embedding"]["discrimination"]
        row["cohesion"] = test["discrimination_embedding"]["cohesion"]
        row["adhesion"] = test["discrimination_embedding"]["adhesion"]
        row["discrimination_logits"] = test["discrimination_logits"]["discrimination"]
        row["cinic_accuracy"] = metrics.get("cinic10-imagenet", {}).get("accuracy", math.nan)
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
    """Mean and CI of a - b over the seeds both have."""
    seeds = sorted(set(a_by_seed) & set(b_by_seed))
    diffs = [a_by_seed[s] - b_by_seed[s] for s in seeds]
    mean, half, n = mean_ci(diffs, level)
    return {"mean": mean, "low": mean - half, "high": mean + half, "n": n, "seeds": seeds}


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


def _by_seed(rows, metric, **where) -> dict:
    out = {}
    for r in rows:
        if all(r.get(k) == v for k, v in where.items()) and not math.isnan(r[metric]):
            out[r["seed"]] = r[metric]
    return out


# claim id -> (statement, list of comparisons (label, metric, a-filter, b-filter, direction))
def _comparisons(main_dataset: str, mnist_dataset: str | None = None):
    aug = ["flipcrop", "cutout", "mixup", "cutmix"]
    t = {"kind": "teacher", "model": "resnet18", "dataset": main_dataset}
    le = {"kind": "student", "model": "lenet", "alpha": 0.5, "regime": "none", "teacher_model": "resnet18",
          "dataset": main_dataset}
    ax = {**le, "model": "alexnet"}
    return {
        "C1": ("Augmented teachers are more accurate.",
               [(f"teacher {r} vs none", "accuracy", {**t, "regime": r}, {**t, "regime": "none"}, +1) for r in aug]),
        "C2": ("Their LeNet students are less accurate.",
               [(f"LeNet <- {r} vs <- none", "accuracy", {**le, "teacher_regime": r}, {**le, "teacher_regime": "none"},
                 -1) for r in aug]),
        "C3": ("Their AlexNet students are worse for Mixup and CutMix, better for flip+crop and Cutout.",
               [(f"AlexNet <- {r} vs <- none", "accuracy", {**ax, "teacher_regime": r},
                 {**ax, "teacher_regime": "none"}, +1 if r in ("flipcrop", "cutout") else -1) for r in aug]),
        "C4": ("Augmenting the students hurts too (ablation).",
               [(f"LeNet({r}) <- none vs LeNet <- none", "accuracy", {**le, "regime": r, "teacher_regime": "none"},
                 {**le, "teacher_regime": "none"}, -1) for r in aug]
               + [(f"LeNet({r}) <- {r} vs LeNet <- none", "accuracy", {**le, "regime": r, "teacher_regime": r},
                   {**le, "teacher_regime": "none"}, -1) for r in aug]),
        "C5": ("Augmented teachers are more discriminative (class separability, discrimination).",
               [(f"teacher {r}: {m}", m, {**t, "regime": r}, {**t, "regime": "none"}, +1)
                for m in ("class_separability", "discrimination") for r in aug]),
        "C6": ("Augmented teachers' predictions are further from the human soft labels.",
               [(f"teacher {r}: KL to CIFAR-10H", "kl_to_human", {**t, "regime": r}, {**t, "regime": "none"}, +1)
                for r in aug]),
    }


CLAIMS = {k: v[0] for k, v in _comparisons("cifar10").items()}


def claims(rows: list[dict], main_dataset: str) -> list[dict]:
    """Every comparison of every claim, with its paired difference over seeds and its verdict."""
    out = []
    for cid, (statement, comps) in _comparisons(main_dataset).items():
        for label, metric, a, b, direction in comps:
            diff = paired_difference(_by_seed(rows, metric, **a), _by_seed(rows, metric, **b))
            out.append({"claim": cid, "statement": statement, "comparison": label, "metric": metric,
                        "direction": "a > b" if direction > 0 else "a < b", **diff,
                        "verdict": verdict(diff, direction)})
    return out


def claim_summary(results: list[dict]) -> dict:
    """claim -> one line: counts of verdicts over its comparisons."""
    summary = {}
    for cid in dict.fromkeys(r["claim"] for r in results):
        verdicts = [r["verdict"] for r in results if r["claim"] == cid]
        counts = {v: verdicts.count(v) for v in ("reproduced", "contradicted", "inconclusive", "not tested")
                  if verdicts.count(v)}
        if counts.get("not tested") == len(verdicts):
            overall = "not tested"
        elif counts.get("reproduced") == len(verdicts):
            overall = "reproduced"
        elif counts.get("contradicted", 0) and not counts.get("reproduced"):
            overall = "contradicted"
        elif counts.get("reproduced") or counts.get("contradicted"):
            overall = "mixed"
        else:
            overall = "inconclusive"
        summary[cid] = {"verdict": overall, "counts": counts}
    return summary


__all__.append("claim_summary")


def missing_runs(store: RunStore, grid: dict | None = None) -> list[dict]:
    """The tasks of ``store.profile`` whose runs are not all finished, with the command that fills each."""
    from .grid import load_grid, plan, student_groups, teacher_configs

    grid = grid or load_grid()
    missing = []
    for task in plan(store.profile, grid):
        p = task.params
        if task.kind == "teacher":
            configs = teacher_configs(grid, p["profile"], p["dataset"], p["model"], p["regime"])
        else:
            configs = [c for _, group in student_groups(grid, p["profile"], p["dataset"], p["teacher_model"],
                                                        p["teacher_regime"], p["students"], p["regime"],
                                                        p["temperature"], p["alpha"]) for c in group]
        absent = [c for c in configs if not store.run(c).done]
        if absent:
            missing.append({"task": task.name, "experiments": ",".join(task.experiments),
                            "missing runs": len(absent), "of": len(configs),
                            "command": f"python -m kdlib notebook {task.name} --profile {store.profile}"})
    return missing


__all__.append("missing_runs")


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
    run = next(r for r in store.runs() if r.id == run_id_)
    return run.read_arrays("predictions.npz")


__all__ += ["fmt_ci", "select", "distilled", "load_predictions"]
