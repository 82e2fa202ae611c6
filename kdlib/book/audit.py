"""Arithmetic checks of the paper's own tables (``book/paper_tables.yaml``): what the audit chapter shows.

Every rule here is an identity or an inequality that holds for *any* classifier, so a printed row
that breaks it cannot be right, whatever the model:

* macro F1 ≤ (macro precision + macro recall) / 2: each class's F1 is the harmonic mean of its
  precision and recall, which never exceeds their arithmetic mean, and averaging over classes
  keeps the inequality;
* on a class-balanced test set (CIFAR-10's test set; CINIC-10's ImageNet part, 7,000 per class)
  macro recall equals accuracy: recall_c = correct_c / n and accuracy = Σ correct_c / (C·n).

Printed values carry three decimals, so each is known to ±0.0005; a rule is reported broken only
beyond that rounding.
"""
from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:  # names for annotations only
    from collections.abc import Iterator


__all__ = ["prf_rows", "f1_bound_violations", "recall_accuracy_violations", "ROUNDING"]


ROUNDING = 0.0005  # half a unit of the third decimal


def prf_rows(tables: dict) -> Iterator[tuple]:
    """(table, model, regime, test set, accuracy, precision, recall, F1) for every row of Tables 6–9."""
    for table in ("table6", "table7", "table8", "table9"):
        for model, by_regime in tables[table].items():
            if model == "caption":
                continue
            for regime, sets in by_regime.items():
                for test_set, (acc, prec, rec, f1) in sets.items():
                    yield table, model, regime, test_set, acc, prec, rec, f1


def f1_bound_violations(tables: dict) -> list[dict]:
    """Rows whose F1 exceeds (P + R) / 2 by more than the printed rounding allows."""
    out = []
    for table, model, regime, test_set, acc, prec, rec, f1 in prf_rows(tables):
        bound = (prec + rec) / 2
        # worst case for the paper: F1 rounded up by 0.0005, P and R rounded down by 0.0005 each
        if f1 - ROUNDING > bound + ROUNDING + 1e-9:
            out.append({"table": table, "model": model, "regime": regime, "test set": test_set,
                        "precision": prec, "recall": rec, "F1": f1, "bound (P+R)/2": round(bound, 4),
                        "excess": round(f1 - bound, 4)})
    return out


def recall_accuracy_violations(tables: dict) -> list[dict]:
    """Rows whose macro recall differs from accuracy beyond rounding (both test sets are balanced)."""
    out = []
    for table, model, regime, test_set, acc, prec, rec, f1 in prf_rows(tables):
        if abs(rec - acc) > 2 * ROUNDING + 1e-9:
            out.append({"table": table, "model": model, "regime": regime, "test set": test_set,
                        "accuracy": acc, "recall": rec, "difference": round(rec - acc, 4)})
    return out
