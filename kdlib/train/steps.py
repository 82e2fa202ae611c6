"""What every training step shares: autocast, the per-epoch tally, the loss on soft targets."""
from __future__ import annotations

import contextlib

import torch

from ..blocks.distill import kd_loss_parts, soft_cross_entropy
from .recipe import Learner

__all__ = ["EpochTally", "autocast_for"]


def autocast_for(device: torch.device, cache_enabled: bool = True) -> contextlib.AbstractContextManager:
    """bf16 autocast on CUDA (``cache_enabled=False`` while a CUDA graph is captured), nothing elsewhere."""
    if device.type == "cuda":
        return torch.autocast("cuda", dtype=torch.bfloat16, cache_enabled=cache_enabled)
    return contextlib.nullcontext()


class EpochTally:
    """One epoch's sums per learner (loss, its CE and KD parts, correct predictions) and its first non-finite
    step, kept on the device: reading them every step would make the host wait each time. Read once at the
    epoch's end. ``fit``'s plain loop and :class:`kdlib.train.fast.GroupStep` (inside its CUDA graph) both add to one."""

    def __init__(self, k: int, device: str | torch.device) -> None:
        self.sums = torch.zeros(k, 4, device=device, dtype=torch.float64)
        self.bad_step = torch.full((k,), -1, device=device, dtype=torch.long)
        self.bad_value = torch.zeros(k, device=device)

    def reset(self) -> None:
        self.sums.zero_()
        self.bad_step.fill_(-1)
        self.bad_value.zero_()

    def add(self, i: int, parts: dict, logits: torch.Tensor, labels: torch.Tensor, step: int | torch.Tensor) -> None:
        """Learner ``i``'s step ``step`` (an int or a device tensor) with loss ``parts`` on ``logits``."""
        loss = parts["loss"].detach()
        first = (self.bad_step[i] < 0) & ~torch.isfinite(loss)
        self.bad_step[i] = torch.where(first, step, self.bad_step[i])
        self.bad_value[i] = torch.where(first, loss.float(), self.bad_value[i])
        n = logits.shape[0]
        self.sums[i] += torch.stack([parts[k].detach().double() * n for k in ("loss", "loss_ce", "loss_kd")]
                                    + [(logits.argmax(1) == labels).sum().double()])

    def read(self, i: int) -> dict:
        return dict(zip(("loss", "loss_ce", "loss_kd", "correct"), self.sums[i].tolist()))


def _loss(learner: Learner, logits, y_soft, teacher_logits):
    if learner.alpha == 0:
        if learner.recipe.label_smoothing:
            c = y_soft.shape[1]
            y_soft = y_soft * (1 - learner.recipe.label_smoothing) + learner.recipe.label_smoothing / c
        loss = soft_cross_entropy(logits.float(), y_soft)
        return {"loss": loss, "loss_ce": loss, "loss_kd": torch.zeros((), device=loss.device)}
    return kd_loss_parts(logits.float(), teacher_logits.float(), y_soft, learner.temperature, learner.alpha,
                         standardize=learner.kd_logits == "standardized")
