"""Statistics over seeds: means, t-intervals, paired differences, verdicts, Holm's adjustment."""
from __future__ import annotations

import math
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:  # names for annotations only
    from collections.abc import Iterable


__all__ = ["mean_ci", "paired_difference", "verdict", "holm", "fmt_ci"]


def mean_ci(values: Iterable[float], level: float = 0.95) -> tuple[float, float, int]:
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


def fmt_ci(values: Iterable[float], fmt: str = "{:.3f}") -> str:
    """'mean ± half-width' of the 95% interval over seeds ('-' when there is no value)."""
    m, h, n = mean_ci(list(values))
    if n == 0:
        return "-"
    return fmt.format(m) + ("" if math.isinf(h) else " ± " + fmt.format(h))
