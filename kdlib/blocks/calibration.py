"""Post-hoc temperature scaling (Guo et al. 2017): one scalar ``s`` that divides a model's logits so that
the mean negative log-likelihood on held-out data is smallest. It changes confidence, never the
predicted class, so a teacher's accuracy is untouched and only its calibration moves.

Grid experiment E10 distils students from augmented teachers after this scaling. The held-out data is
half of the test split, the images of even dataset index (:func:`calibration_mask`), the same half for
every teacher; the scale is one number fitted on those labels, and the teacher's calibration after
scaling is measured on the other half (:func:`temperature_scaling_report`).
"""
from __future__ import annotations

import math
from typing import TYPE_CHECKING

import numpy as np
import torch
from torch import nn

if TYPE_CHECKING:  # names for annotations only
    from numpy.typing import ArrayLike


__all__ = ["fit_temperature", "calibration_mask", "temperature_scaling_report", "ScaledTeacher", "nll"]


BOUNDS = (0.05, 50.0)  # a scale outside these is a degenerate model or a bug, not calibration


def nll(logits: ArrayLike, labels: ArrayLike, scale: float = 1.0) -> float:
    """Mean negative log-likelihood of ``softmax(logits / scale)`` at integer ``labels``."""
    z = np.asarray(logits, dtype=np.float64) / float(scale)
    z = z - z.max(axis=1, keepdims=True)
    logp = z - np.log(np.exp(z).sum(axis=1, keepdims=True))
    return float(-logp[np.arange(len(z)), np.asarray(labels, dtype=np.int64)].mean())


def fit_temperature(logits: ArrayLike, labels: ArrayLike) -> float:
    """The scale ``s`` in ``BOUNDS`` minimising :func:`nll` (bounded Brent search on ``log s``).

    Raises ValueError, naming the cause, for empty, mismatched or non-finite inputs."""
    from scipy.optimize import minimize_scalar

    z = np.asarray(logits, dtype=np.float64)
    y = np.asarray(labels)
    if z.ndim != 2 or len(z) == 0 or len(y) != len(z):
        raise ValueError(f"temperature scaling needs logits (N, C) and N labels, got {z.shape} and {y.shape}")
    if not np.isfinite(z).all():
        raise ValueError("temperature scaling: the logits hold NaN or Inf; the teacher's predictions are corrupt "
                         "(retrain the teacher)")
    if y.min() < 0 or y.max() >= z.shape[1]:
        raise ValueError(f"temperature scaling: labels outside [0, {z.shape[1]})")
    res = minimize_scalar(lambda u: nll(z, y, math.exp(u)), bounds=tuple(map(math.log, BOUNDS)), method="bounded",
                          options={"xatol": 1e-6})
    return float(math.exp(res.x))


def calibration_mask(indices: ArrayLike) -> np.ndarray:
    """True for the held-out half that fits the scale: test images of even dataset index."""
    return np.asarray(indices, dtype=np.int64) % 2 == 0


def temperature_scaling_report(logits: ArrayLike, labels: ArrayLike, indices: ArrayLike, bins: int = 15) -> dict:
    """Fit the scale on the even-index half; NLL and ECE before and after on the odd-index half."""
    from .metrics import ece, softmax_rows

    z, y = np.asarray(logits, dtype=np.float64), np.asarray(labels, dtype=np.int64)
    fit = calibration_mask(indices)
    if fit.all() or not fit.any():
        raise ValueError("temperature scaling needs test images of both even and odd index")
    s = fit_temperature(z[fit], y[fit])
    ev = ~fit

    def probs(scale):
        return softmax_rows(z[ev] / scale)

    return {"temperature": s, "n_fit": int(fit.sum()), "n_eval": int(ev.sum()),
            "nll_before": nll(z[ev], y[ev]), "nll_after": nll(z[ev], y[ev], s),
            "ece_before": ece(probs(1.0), y[ev], bins), "ece_after": ece(probs(s), y[ev], bins)}


class ScaledTeacher(nn.Module):
    """A frozen teacher whose logits are divided by ``scale`` (what an online teacher gives a student)."""

    def __init__(self, teacher: nn.Module, scale: float):
        super().__init__()
        if not (isinstance(scale, (int, float)) and math.isfinite(scale) and scale > 0):
            raise ValueError(f"scale must be a finite number > 0, got {scale!r}")
        self.teacher = teacher
        self.scale = float(scale)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.teacher(x) / self.scale
