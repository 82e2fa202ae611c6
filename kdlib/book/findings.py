"""What the data say, in sentences built from the numbers (the conclusion and the front page).

Every sentence states its numbers and the seeds behind them, and a qualitative word ("harmless", "cost")
only where every number it summarises agrees with it; otherwise the sentence lists the numbers alone. The
thresholds are stated here and in the book.
"""
from __future__ import annotations

import math
from typing import TYPE_CHECKING

from .claims import MIXERS, seeds_needed, table1_runs
from .names import MODEL_NAMES, REGIME_NAMES
from .rows import PAPER_REGIMES
from .stats import mean_ci, paired_difference

if TYPE_CHECKING:  # names for annotations only
    from collections.abc import Iterable


__all__ = ["seeds_text", "cell_means", "teacher_sentence", "student_sentences", "certainty_sentence",
           "seeds_to_settle", "short_findings", "cell_texts", "HARMLESS", "STANDARD", "MIXED", "mixed_penalty"]


STANDARD = ["flipcrop", "cutout"]  # the regimes without a mixed-sample mixer


MIXED = ["mixup", "cutmix"]        # mixed-sample (interpolating) regimes


HARMLESS = 0.01  # a student within one point of the plain teacher's student is "not hurt" (point estimate)


def cell_means(rows: list[dict], main: str) -> dict:
    """{"teacher" | "lenet" | "alexnet": {regime: (mean accuracy, seeds)}} of Table 1's cells."""
    cells = table1_runs(rows, main)
    out = {}
    for who, by_regime in cells.items():
        out[who] = {}
        for r, rs in by_regime.items():
            m, _, n = mean_ci([x["accuracy"] for x in rs])
            out[who][r] = (m, n)
    return out


def seeds_text(ns: Iterable[int]) -> str:
    """'2 seeds', '1–2 seeds' for the fewest and most of ``ns`` (zeros ignored)."""
    ns = [n for n in ns if n]
    if not ns:
        return "no seed"
    lo, hi = min(ns), max(ns)
    return f"{lo} seed{'s' if lo != 1 else ''}" if lo == hi else f"{lo}–{hi} seeds"


def _pts(x: float) -> str:
    text = f"{100 * x:+.1f}"
    return "0.0" if text in ("+0.0", "-0.0") else text


def teacher_sentence(rows: list[dict], main: str) -> str:
    """The teachers: each augmented regime's gain over the plain teacher, and each mixer's over flip+crop."""
    means = cell_means(rows, main)["teacher"]
    base, nb = means["none"]
    if not nb:
        return "No plain teacher is finished, so no teacher comparison is made."
    gains = {r: means[r][0] - base for r in PAPER_REGIMES[1:] if means[r][1]}
    if not gains:
        return f"Only the plain teacher is finished ({base:.3f})."
    text = (f"Teachers: the plain ResNet-18 reaches {base:.3f}; "
            + ", ".join(f"{REGIME_NAMES[r]} {_pts(g)}" for r, g in gains.items()) + " points")
    if "flipcrop" in gains:
        own = {r: means[r][0] - means["flipcrop"][0] for r in MIXERS if r in gains}
        if own:
            text += (", of which the mixers on top of flip+crop add "
                     + ", ".join(f"{REGIME_NAMES[r].split(' + ')[-1]} {_pts(d)}" for r, d in own.items())
                     + " points")
    return text + f" ({seeds_text(n for _, n in means.values())})."


def student_sentences(rows: list[dict], main: str) -> list[str]:
    """Per student model: its accuracy by teacher regime, each against the plain teacher's student, and the
    summary word only where every point estimate agrees with it."""
    means = cell_means(rows, main)
    out = []
    for model in ("lenet", "alexnet"):
        cells = means[model]
        if not cells["none"][1]:
            continue
        got = [r for r in PAPER_REGIMES if cells[r][1]]
        text = (f"{MODEL_NAMES[model]} students by teacher regime: "
                + ", ".join(f"{REGIME_NAMES[r]} {cells[r][0]:.3f}" for r in got)
                + f" ({seeds_text(cells[r][1] for r in got)})")
        words = _student_words(cells)
        out.append(text + ("; " + "; ".join(words) if words else "") + ".")
    return out


