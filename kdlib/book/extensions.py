"""The comparisons of the extension experiments (grid E6-E10), from :func:`kdlib.book.rows.collect` rows
(``extensions=True``). Every comparison pairs runs of one seed (they saw the same batch stream) and
returns :func:`kdlib.book.stats.paired_difference`'s dict: the mean difference, its 95% Student-t interval
over seeds, the seeds and the per-seed values.

A *student* here is selected by its model, the regime of its own inputs, the distillation temperature and
its teacher: the teacher's regime (``flipcrop+mixup``, or ``mixup`` for E6's paper-literal teacher, which
has no flip+crop), its label smoothing and whether it was temperature-scaled.
"""
from __future__ import annotations

import math

from ..blocks.spec import bare_spec
from .claims import MIXERS
from .stats import paired_difference

__all__ = ["MIXERS", "teacher_spec", "students", "teachers", "by_seed", "penalty", "difference", "contrast"]


def teacher_spec(regime: str, literal: bool = False) -> str:
    """The grid's name of a teacher regime: ``mixup`` -> ``flipcrop+mixup`` (E1), or ``mixup`` itself for
    the paper-literal teacher (E6); ``none`` and ``flipcrop`` are the same in both."""
    if regime in ("none", "flipcrop") or literal:
        return regime
    return f"flipcrop+{regime}"


def _base(spec: str | None) -> str | None:
    """A canonical augment spec without its arguments: 'flipcrop(padding=4,...)+mixup(alpha=1.0)' ->
    'flipcrop+mixup'."""
    return None if spec is None else bare_spec(spec)


def students(rows: list[dict], model: str, teacher: str | None, regime: str = "none", temperature: float = 20.0,
             label_smoothing: float = 0.0, calibration: str = "none", matched: bool = False,
             dataset: str | None = None, untrained: bool = False, kd_logits: str = "raw") -> list[dict]:
    """Distilled students (alpha > 0) of ``model`` whose teacher was trained with ``teacher`` (a grid
    regime such as ``flipcrop+mixup``), whose own inputs had ``regime``, at ``temperature``; ``matched``:
    the teacher was stopped early at the plain teacher's accuracy (E11); ``untrained``: the teacher is the
    random-weight control (E13); ``kd_logits``: ``standardized`` for logit-standardised KD (E12)."""
    out = []
    for r in rows:
        if (r["kind"] != "student" or r["model"] != model or not r["alpha"] or r.get("teacher") is None
                or (dataset and r["dataset"] != dataset)):
            continue
        if (_base(r.get("teacher_augment")) == teacher and _base(r.get("augment")) == regime
                and math.isclose(float(r["temperature"]), float(temperature))
                and math.isclose(float(r.get("teacher_label_smoothing") or 0.0), float(label_smoothing))
                and r.get("teacher_calibration", "none") == calibration
                and bool(r.get("teacher_matched")) == matched
                and bool(r.get("teacher_untrained")) == untrained
                and r.get("kd_logits", "raw") == kd_logits):
            out.append(r)
    return out


def teachers(rows: list[dict], regime: str, label_smoothing: float = 0.0, model: str = "resnet18", dataset: str | None = None,
             matched: bool = False, untrained: bool = False) -> list[dict]:
    """Teachers trained with the grid regime ``regime`` (e.g. ``flipcrop+cutout`` or ``cutout``); ``untrained``:
    the random-weight teachers of E13 instead."""
    return [r for r in rows if r["kind"] == "teacher" and r["model"] == model and _base(r.get("augment")) == regime
            and math.isclose(float(r.get("label_smoothing") or 0.0), float(label_smoothing))
            and bool(r.get("matched_to")) == matched and bool(r.get("untrained")) == untrained
            and (dataset is None or r["dataset"] == dataset)]


def by_seed(selected: list[dict], metric: str = "accuracy") -> dict:
    """{seed: value} of the selected rows (NaN values left out). Two rows of one seed mean the selection is
    ambiguous (two variants of a run matched it): an error, never a silent pick."""
    out = {}
    for r in selected:
        if r["seed"] in out:
            raise ValueError(f"two runs of seed {r['seed']} match one selection ({out[r['seed']][0]} and {r['id']}); "
                             f"select by every variant key (teacher regime, inputs, T, smoothing, calibration, match)")
        if not (isinstance(r.get(metric), float) and math.isnan(r[metric])):
            out[r["seed"]] = (r["id"], r[metric])
    return {s: v for s, (_, v) in out.items()}


def difference(a: list[dict], b: list[dict], metric: str = "accuracy") -> dict:
    """a - b, paired by seed."""
    return paired_difference(by_seed(a, metric), by_seed(b, metric))


def penalty(rows: list[dict], model: str, teacher: str, base: str = "none", metric: str = "accuracy",
            **where: object) -> dict:
    """How much the ``teacher``-regime teacher's student differs from the ``base`` teacher's student (same
    model, inputs, temperature, smoothing and calibration in ``where``), paired by seed."""
    return difference(students(rows, model, teacher, **where), students(rows, model, base, **where), metric)


def contrast(a: dict, b: dict) -> dict:
    """(a - b) of two paired differences, over the seeds both have: e.g. a penalty at T = 1 minus the
    same penalty at T = 20, with its own 95% interval."""
    from .stats import _difference

    pa, pb = dict(zip(a["seeds"], a["per_seed"])), dict(zip(b["seeds"], b["per_seed"]))
    return _difference({s: pa[s] - pb[s] for s in sorted(set(pa) & set(pb))})
