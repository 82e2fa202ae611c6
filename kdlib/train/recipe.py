"""A training recipe and the choices made before training: threads, seeds, engine."""
from __future__ import annotations

import contextlib
import math
import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from torch import nn

from ..blocks.distill import KD_LOGITS, check_kd_params

__all__ = ["Recipe", "Learner", "resolve_engine", "ENGINES", "NumericalError", "seed_everything"]


class NumericalError(RuntimeError):
    """The loss became NaN or Inf."""


MAX_EPOCHS = 10_000


MAX_BATCH = 65_536


@dataclass
class Recipe:
    """Optimiser and schedule: SGD with Nesterov momentum, one-cycle or cosine learning rate."""

    epochs: int
    batch_size: int = 128
    lr: float = 0.1
    momentum: float = 0.9
    nesterov: bool = True
    weight_decay: float = 5e-4
    schedule: str = "onecycle"  # or "cosine"
    warmup: float = 0.2  # fraction of steps rising to lr (one-cycle)
    label_smoothing: float = 0.0

    def __post_init__(self):
        if isinstance(self.epochs, bool) or not isinstance(self.epochs, int) or not 1 <= self.epochs <= MAX_EPOCHS:
            raise ValueError(f"epochs must be an integer >= 1 (and at most {MAX_EPOCHS}), got {self.epochs!r}")
        if (isinstance(self.batch_size, bool) or not isinstance(self.batch_size, int)
                or not 1 <= self.batch_size <= MAX_BATCH):
            raise ValueError(f"batch_size must be a positive integer (at most {MAX_BATCH}), got {self.batch_size!r}")
        if not isinstance(self.nesterov, bool):
            raise ValueError(f"nesterov must be true or false, got {self.nesterov!r}")
        if not isinstance(self.schedule, str):
            raise ValueError(f"schedule must be 'onecycle' or 'cosine', got {self.schedule!r}")
        for name in ("warmup", "label_smoothing"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, (int, float)):
                raise ValueError(f"{name} must be a number, got {v!r}")
        for name in ("lr", "momentum", "weight_decay"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v) or v < 0:
                raise ValueError(f"{name} must be a finite number >= 0, got {v!r}")
        if self.lr <= 0:
            raise ValueError(f"lr must be > 0, got {self.lr!r}")
        if self.schedule not in ("onecycle", "cosine"):
            raise ValueError(f"schedule must be 'onecycle' or 'cosine', got {self.schedule!r}")
        if not (0 < self.warmup < 1):
            raise ValueError(f"warmup must be a fraction in (0, 1), got {self.warmup!r}")
        if not (0 <= self.label_smoothing < 1):
            raise ValueError(f"label_smoothing must be in [0, 1), got {self.label_smoothing!r}")

    def optimizer(self, model: nn.Module) -> torch.optim.SGD:
        return torch.optim.SGD(model.parameters(), lr=self.lr, momentum=self.momentum,
                               nesterov=self.nesterov and self.momentum > 0, weight_decay=self.weight_decay)

    def scheduler(self, optimizer: torch.optim.Optimizer, steps_per_epoch: int) -> torch.optim.lr_scheduler.LRScheduler:
        total = max(1, self.epochs * steps_per_epoch)
        if self.schedule == "cosine":
            return torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=total)
        warm = max(1, int(self.warmup * total))

        def linear_one_cycle(step):  # 0 -> lr over `warm` steps, then linearly down to 0
            if step < warm:
                return (step + 1) / warm
            return max(0.0, (total - step) / max(1, total - warm))

        return torch.optim.lr_scheduler.LambdaLR(optimizer, linear_one_cycle)


@dataclass
class Learner:
    """One model being trained: its optimiser, loss settings and where it checkpoints."""

    name: str
    model: nn.Module
    recipe: Recipe
    temperature: float = 20.0
    alpha: float = 0.0  # 0: plain cross-entropy on the (soft) targets; > 0: distillation
    checkpoint: Path | None = None
    history: list = field(default_factory=list)
    start_epoch: int = 0
    engine: str = ""  # set by fit: the engine that trained it (plain, static or graphs)
    kd_logits: str = "raw"  # "standardized": both logit vectors z-scored per image in the soft term (E12)

    def __post_init__(self):
        check_kd_params(self.temperature, self.alpha)
        if self.kd_logits not in KD_LOGITS:
            raise ValueError(f"kd_logits must be one of {list(KD_LOGITS)} (standardized: logit standardisation, "
                             f"Sun et al. 2024), got {self.kd_logits!r}")


def seed_everything(seed: int) -> None:
    import random

    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


@contextlib.contextmanager
def torch_threads(n: int | None) -> Iterator[None]:
    """Run the block with ``n`` intra-op torch threads (None: leave the setting), restored afterwards.

    A profile's ``threads:`` is applied this way by every path that trains (``python -m kdlib grid``,
    the notebooks Snakemake runs), so one profile trains with one setting whatever the environment
    (e.g. ``OMP_NUM_THREADS``) says: CPU results depend on it through the order of float sums."""
    if n is None:
        yield
        return
    before = torch.get_num_threads()
    torch.set_num_threads(int(n))
    try:
        yield
    finally:
        torch.set_num_threads(before)


ENGINES = ("auto", "plain", "static", "graphs")


def check_engine(engine: str) -> str:
    if engine not in ENGINES:
        raise ValueError(f"engine must be one of {list(ENGINES)} (auto: CUDA graphs on a GPU, the plain "
                         f"torch.optim step elsewhere), got {engine!r}")
    return engine


def resolve_engine(engine: str, device: str | torch.device) -> str:
    """The engine :func:`fit` uses: ``auto`` is ``$KDLIB_ENGINE`` when set, else ``graphs`` on CUDA and
    ``plain`` elsewhere; ``graphs`` off CUDA is an error naming the fix."""
    check_engine(engine)
    if engine == "auto":
        env = os.environ.get("KDLIB_ENGINE", "").strip()
        if env:
            try:
                engine = check_engine(env)
            except ValueError as err:
                raise ValueError(f"$KDLIB_ENGINE: {err}") from None
    device = torch.device(device)
    if engine == "auto":
        engine = "graphs" if device.type == "cuda" else "plain"
    if engine == "graphs" and device.type != "cuda":
        raise ValueError(f"engine 'graphs' (CUDA graphs) needs a CUDA device, and this run is on {device}; use "
                         f"engine 'plain' or 'static' (or unset $KDLIB_ENGINE)")
    return engine
