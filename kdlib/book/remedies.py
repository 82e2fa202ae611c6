"""What to do with a mixed-sample teacher (grid E12) and what a student learns from any teacher at all (E13).

*Remedies* (E12): for the students of a teacher, each remedy's accuracy against standard KD at T = 20, paired by
seed. Two remedies: logit-standardised KD (the E12 runs, ``kd_logits: standardized``) and the best temperature of
the E7 sweep, chosen per seed on the held-out half of the test set (even dataset index,
:func:`kdlib.blocks.calibration.calibration_mask`). So that the choice never sees the images it is judged on,
every accuracy of the remedies table is measured on the other half (odd index), standard KD's included.

*Random-teacher control* (E13): the student of a ResNet-18 with random weights, never trained, at the paper's T and
alpha. Against it, "the student learned something from this teacher" is separated from "the KD loss regularised
the student" (the α = 0 student has neither).
"""
from __future__ import annotations

import math

import numpy as np

from ..blocks.calibration import calibration_mask
from .extensions import by_seed, students
from .stats import paired_difference, verdict

__all__ = ["half_accuracy", "choose_temperature", "half_accuracies", "best_temperature_students", "remedy_rows",
           "no_teacher_students", "random_teacher_rows", "random_teacher_students", "remedy_advice", "HALVES", "REMEDIES"]


REMEDIES = {"lsd": "logit-standardised KD", "best_t": "the best held-out T"}


HALVES = ("heldout", "eval")  # even dataset index (chooses), odd (judges)


def half_accuracy(pred: dict, half: str) -> float:
    """Top-1 accuracy of test predictions (``test_probs`` or ``test_logits``, ``test_labels``, ``test_indices``)
    on one half of the test split: ``heldout`` (even dataset index) or ``eval`` (odd)."""
    if half not in HALVES:
        raise ValueError(f"half must be one of {list(HALVES)}, got {half!r}")
    scores = pred["test_probs"] if "test_probs" in pred else pred["test_logits"]
    keep = calibration_mask(pred["test_indices"])
    if half == "eval":
        keep = ~keep
    if not keep.any():
        return math.nan
    return float((np.asarray(scores)[keep].argmax(1) == np.asarray(pred["test_labels"])[keep]).mean())


def choose_temperature(candidates: dict) -> tuple[float, float]:
    """``{T: (held-out accuracy, eval accuracy)}`` -> (the T of the best held-out accuracy, its eval accuracy).
    Ties go to the higher T (the paper's side of the sweep); NaN candidates are skipped."""
    usable = {t: v for t, v in candidates.items() if not math.isnan(v[0])}
    if not usable:
        return math.nan, math.nan
    best = max(usable, key=lambda t: (usable[t][0], t))
    return float(best), float(usable[best][1])


def half_accuracies(store: object, selected: list[dict], half: str = "eval") -> dict:
    """{seed: accuracy on ``half``} of the selected runs (one per seed, :func:`kdlib.book.extensions.by_seed`)."""
    from .rows import load_predictions

    ids = by_seed(selected, "id")  # raises where two runs of one seed match
    return {s: half_accuracy(load_predictions(store, i), half) for s, i in ids.items()}


def best_temperature_students(store: object, rows: list[dict], model: str, teacher: str,
                              temperatures: list[float]) -> dict:
    """Per seed with every E7 temperature finished: ``{seed: (chosen T, eval-half accuracy)}``."""
    from .rows import load_predictions

    per_t = {t: {r["seed"]: r["id"] for r in students(rows, model, teacher, temperature=t)} for t in temperatures}
    seeds = set.intersection(*(set(v) for v in per_t.values())) if per_t else set()
    out = {}
    for seed in sorted(seeds):
        cands = {}
        for t, ids in per_t.items():
            pred = load_predictions(store, ids[seed])
            cands[t] = (half_accuracy(pred, "heldout"), half_accuracy(pred, "eval"))
        out[seed] = choose_temperature(cands)
    return out


def remedy_rows(store: object, rows: list[dict], model: str, teacher: str, base: str = "none",
                temperatures: tuple = (1.0, 2.0, 4.0, 8.0, 20.0), lsd_temperature: float = 2.0) -> dict:
    """For the students of ``model`` distilled from the ``teacher`` (a grid regime), all on the eval half:

    - ``penalty``: standard KD's student of this teacher − the ``base`` teacher's (T = 20), paired by seed;
    - ``lsd_gain`` / ``best_t_gain``: the remedy's student of this teacher − standard KD's student of it;
    - ``lsd_left`` / ``best_t_left``: the remedy's student of this teacher − standard KD's student of ``base``
      (what is left of the penalty; ≥ 0: recovered in full);
    - ``chosen``: {seed: T} of the best-temperature remedy.
    Each difference is :func:`kdlib.book.stats.paired_difference`'s dict."""
    kd = half_accuracies(store, students(rows, model, teacher))
    kd_base = half_accuracies(store, students(rows, model, base))
    lsd = half_accuracies(store, students(rows, model, teacher, temperature=lsd_temperature,
                                          kd_logits="standardized"))
    best = best_temperature_students(store, rows, model, teacher, list(temperatures))
    best_acc = {s: v[1] for s, v in best.items()}
    return {"penalty": paired_difference(kd, kd_base), "lsd_gain": paired_difference(lsd, kd),
            "lsd_left": paired_difference(lsd, kd_base), "best_t_gain": paired_difference(best_acc, kd),
            "best_t_left": paired_difference(best_acc, kd_base), "chosen": {s: v[0] for s, v in best.items()}}


