"""Hinton-style knowledge distillation loss (the frozen teacher itself lives in :func:`kdlib.train.loop.fit`).

Convention (as in Hinton et al. 2015 and the paper, Sec. 3.2): **alpha weights the soft term**::

    L = (1 - alpha) * CE(student, targets) + alpha * T^2 * KL(softmax(teacher/T) || softmax(student/T))

with the KL summed over classes and averaged over the batch (``batchmean``). The paper's public
code used ``reduction='mean'``, which also divides by the number of classes and makes the soft
term 10x too small on CIFAR-10; torchdistill puts alpha on the hard term instead. With the
paper's alpha=0.5 both weightings coincide, the reduction does not.

``standardize=True`` is *logit standardisation* (Sun et al., CVPR 2024): each teacher and student logit
vector is z-scored per image (minus its mean over classes, divided by its population standard deviation)
before the division by T, so the student matches the shape of the teacher's logits, not their scale (a
grid experiment's ``kd_logits: standardized``; E12).
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F

__all__ = ["kd_loss", "kd_loss_parts", "soft_cross_entropy", "check_kd_params", "standardize_logits",
           "KD_LOGITS"]


# how the logits enter the soft term: as they are (Hinton), or z-scored per image (Sun et al. 2024)
KD_LOGITS = ("raw", "standardized")

STD_EPS = 1e-7  # added to the per-image std: a constant logit vector becomes zeros, not NaN


def check_kd_params(temperature: float, alpha: float) -> None:
    if isinstance(temperature, bool) or not isinstance(temperature, (int, float)) or not (
        temperature > 0 and math.isfinite(temperature)
    ):
        raise ValueError(f"temperature must be a finite number > 0 (the paper uses 20), got {temperature!r}")
    if isinstance(alpha, bool) or not isinstance(alpha, (int, float)) or not (0.0 <= alpha <= 1.0):
        raise ValueError(
            f"alpha must be in [0, 1] (weight of the soft, teacher term; 0 = no teacher), got {alpha!r}"
        )


def standardize_logits(logits: torch.Tensor, eps: float = STD_EPS) -> torch.Tensor:
    """``(z - mean(z)) / (std(z) + eps)`` per row of (N, C) logits, the std the population one (ddof 0).

    Invariant to adding a constant to a row and to multiplying it by a positive number (up to ``eps``):
    what is left is the order and relative spacing of the classes."""
    if logits.dim() != 2:
        raise ValueError(f"logits must be (N, C), got shape {tuple(logits.shape)}")
    mean = logits.mean(dim=1, keepdim=True)
    std = logits.std(dim=1, keepdim=True, correction=0)
    return (logits - mean) / (std + eps)


def soft_cross_entropy(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Mean cross-entropy against int labels (N,) or soft targets (N, C)."""
    if targets.dim() == 1:
        return F.cross_entropy(logits, targets.long())
    return -(targets.to(logits.dtype) * F.log_softmax(logits, dim=1)).sum(dim=1).mean()


def _check_shapes(student_logits, teacher_logits, targets):
    if student_logits.dim() != 2:
        raise ValueError(f"student_logits must be (N, C), got shape {tuple(student_logits.shape)}")
    if teacher_logits is not None and teacher_logits.shape != student_logits.shape:
        raise ValueError(
            f"teacher_logits shape {tuple(teacher_logits.shape)} differs from student_logits shape "
            f"{tuple(student_logits.shape)}: teacher and student must share the batch and the class count"
        )
    n, c = student_logits.shape
    if targets.dim() == 1:
        if targets.shape[0] != n:
            raise ValueError(f"targets hold {targets.shape[0]} labels for a batch of {n}")
    elif targets.shape != (n, c):
        raise ValueError(f"targets must be ({n},) labels or ({n}, {c}) soft targets, got {tuple(targets.shape)}")


def kd_loss_parts(student_logits: torch.Tensor, teacher_logits: torch.Tensor, targets: torch.Tensor,
                  temperature: float = 20.0, alpha: float = 0.5, standardize: bool = False) -> dict:
    """The loss and its named parts: ``{"loss", "loss_ce", "loss_kd"}``.

    ``loss_kd`` is the already-scaled soft term, ``T^2 * KL`` (before the alpha weight).
    With ``alpha=0`` the teacher is not needed and may be ``None``. ``standardize``: both logit vectors are
    z-scored per image before the division by T (:func:`standardize_logits`); the hard term never is.
    """
    check_kd_params(temperature, alpha)
    _check_shapes(student_logits, teacher_logits, targets)
    loss_ce = soft_cross_entropy(student_logits, targets)
    if alpha == 0 and teacher_logits is None:
        loss_kd = torch.zeros((), dtype=loss_ce.dtype, device=loss_ce.device)
    else:
        if teacher_logits is None:
            raise ValueError(f"alpha={alpha} needs teacher_logits; pass them or set alpha=0 (no teacher)")
        t = float(temperature)
        # The teacher is a fixed target: detach so that no gradient ever reaches it.
        dtype = torch.promote_types(student_logits.dtype, torch.float32)  # bf16 logits: soft term in fp32
        t_z, s_z = teacher_logits.detach().to(dtype), student_logits.to(dtype)
        if standardize:
            t_z, s_z = standardize_logits(t_z), standardize_logits(s_z)
        teacher_prob = F.softmax(t_z / t, dim=1)
        student_logp = F.log_softmax(s_z / t, dim=1)
        loss_kd = F.kl_div(student_logp, teacher_prob, reduction="batchmean") * (t * t)
    loss = (1.0 - alpha) * loss_ce + alpha * loss_kd
    return {"loss": loss, "loss_ce": loss_ce, "loss_kd": loss_kd}


def kd_loss(student_logits: torch.Tensor, teacher_logits: torch.Tensor, targets: torch.Tensor,
            temperature: float = 20.0, alpha: float = 0.5, standardize: bool = False) -> torch.Tensor:
    """(1-alpha)*CE(student, targets) + alpha*T^2*KL(softmax(teacher/T) || softmax(student/T)).

    ``targets`` are int labels (N,) or soft targets (N, C) for mixed batches. KL is summed over
    classes and averaged over the batch. Alpha weights the soft term (Hinton et al.; the paper).
    No gradient reaches the teacher.
    """
    return kd_loss_parts(student_logits, teacher_logits, targets, temperature, alpha, standardize)["loss"]
