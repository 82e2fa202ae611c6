"""What a student learns of its teacher, and which property of a teacher predicts a good student.

*Fidelity* (Stanton et al. 2021's question, asked of the paper's grid): for every distilled student,
its top-1 agreement with its teacher and KL(teacher || student) on the test set, beside accuracy.

*Predictors*: for every teacher with a distilled student of a given model (each (teacher, seed) one
point), the correlation between a property of the teacher and the student's accuracy, with a
percentile bootstrap interval over teachers. A property that predicts well across regimes and
seeds is a candidate explanation of the paper's dichotomy; with few teachers the intervals say how
little that is.
"""
from __future__ import annotations

import math
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:  # names for annotations only
    from numpy.typing import ArrayLike


__all__ = ["PREDICTORS", "logit_std", "t_stddev", "teacher_properties", "teacher_student_pairs", "bootstrap_corr",
           "correlations", "T_STDDEV_BATCH"]


# teacher property -> (label, the direction a "better-looking" teacher has)
PREDICTORS = {
    "accuracy": "teacher accuracy",
    "nll": "teacher test NLL",
    "ece": "teacher ECE (15 bins)",
    "kl_to_human": "teacher KL to CIFAR-10H",
    "class_separability": "teacher class separability",
    "discrimination": "teacher discrimination (embedding)",
    "logit_std": "std of the teacher's logits",
    "adaptive_ece": "teacher adaptive ECE (15 equal-mass bins)",
    "t_stddev": "teacher T. stddev (Wang et al. 2022)",
}

T_STDDEV_BATCH = 64  # images per batch of T. stddev (the batch size of Wang et al.'s CIFAR-100 code)


def t_stddev(logits: ArrayLike, labels: ArrayLike, batch_size: int = T_STDDEV_BATCH, seed: int | None = 0) -> float:
    """Wang et al. (NeurIPS 2022)'s *T. stddev*, a property of the teacher alone: the standard deviation over
    batches of the teacher's mean predicted probability of the true class.

    Here: the teacher's probabilities (softmax at T = 1) on the images it teaches (the clean training split for
    the students of E2), the images shuffled by a fixed ``seed`` (``None``: kept in order) and cut into
    consecutive batches of ``batch_size``, the last incomplete batch dropped (as a loader with ``drop_last``);
    per batch the mean of p(true class), then the population std of those means. Needs two full batches."""
    z = np.asarray(logits, dtype=np.float64)
    y = np.asarray(labels)
    if z.ndim != 2 or y.shape != (z.shape[0],):
        raise ValueError(f"logits must be (N, C) and labels (N,), got {z.shape} and {y.shape}")
    if isinstance(batch_size, bool) or not isinstance(batch_size, (int, np.integer)) or batch_size < 1:
        raise ValueError(f"batch_size must be a positive integer, got {batch_size!r}")
    n_batches = len(y) // batch_size
    if n_batches < 2:
        raise ValueError(f"T. stddev needs at least two batches of {batch_size} images, got {len(y)} images")
    from .metrics import softmax_rows

    p_true = softmax_rows(z)[np.arange(len(y)), y.astype(np.int64)]
    if seed is not None:
        p_true = p_true[np.random.default_rng(seed).permutation(len(y))]
    means = p_true[:n_batches * batch_size].reshape(n_batches, batch_size).mean(axis=1)
    return float(means.std())


def teacher_properties(test_logits: ArrayLike | None, test_labels: ArrayLike | None,
                       train_logits: ArrayLike | None = None, train_labels: ArrayLike | None = None) -> dict:
    """The predictors computed from a teacher's predictions rather than read from its metrics: ``logit_std``
    and ``adaptive_ece`` from its test logits, ``t_stddev`` from its training-split logits (NaN where missing, or
    where the split has fewer than two batches of :data:`T_STDDEV_BATCH`)."""
    from .metrics import adaptive_ece, softmax_rows

    out = {"logit_std": logit_std(test_logits), "adaptive_ece": math.nan, "t_stddev": math.nan}
    if test_logits is not None and test_labels is not None:
        out["adaptive_ece"] = adaptive_ece(softmax_rows(np.asarray(test_logits, dtype=np.float64)), test_labels)
    if train_logits is not None and train_labels is not None and len(train_labels) >= 2 * T_STDDEV_BATCH:
        out["t_stddev"] = t_stddev(train_logits, train_labels)  # (a smoke profile's few images: left out)
    return out


def logit_std(logits: ArrayLike) -> float:
    """Mean over images of the standard deviation of an image's logits across classes (population std).

    It is what temperature acts on: a teacher with small logit spread gives near-uniform targets at T = 20.
    Shift-invariant per image, so it does not depend on the logits' arbitrary offset. NaN for ``None``."""
    if logits is None:
        return math.nan
    z = np.asarray(logits, dtype=np.float64)
    if z.ndim != 2 or z.shape[0] == 0:
        raise ValueError(f"logits must be (N, C) with N >= 1, got shape {z.shape}")
    return float(z.std(axis=1).mean())