def no_teacher_students(rows: list[dict], model: str, regime: str = "none") -> list[dict]:
    """The α = 0 students of ``model`` on ``regime`` inputs (hard labels only)."""
    from ..blocks.spec import bare_spec

    return [r for r in rows if r["kind"] == "student" and r["model"] == model and not r["alpha"]
            and r.get("teacher") is None and bare_spec(r["augment"]) == regime]


def random_teacher_rows(rows: list[dict], model: str, teachers: list[str]) -> list[dict]:
    """The random-teacher baseline beside the α = 0 one, one dict per comparison (all accuracy, whole test set,
    paired by seed): the random teacher's student − the α = 0 student (what the KD loss does with a teacher that
    knows nothing), then for each trained teacher regime its student − the random teacher's and − the α = 0
    student's."""
    random_s = by_seed(students(rows, model, "none", untrained=True))
    alone = by_seed(no_teacher_students(rows, model))
    out = [{"comparison": "random-weight teacher − no teacher (α = 0)", "teacher": None,
            "diff": paired_difference(random_s, alone)}]
    for t in teachers:
        trained = by_seed(students(rows, model, t))
        out.append({"comparison": "− random-weight teacher", "teacher": t, "diff": paired_difference(trained, random_s)})
        out.append({"comparison": "− no teacher (α = 0)", "teacher": t, "diff": paired_difference(trained, alone)})
    return out


def random_teacher_students(store: object, grid: dict, dataset: str) -> tuple[list[dict], str | None]:
    """(the finished students of E13's random-weight teacher on ``dataset``, the profile they come from): the
    store's own profile where it plans E13, else its ``-ext`` sibling's committed records (``quick`` ->
    ``quick-ext``, as the extensions chapter reads them); ``([], None)`` where neither has E13."""
    from ..runs.plan import experiment_names
    from ..runs.store import RunStore
    from .rows import collect

    profile = store.profile
    if "E13" not in experiment_names(profile, grid):
        profile = f"{profile}-ext"
        if profile not in grid["profiles"] or "E13" not in experiment_names(profile, grid):
            return [], None
        store = RunStore(store.root, profile)
    rows = [r for r in collect(store, grid, extensions=True) if r["dataset"] == dataset and r.get("teacher_untrained")
            and r["kind"] == "student" and r["regime"] == "none"]
    return rows, profile


def _verdict(d: dict) -> str:
    """'up', 'down' or 'unclear' for a paired difference (its 95% interval against zero)."""
    return {"reproduced": "up", "contradicted": "down"}.get(verdict(d, +1), "unclear")


def remedy_advice(results: list[tuple[str, str, dict]], short: bool = False) -> str:
    """One sentence per remedy from :func:`remedy_rows` results ``[(student name, teacher name, result)]`` (the
    plain teacher's row among them, named ``"none"``): where it raises a mixer teacher's student (the gain's
    interval above zero), whether the penalty is then closed (what is left no longer below zero), and what it
    costs the plain teacher's student. No claim without an interval that supports it. ``short``: without the
    per-student list (the front page's one line)."""
    out = []
    for key, name in REMEDIES.items():
        ups, costs, closed = [], [], 0
        for student, teacher, res in results:
            gain, left = res[f"{key}_gain"], res[f"{key}_left"]
            if teacher == "none":
                if _verdict(gain) == "down":
                    costs.append(f"{student} {gain['mean']:+.3f}")
                continue
            if _verdict(gain) == "up":
                shut = _verdict(left) != "down"
                closed += shut
                ups.append(f"{student} from the {teacher} teacher by {gain['mean']:+.3f} ({gain['n']} seeds"
                           + (", no remaining penalty detected" if shut else "") + ")")
        mixer_cells = sum(1 for _, t, r in results if t != "none" and r[f"{key}_gain"]["n"])
        if not mixer_cells:
            continue
        listed = "" if short else f" ({'; '.join(ups)})"
        text = (f"{name} raises {len(ups)} of {mixer_cells} mixer-teacher students{listed}" if ups else
                f"{name} raises none of {mixer_cells} mixer-teacher students beyond its interval")
        if ups:
            text += ("; each still trails the plain teacher's student" if closed == 0 else
                     "; none then trails the plain teacher's student detectably" if closed == len(ups) else
                     f"; {closed} of them no longer trail the plain teacher's student detectably, the rest do")
        if costs:
            text += f"; it costs the plain teacher's students ({', '.join(costs)})"
        if short:
            text = text.replace(" mixer-teacher students", " Mixup/CutMix-teacher students")
        out.append(text)
    return ". ".join(s[0].upper() + s[1:] for s in out) if out else "not run yet"
