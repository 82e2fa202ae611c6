"""Augmentation regimes as batch -> batch mixers, all on the batch's device.

``build_augmentation("flipcrop+cutmix")`` returns a callable
``aug(x, y, generator=g) -> (x_out, y_soft)``. Regimes are applied left to right; each one
takes and returns soft targets, so Mixup and CutMix compose with the others.

Definitions (see the README's *Conventions* and the book's Methods chapter):

* ``none``      identity.
* ``flipcrop``  zero-pad ``padding`` (4), random crop back to the input size, random horizontal
                flip; offsets and flips drawn independently per image.
* ``cutout``    ``n_holes`` (1) squares of side ``length`` (16) per image, centre uniform over
                all pixels, clipped at the border, filled with 0. It is meant for *normalised*
                images, where 0 is the dataset mean (DeVries & Taylor's code does the same).
* ``mixup``     one lambda ~ Beta(alpha, alpha) per batch (alpha=1); x' = lam*x + (1-lam)*x[perm].
* ``cutmix``    with probability ``prob`` (0.5) per batch: one box per batch from
                lambda ~ Beta(beta, beta) (beta=1), centre uniform, clipped; lambda recomputed from
                the clipped box, as in the official CutMix code.

Pairing is ``torch.randperm`` drawn from the generator (self-pairs are possible, as in the
mixup and CutMix reference code). All randomness comes from the ``torch.Generator`` passed in,
so the same seed gives the same output; no numpy randomness, no per-sample Python loop, and no
host-device synchronisation (CutMix's coin is applied arithmetically, not with an ``if``).
"""
from __future__ import annotations

import math
from dataclasses import dataclass, fields
from typing import TYPE_CHECKING

import torch
import torch.nn.functional as F

from .spec import (
    MAX_HOLES,
    MAX_PADDING,
    MAX_SIDE,
    _check_int,
    _check_positive,
    parse_spec,
)

if TYPE_CHECKING:  # names for annotations only
    from collections.abc import Sequence


__all__ = ["build_augmentation", "Augmentation", "MIXER_TYPES", "sample_beta"]


# --------------------------------------------------------------------------- random helpers
def _rand(shape, like: torch.Tensor, generator):
    device = generator.device if generator is not None else like.device
    return torch.rand(shape, generator=generator, device=device).to(like.device)


def _randint(high, shape, like: torch.Tensor, generator):
    device = generator.device if generator is not None else like.device
    return torch.randint(0, high, shape, generator=generator, device=device).to(like.device)


def _randperm(n, like: torch.Tensor, generator):
    device = generator.device if generator is not None else like.device
    return torch.randperm(n, generator=generator, device=device).to(like.device)


def _sample_gamma(shape_param: float, like: torch.Tensor, generator, candidates: int = 64):
    """One Gamma(shape_param, 1) draw and its log, ``(g, log_g)``, by Marsaglia & Tsang's method,
    driven by ``generator``.

    ``torch.distributions`` cannot take a generator, so the sampler is written here. The
    rejection step is vectorised over ``candidates`` proposals and the first accepted one is
    taken without a host sync (for shape >= 1 each proposal is accepted with probability
    > 0.95, so all 64 failing has probability < 1e-80). The log is returned because for a
    small shape the draw itself underflows: Gamma(0.001) is below 1e-300 most of the time.
    ``g`` is computed exactly as before the log was added, so ordinary draws are unchanged.
    """
    boost = shape_param < 1.0
    a = shape_param + 1.0 if boost else shape_param
    d = a - 1.0 / 3.0
    c = 1.0 / math.sqrt(9.0 * d)
    device = generator.device if generator is not None else like.device
    z = torch.randn(candidates, generator=generator, device=device, dtype=torch.float64)
    u = torch.rand(candidates, generator=generator, device=device, dtype=torch.float64)
    v = (1.0 + c * z) ** 3
    ok = (v > 0) & (torch.log(u) < 0.5 * z * z + d - d * v + d * torch.log(v.clamp_min(1e-300)))
    first = torch.argmax(ok.to(torch.int8))
    g = d * v[first]
    log_g = torch.log(g)
    if boost:  # Gamma(a) = Gamma(a + 1) * U^(1/a), in logs: + log(U) / a
        u2 = torch.rand((), generator=generator, device=device, dtype=torch.float64)
        g = g * u2 ** (1.0 / shape_param)
        log_g = log_g + torch.log(u2.clamp_min(1e-300)) / shape_param
    return g.to(like.device), log_g.to(like.device)


