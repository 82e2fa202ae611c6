"""A device-resident batched loader: the whole split on the device, augmentation in batches.

The split goes to the device once as uint8 and is normalised there; each epoch draws a
permutation from its own seeded ``torch.Generator`` (the *order* stream) and each batch goes
through the regime's mixer with a second generator (the *augmentation* stream). Two loaders
built with the same seeds yield identical batches, so several students, or a cached teacher,
can see the identical stream. ``state_dict()`` captures both streams for exact resumption.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import torch

from ..blocks.augment import Augmentation, build_augmentation

if TYPE_CHECKING:  # names for annotations only
    from collections.abc import Sequence


__all__ = ["DeviceLoader", "Batch", "to_device_images"]


@dataclass
class Batch:
    x: torch.Tensor  # (B, C, H, W) float, normalised and augmented
    y_soft: torch.Tensor  # (B, num_classes) soft targets after mixing
    labels: torch.Tensor  # (B,) the clean int labels
    index: torch.Tensor  # (B,) rows of the split (for cached teacher logits)


def to_device_images(images: np.ndarray | torch.Tensor, mean: Sequence[float], std: Sequence[float],
                     device: str | torch.device = "cpu", dtype: torch.dtype = torch.float32,
                     channels_last: bool = False) -> torch.Tensor:
    """uint8 (N, H, W, C) -> normalised float (N, C, H, W) on ``device``; the copy moves as uint8."""
    if isinstance(images, np.ndarray):
        images = torch.from_numpy(np.ascontiguousarray(images))
    if images.dtype != torch.uint8 or images.dim() != 4:
        raise ValueError(f"images must be uint8 (N, H, W, C), got {images.dtype} {tuple(images.shape)}")
    c = images.shape[-1]
    if len(mean) != c or len(std) != c:
        raise ValueError(f"mean/std have {len(mean)}/{len(std)} channels but the images have {c}")
    if any(s <= 0 for s in std):
        raise ValueError(f"std must be positive, got {std}")
    x = images.to(device, non_blocking=True).permute(0, 3, 1, 2).to(dtype).div_(255)
    m = torch.tensor(mean, device=device, dtype=dtype).view(1, c, 1, 1)
    s = torch.tensor(std, device=device, dtype=dtype).view(1, c, 1, 1)
    x = (x - m) / s
    return x.contiguous(memory_format=torch.channels_last if channels_last else torch.contiguous_format)


class DeviceLoader:
    """Iterate ``Batch``es of one split held on ``device``.

    ``augment`` is a spec string or an :class:`~kdlib.blocks.augment.Augmentation`. ``order_seed`` and
    ``aug_seed`` seed the two streams; ``shuffle=False`` gives the split in order (evaluation).
    """

    def __init__(self, images: np.ndarray | torch.Tensor, labels: np.ndarray | torch.Tensor, batch_size: int,
                 augment: str | Augmentation = "none", *, mean: Sequence[float], std: Sequence[float],
                 device: str | torch.device = "cpu",
                 num_classes: int | None = None, shuffle: bool = True, drop_last: bool = False,
                 order_seed: int = 0, aug_seed: int = 0, channels_last: bool = False,
                 dtype: torch.dtype = torch.float32) -> None:
        if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
            raise ValueError(f"batch_size must be a positive integer, got {batch_size!r}")
        self.device = torch.device(device)
        self.x = to_device_images(images, mean, std, self.device, dtype, channels_last)
        labels = torch.as_tensor(np.asarray(labels), dtype=torch.long)
        if labels.shape != (self.x.shape[0],):
            raise ValueError(f"{labels.shape[0]} labels for {self.x.shape[0]} images")
        self.labels = labels.to(self.device)
        n_cls = int(num_classes if num_classes is not None else int(labels.max()) + 1)
        self.augment = augment if isinstance(augment, Augmentation) else build_augmentation(augment, n_cls)
        self.augment.check_image_size(self.x.shape[2], self.x.shape[3])  # e.g. padding below the image side
        self.augment.set_normalization(mean, std)  # flip+crop's black border in normalised units
        self.num_classes = n_cls
        self.batch_size = batch_size
        self.shuffle = shuffle
        self.drop_last = drop_last
        self.order_seed, self.aug_seed = int(order_seed), int(aug_seed)
        self.order_gen = torch.Generator(device=self.device).manual_seed(self.order_seed)
        self.aug_gen = torch.Generator(device=self.device).manual_seed(self.aug_seed)
        self.epoch = 0

    def __len__(self):
        n = self.x.shape[0]
        return n // self.batch_size if self.drop_last else -(-n // self.batch_size)

    @property
    def num_samples(self) -> int:
        return int(self.x.shape[0])

    def __iter__(self):
        n = self.x.shape[0]
        if self.shuffle:
            order = torch.randperm(n, generator=self.order_gen, device=self.device)
        else:
            order = torch.arange(n, device=self.device)
        for b in range(len(self)):
            idx = order[b * self.batch_size:(b + 1) * self.batch_size]
            labels = self.labels[idx]
            x, y_soft = self.augment(self.x[idx], labels, generator=self.aug_gen)
            yield Batch(x, y_soft, labels, idx)
        self.epoch += 1

    def state_dict(self) -> dict:
        """Both generators' states and the epoch counter (save at an epoch boundary)."""
        return {"epoch": self.epoch, "order_gen": self.order_gen.get_state(), "aug_gen": self.aug_gen.get_state(),
                "order_seed": self.order_seed, "aug_seed": self.aug_seed, "augment": self.augment.spec}

    def load_state_dict(self, state: dict) -> None:
        if state.get("augment") not in (None, self.augment.spec):
            raise ValueError(f"loader state was saved for augmentation {state['augment']!r}, "
                             f"this loader uses {self.augment.spec!r}")
        self.epoch = int(state["epoch"])
        self.order_gen.set_state(state["order_gen"].cpu() if hasattr(state["order_gen"], "cpu") else state["order_gen"])
        self.aug_gen.set_state(state["aug_gen"].cpu() if hasattr(state["aug_gen"], "cpu") else state["aug_gen"])
