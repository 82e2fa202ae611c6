"""The health rule: is a finished run trustworthy enough to be shown?"""
from __future__ import annotations

import math

__all__ = ["run_health"]


# --------------------------------------------------------------------------- the failed-run rule
def run_health(metrics: dict, history: list[dict], num_classes: int = 10, untrained: bool = False) -> dict:
    """``{"failed": bool, "reasons": [...]}`` by the rule the book states.

    A run failed when (a) its test accuracy lies within 3 binomial standard errors of chance,
    1/C (the standard error of chance accuracy on n test images: sqrt(p(1-p)/n), p = 1/C), or
    (b) a training loss in its history is not finite, or (c) its training loss is flat: the
    last epoch's loss is at least 98% of the first epoch's (with two epochs or more).
    ``untrained``: a random-weight teacher (E13) is at chance by design; only a non-finite accuracy fails it.
    """
    reasons = []
    if untrained:
        acc = metrics.get("test", {}).get("accuracy")
        ok = isinstance(acc, (int, float)) and math.isfinite(acc)
        return {"failed": not ok, "reasons": [] if ok else ["no finite test accuracy"]}
    test = metrics.get("test", {})
    acc, n = test.get("accuracy"), test.get("n")
    if acc is None or not isinstance(acc, (int, float)) or not math.isfinite(acc):
        reasons.append("no finite test accuracy")
    else:
        p = 1.0 / num_classes
        se = math.sqrt(p * (1 - p) / max(1, int(n or 1)))
        if abs(acc - p) <= 3 * se:
            reasons.append(f"test accuracy {acc:.3f} is at chance (1/{num_classes} ± 3 s.e. = "
                           f"{p - 3 * se:.3f}–{p + 3 * se:.3f}, n = {n})")
    losses = [h.get("loss") for h in history]
    if any(not isinstance(v, (int, float)) or not math.isfinite(v) for v in losses):
        reasons.append("a training loss is not finite")
    elif len(losses) >= 2 and losses[-1] >= 0.98 * losses[0]:
        reasons.append(f"flat training loss ({losses[0]:.3f} at epoch 1, {losses[-1]:.3f} at the end)")
    return {"failed": bool(reasons), "reasons": reasons}