def sample_beta(a: float, b: float, like: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
    """A scalar Beta(a, b) draw as a float64 tensor on ``like``'s device, finite for any a, b > 0.

    Computed as ``ga / (ga + gb)`` where both Gamma draws are non-zero (so ordinary parameters
    give exactly the values they always gave), else as ``sigmoid(la - lb)`` from their logs: for
    a small shape both draws underflow to 0 and the ratio would be 0/0 = NaN.
    """
    ga, la = _sample_gamma(a, like, generator)
    gb, lb = _sample_gamma(b, like, generator)
    direct = ga / (ga + gb)
    safe = torch.sigmoid(la - lb)
    return torch.where(torch.isfinite(direct) & (ga > 0) & (gb > 0), direct, safe)


# --------------------------------------------------------------------------- regimes
class _Regime:
    name = ""

    def __post_init__(self):
        self.validate()

    def validate(self) -> None:  # pragma: no cover - overridden where there is something to check
        pass

    def check_image(self, height: int, width: int) -> None:
        """Bounds that depend on the image size (none for most regimes)."""

    def spec(self) -> str:
        args = ",".join(f"{f.name}={getattr(self, f.name)}" for f in fields(self))
        return f"{self.name}({args})" if args else self.name

    def __call__(self, x: torch.Tensor, y: torch.Tensor,
                 generator: torch.Generator | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        raise NotImplementedError


@dataclass
class NoAugment(_Regime):
    name = "none"

    def __call__(self, x: torch.Tensor, y: torch.Tensor,
                 generator: torch.Generator | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        return x, y


FILLS = ("black", "mean")


@dataclass
class FlipCrop(_Regime):
    """Random crop of the image padded by ``padding`` pixels, then a horizontal flip with probability 1/2.

    ``fill``: what the border holds. ``black`` (the default) is torchvision's ``RandomCrop(32,
    padding=4)`` before ``Normalize``, as in the paper's code: a black pixel, -mean/std once
    normalised (:meth:`Augmentation.set_normalization` tells the regime the loader's mean and std;
    without it the border is 0 in the input's own units). ``mean``: 0 in normalised units, the dataset
    mean colour; the ``paper`` profile's committed runs were trained this way and keep it until they
    are re-run (``flipcrop_fill`` in grid.yaml).
    """

    padding: int = 4
    flip: bool = True
    fill: str = "black"
    name = "flipcrop"

    def __post_init__(self):
        self.black = None  # per-channel value of a black pixel in the batch's units (set by the loader)
        super().__post_init__()

    def validate(self) -> None:
        _check_int("flipcrop", "padding", self.padding, minimum=0, maximum=MAX_PADDING)
        if not isinstance(self.flip, bool):
            raise ValueError(f"flipcrop: flip must be true or false, got {self.flip!r}")
        if self.fill not in FILLS:
            raise ValueError(f"flipcrop: fill must be one of {list(FILLS)} (black: torchvision's padding; mean: "
                             f"the dataset mean), got {self.fill!r}")

    def check_image(self, height: int, width: int) -> None:
        side = min(height, width)
        if self.padding >= side:
            raise ValueError(f"flipcrop: padding {self.padding} is not less than the {side}-px side of the images: "
                             f"a crop could then hold no pixel of the image, only border. Use a padding below {side} "
                             f"(the paper pads 4 px on 32-px images)")

    def _pad(self, x):
        p = self.padding
        if not p:
            return x
        if self.fill == "mean" or self.black is None:
            return F.pad(x, (p, p, p, p))
        n, c, h, w = x.shape
        border = torch.as_tensor(self.black, dtype=x.dtype, device=x.device).view(1, c, 1, 1)
        padded = border.expand(n, c, h + 2 * p, w + 2 * p).clone()
        padded[:, :, p:p + h, p:p + w] = x
        return padded

    def __call__(self, x: torch.Tensor, y: torch.Tensor,
                 generator: torch.Generator | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        n, _, h, w = x.shape
        p = self.padding
        padded = self._pad(x)
        dy = _randint(2 * p + 1, (n,), x, generator)
        dx = _randint(2 * p + 1, (n,), x, generator)
        rows = dy[:, None] + torch.arange(h, device=x.device)  # (N, H)
        cols = torch.arange(w, device=x.device).expand(n, w)
        if self.flip:
            flipped = _rand((n,), x, generator) < 0.5
            # crop-then-flip: output column j reads crop column W-1-j
            cols = torch.where(flipped[:, None], (w - 1) - cols, cols)
        cols = dx[:, None] + cols  # (N, W)
        batch = torch.arange(n, device=x.device)[:, None, None]
        out = padded.permute(0, 2, 3, 1)[batch, rows[:, :, None], cols[:, None, :]]  # (N, H, W, C)
        return out.permute(0, 3, 1, 2).contiguous(memory_format=_memory_format(x)), y


@dataclass
class Cutout(_Regime):
    length: int = 16
    n_holes: int = 1
    name = "cutout"

    def validate(self) -> None:
        _check_int("cutout", "length", self.length, minimum=0, maximum=MAX_SIDE)
        _check_int("cutout", "n_holes", self.n_holes, minimum=0, maximum=MAX_HOLES)

    def check_image(self, height: int, width: int) -> None:
        side = min(height, width)
        if self.length > side:
            raise ValueError(f"cutout: length {self.length} is more than the {side}-px side of the images: a hole "
                             f"that size blanks most images whole. Use a length of at most {side} (DeVries & Taylor "
                             f"cut 16 px of 32-px CIFAR images)")

    def __call__(self, x: torch.Tensor, y: torch.Tensor,
                 generator: torch.Generator | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        n, _, h, w = x.shape
        keep = torch.ones(n, 1, h, w, dtype=torch.bool, device=x.device)
        for _ in range(self.n_holes):  # holes, not samples: the batch stays vectorised
            cy = _randint(h, (n,), x, generator)[:, None, None]
            cx = _randint(w, (n,), x, generator)[:, None, None]
            keep &= ~_clipped_box(h, w, cy, cx, self.length, self.length, x.device)[:, None]
        return x * keep.to(x.dtype), y


@dataclass
class Mixup(_Regime):
    alpha: float = 1.0
    name = "mixup"

    def validate(self) -> None:
        _check_positive("mixup", "alpha", self.alpha)

    def __call__(self, x: torch.Tensor, y: torch.Tensor,
                 generator: torch.Generator | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        lam = sample_beta(self.alpha, self.alpha, x, generator)
        perm = _randperm(x.shape[0], x, generator)
        lam_x = lam.to(x.dtype)
        x_out = lam_x * x + (1 - lam_x) * x[perm]
        lam_y = lam.to(y.dtype)
        return x_out, lam_y * y + (1 - lam_y) * y[perm]


@dataclass
class CutMix(_Regime):
    beta: float = 1.0
    prob: float = 0.5
    name = "cutmix"

    def validate(self) -> None:
        _check_positive("cutmix", "beta", self.beta)
        if isinstance(self.prob, bool) or not isinstance(self.prob, (int, float)) or not 0.0 <= self.prob <= 1.0:
            raise ValueError(f"cutmix: prob must be in [0, 1] (a number: the chance a batch is mixed), got {self.prob!r}")

    def __call__(self, x: torch.Tensor, y: torch.Tensor,
                 generator: torch.Generator | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        n, _, h, w = x.shape
        apply = _rand((), x, generator) < self.prob  # the per-batch coin (a tensor: no sync)
        lam0 = sample_beta(self.beta, self.beta, x, generator)
        perm = _randperm(n, x, generator)
        cut = torch.sqrt(1.0 - lam0)
        cut_h, cut_w = torch.floor(h * cut).long(), torch.floor(w * cut).long()
        cy, cx = _randint(h, (), x, generator), _randint(w, (), x, generator)
        box = _clipped_box(h, w, cy, cx, cut_h, cut_w, x.device) & apply  # empty box when the coin says no
        x_out = torch.where(box, x[perm], x)
        # lambda recomputed from the clipped box, as in the official CutMix code
        lam = 1.0 - box.sum().to(torch.float64) / (h * w)
        lam_y = lam.to(y.dtype)
        return x_out, lam_y * y + (1 - lam_y) * y[perm]


def _clipped_box(h, w, cy, cx, box_h, box_w, device):
    """Mask of the box of half-sides box//2 around (cy, cx), clipped at the border (as in the
    reference Cutout and CutMix code); broadcasts over leading dimensions of cy, cx."""
    r = torch.arange(h, device=device)[:, None]
    c = torch.arange(w, device=device)[None, :]
    y1, y2 = (cy - box_h // 2).clamp(0, h), (cy + box_h // 2).clamp(0, h)
    x1, x2 = (cx - box_w // 2).clamp(0, w), (cx + box_w // 2).clamp(0, w)
    return (r >= y1) & (r < y2) & (c >= x1) & (c < x2)


MIXER_TYPES = {cls.name: cls for cls in (NoAugment, FlipCrop, Cutout, Mixup, CutMix)}


def _memory_format(x):
    if x.dim() == 4 and x.is_contiguous(memory_format=torch.channels_last) and not x.is_contiguous():
        return torch.channels_last
    return torch.contiguous_format


class Augmentation:
    """A composed regime: ``aug(x, y, generator=g) -> (x_out, y_soft)``.

    ``y`` may be int labels (N,) or soft targets (N, C); the output targets are always (N, C)
    float and sum to 1 per row.
    """

    def __init__(self, regimes: list[_Regime], num_classes: int = 10):
        self.regimes = list(regimes)
        self.num_classes = num_classes

    @property
    def spec(self) -> str:
        """Canonical spec with every parameter spelled out (used in run configs and hashes)."""
        return "+".join(r.spec() for r in self.regimes)

    def set_normalization(self, mean: Sequence[float], std: Sequence[float]) -> "Augmentation":
        """Tell the regimes the batches are ``(x - mean) / std``: flip+crop's black border becomes -mean/std."""
        if len(mean) != len(std) or any(s <= 0 for s in std):
            raise ValueError(f"mean and std must have one entry per channel and std > 0, got {mean}, {std}")
        for r in self.regimes:
            if isinstance(r, FlipCrop):
                r.black = tuple(-m / s for m, s in zip(mean, std))
        return self

    def check_image_size(self, height: int, width: int) -> "Augmentation":
        """Refuse parameters out of bounds for images of ``height`` x ``width`` (flip+crop's padding below the
        side, Cutout's hole at most the side): the one place of these bounds, used by the grid's check at
        plan time and by the loader."""
        for r in self.regimes:
            r.check_image(int(height), int(width))
        return self

    @property
    def mixes(self) -> bool:
        """True when the regime mixes pairs of images (the targets are then not one-hot)."""
        return any(isinstance(r, (Mixup, CutMix)) for r in self.regimes)

    def __repr__(self):
        return f"Augmentation({self.spec!r}, num_classes={self.num_classes})"

    def __call__(self, x: torch.Tensor, y: torch.Tensor,
                 generator: torch.Generator | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        if not torch.is_tensor(x) or x.dim() != 4 or not x.is_floating_point():
            raise ValueError(f"x must be a float tensor of shape (N, C, H, W), got {_describe(x)}")
        if not torch.is_tensor(y):
            raise ValueError(f"y must be a tensor of int labels (N,) or soft targets (N, C), got {type(y).__name__}")
        if y.shape[0] != x.shape[0]:
            raise ValueError(f"x and y disagree on the batch size: {x.shape[0]} images, {y.shape[0]} labels")
        if y.dim() == 1:
            if y.is_floating_point():
                raise ValueError("y with shape (N,) must hold integer class labels, got a float tensor")
            # checked on the CPU only: on an accelerator the check would cost a host sync per batch
            if y.device.type == "cpu" and y.numel() and (int(y.min()) < 0 or int(y.max()) >= self.num_classes):
                raise ValueError(f"labels must lie in [0, {self.num_classes - 1}]; got min {int(y.min())}, max {int(y.max())}")
            y = F.one_hot(y.long(), self.num_classes).to(torch.float32)
        elif y.dim() == 2 and y.shape[1] == self.num_classes:
            y = y.float()
        else:
            raise ValueError(f"y must be (N,) labels or (N, {self.num_classes}) soft targets, got shape {tuple(y.shape)}")
        if generator is not None and torch.device(generator.device).type != x.device.type:
            raise ValueError(
                f"generator is on {generator.device} but the batch is on {x.device}; "
                f"create it with torch.Generator(device=x.device)"
            )
        for regime in self.regimes:
            x, y = regime(x, y, generator)
        return x, y


def build_augmentation(spec: str, num_classes: int = 10) -> Augmentation:
    """Build a composed regime from a spec such as ``"flipcrop+cutmix(beta=1,prob=1)"``."""
    if isinstance(num_classes, bool) or not isinstance(num_classes, int) or num_classes < 1:
        raise ValueError(f"num_classes must be a positive integer, got {num_classes!r}")
    regimes = []
    for name, kwargs in parse_spec(spec):
        if name not in MIXER_TYPES:
            raise ValueError(f"unknown augmentation regime {name!r} in {spec!r}; choose from {sorted(MIXER_TYPES)}")
        cls = MIXER_TYPES[name]
        allowed = [f.name for f in fields(cls)]
        unknown = set(kwargs) - set(allowed)
        if unknown:
            raise ValueError(
                f"augmentation {name} has no parameter {sorted(unknown)}; its parameters are {allowed or 'none'}"
            )
        regimes.append(cls(**kwargs))
    return Augmentation(regimes, num_classes)


def _describe(x):
    if torch.is_tensor(x):
        return f"{x.dtype} tensor of shape {tuple(x.shape)}"
    return type(x).__name__