def teacher_student_pairs(rows: list[dict], student_model: str, alpha: float = 0.5, regime: str = "none",
                          teacher_logits: dict | None = None, properties: dict | None = None) -> list[dict]:
    """One record per (teacher, seed) with a distilled ``student_model`` student trained on ``regime`` inputs:
    the teacher's properties (:data:`PREDICTORS`) and the student's accuracy, agreement with and KL to its
    teacher. ``rows`` are :func:`kdlib.book.rows.collect`'s; ``teacher_logits``: teacher id -> test logits
    (or None where the record kept none); ``properties``: teacher id -> :func:`teacher_properties` (its values
    take precedence). Students of logit-standardised KD (E12) or of a random-weight teacher (E13) are left out."""
    teachers = {r["id"]: r for r in rows if r["kind"] == "teacher"}
    out = []
    for s in rows:
        if (s["kind"] != "student" or s["model"] != student_model or s["regime"] != regime
                or not math.isclose(float(s.get("alpha") or 0.0), alpha) or s.get("teacher") not in teachers
                or s.get("kd_logits", "raw") != "raw" or s.get("teacher_untrained")):
            continue
        t = teachers[s["teacher"]]
        rec = {"teacher": t["id"], "teacher_model": t["model"], "teacher_regime": t["regime"], "seed": t["seed"],
               "student": s["id"], "student_accuracy": s["accuracy"],
               "agreement": s.get("agreement_with_teacher", math.nan), "kl_teacher_student": s.get("kl_teacher_student",
                                                                                                   math.nan)}
        computed = (properties or {}).get(t["id"]) or {}
        for key in PREDICTORS:
            if key in computed:
                rec[key] = computed[key]
            elif key == "logit_std":
                rec[key] = logit_std((teacher_logits or {}).get(t["id"]))
            else:
                rec[key] = t.get(key, math.nan)
        out.append(rec)
    return out


def _rank(v: np.ndarray) -> np.ndarray:
    """Average ranks (ties share the mean rank), as scipy.stats.rankdata."""
    order = np.argsort(v, kind="mergesort")
    ranks = np.empty(len(v), dtype=float)
    sv = v[order]
    i = 0
    while i < len(v):
        j = i
        while j + 1 < len(v) and sv[j + 1] == sv[i]:
            j += 1
        ranks[order[i:j + 1]] = (i + j) / 2.0 + 1
        i = j + 1
    return ranks


def _corr(x: np.ndarray, y: np.ndarray, method: str) -> float:
    if method == "spearman":
        x, y = _rank(x), _rank(y)
    if x.std() == 0 or y.std() == 0:
        return math.nan
    return float(np.corrcoef(x, y)[0, 1])


def bootstrap_corr(x: ArrayLike, y: ArrayLike, method: str = "pearson", n_boot: int = 2000, level: float = 0.95,
                   seed: int = 0) -> dict:
    """Correlation of ``x`` and ``y`` (pairs with a NaN dropped) with a percentile bootstrap interval.

    Resamples the pairs with replacement ``n_boot`` times (a fixed ``seed``: the book is reproducible);
    resamples where either variable is constant are skipped. Fewer than 4 pairs: no interval."""
    if method not in ("pearson", "spearman"):
        raise ValueError(f"method must be 'pearson' or 'spearman', got {method!r}")
    x, y = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
    if x.shape != y.shape or x.ndim != 1:
        raise ValueError(f"x and y must be 1-d and of one length, got {x.shape} and {y.shape}")
    keep = ~(np.isnan(x) | np.isnan(y))
    x, y = x[keep], y[keep]
    n = len(x)
    r = _corr(x, y, method) if n >= 2 else math.nan
    lo = hi = math.nan
    if n >= 4 and not math.isnan(r):
        rng = np.random.default_rng(seed)
        idx = rng.integers(0, n, size=(n_boot, n))
        boots = np.array([_corr(x[i], y[i], method) for i in idx])
        boots = boots[~np.isnan(boots)]
        if len(boots) >= n_boot // 2:
            lo, hi = (float(q) for q in np.quantile(boots, [(1 - level) / 2, (1 + level) / 2]))
    return {"r": r, "low": lo, "high": hi, "n": n, "method": method}


def correlations(pairs: list[dict], target: str = "student_accuracy", method: str = "spearman",
                 **kw: object) -> list[dict]:
    """:func:`bootstrap_corr` of every predictor against ``target`` over ``pairs``."""
    out = []
    for key, label in PREDICTORS.items():
        res = bootstrap_corr([p[key] for p in pairs], [p[target] for p in pairs], method=method, **kw)
        out.append({"predictor": key, "label": label, **res})
    return out