def _student_words(cells: dict) -> list[str]:
    """The comparisons of one student model's cells with the plain teacher's student, with the summary word
    only where every point estimate agrees with it."""
    base = cells["none"][0]
    std = {r: cells[r][0] - base for r in STANDARD if cells[r][1]}
    mix = {r: cells[r][0] - base for r in MIXED if cells[r][1]}
    words = []
    if std and all(abs(d) <= HARMLESS for d in std.values()):
        words.append(f"the standard-augmentation teachers' students are within {100 * HARMLESS:.0f} point of "
                     f"the plain teacher's ({', '.join(_pts(d) for d in std.values())})")
    elif std:
        words.append("against the plain teacher's student, the standard-augmentation teachers' are "
                     + ", ".join(f"{REGIME_NAMES[r]} {_pts(d)}" for r, d in std.items()) + " points")
    if mix and all(d < -HARMLESS for d in mix.values()):
        words.append("the mixed-sample teachers' students lose "
                     + " and ".join(f"{-100 * d:.1f}" for d in mix.values()) + " points ("
                     + ", ".join(REGIME_NAMES[r] for r in mix) + ")")
    elif mix:
        words.append("the mixed-sample teachers' are "
                     + ", ".join(f"{REGIME_NAMES[r]} {_pts(d)}" for r, d in mix.items()) + " points")
    return words


def short_findings(rows: list[dict], main: str) -> str:
    """The front page's line under its table of cells: per student model, only the comparisons with the plain
    teacher's student (the accuracies themselves are in :func:`cell_texts`' table), with the same words and
    thresholds as :func:`student_sentences`."""
    means = cell_means(rows, main)
    parts = []
    for model in ("lenet", "alexnet"):
        if not means[model]["none"][1]:
            continue
        words = _student_words(means[model])
        if words:
            parts.append(f"{MODEL_NAMES[model]}: " + "; ".join(words))
    return (". ".join(parts) + ".") if parts else "No student of the plain teacher is finished yet."


def cell_texts(rows: list[dict], main: str) -> dict:
    """{"teacher_none": "0.840 (2)", "lenet_mixup": "-", ...}: the mean test accuracy of each of Table 1's cells
    with, in brackets, the seeds it rests on (the front page's table)."""
    out = {}
    for who, by_regime in cell_means(rows, main).items():
        for r in PAPER_REGIMES:
            m, n = by_regime.get(r, (math.nan, 0))
            out[f"{who}_{r}"] = f"{m:.3f} ({n})" if n else "-"
    return out


def certainty_sentence(summary: dict, min_seeds: int, explain: bool = True) -> str:
    """How sure the claims are: the seeds behind them and how many are settled (every comparison on
    ``min_seeds`` seeds or more); ``explain=False`` leaves out what a t(1) interval is (the front page says it
    once, for both parts)."""
    tested = {c: s for c, s in summary.items() if s["measured"]}
    if not tested:
        return "No claim is measured yet."
    lo = min(s["seeds_min"] for s in tested.values())
    hi = max(s["seeds_max"] for s in tested.values())
    settled = [c for c, s in tested.items() if s["seeds_min"] >= min_seeds and not s["untested"]]
    text = f"{len(tested)} of {len(summary)} claims are measured, on {seeds_text([lo, hi])} per comparison"
    if lo <= 2 and explain:
        text += (" (with two seeds a 95% interval is a t(1) interval, 12.7 times half the seeds' difference; "
                 "one seed has none)")
    if settled:
        return text + f"; {len(settled)} rest on {min_seeds} seeds or more everywhere: {', '.join(settled)}."
    return text + f"; none rests on {min_seeds} seeds everywhere, so no claim is decided."


def seeds_to_settle(results: list[dict], min_seeds: int) -> dict:
    """claim -> the seeds that would settle it if every comparison's mean and spread stayed as measured: for each
    comparison the larger of ``min_seeds`` and what its paired interval needs to exclude zero after Holm's
    adjustment is ignored (:func:`kdlib.book.claims.seeds_needed`, a rough guide); ``math.inf`` where a comparison's
    interval would never exclude zero at this mean and spread (more than 50 seeds), ``None`` where a comparison
    has fewer than two seeds (no spread to go by)."""
    out: dict = {}
    for r in results:
        if r.get("supplementary") or r["verdict"] in ("not tested", "precondition failed"):
            continue
        cid = r["claim"]
        if r["n"] < 2:
            out[cid] = None if out.get(cid, 0) is not math.inf else math.inf
            continue
        if r.get("verdict_holm", r["verdict"]) == "inconclusive":
            n = seeds_needed(r["per_seed"])
            need = math.inf if n is None or isinstance(n, str) else max(min_seeds, n)
        else:
            need = max(min_seeds, r["n"])
        if out.get(cid, 0) is None and need is not math.inf:  # one-seed comparisons: unknown, unless one never settles
            continue
        out[cid] = need if out.get(cid, 0) is None else max(out.get(cid, 0), need)
    return out


def mixed_penalty(rows: list[dict], main: str, model: str) -> dict:
    """Paired difference (mixed-sample teacher's student − plain teacher's student) per mixed regime."""
    from .claims import _filters
    from .rows import _by_seed

    _, le, _ = _filters(main)
    base = _by_seed(rows, "accuracy", **{**le, "model": model, "teacher_regime": "none"})
    return {r: paired_difference(_by_seed(rows, "accuracy", **{**le, "model": model, "teacher_regime": r}), base)
            for r in MIXED}
