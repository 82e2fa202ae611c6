"""Architectures of the paper: a CIFAR ResNet-18 teacher, LeNet and AlexNet students.

Every model exposes ``embed(x) -> (N, d)``, the penultimate features, and ``forward(x)``,
which is exactly ``classifier(embed(x))``. The book's latent analyses (t-SNE, class
discrimination) read ``embed``; distillation reads ``forward``.

Parameter counts at 3x32x32 and 10 classes, pinned by the tests:
resnet18 11,173,962; lenet 62,006; alexnet 14,859,082.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["build_model", "MODELS", "count_parameters", "ResNet18", "LeNet", "AlexNet"]


class _BasicBlock(nn.Module):
    def __init__(self, in_planes: int, planes: int, stride: int):
        super().__init__()
        self.conv1 = nn.Conv2d(in_planes, planes, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.shortcut = nn.Sequential()
        if stride != 1 or in_planes != planes:
            self.shortcut = nn.Sequential(
                nn.Conv2d(in_planes, planes, 1, stride, bias=False), nn.BatchNorm2d(planes)
            )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = F.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return F.relu(out + self.shortcut(x))


class ResNet18(nn.Module):
    """CIFAR ResNet-18: 3x3 stride-1 stem, no max-pool, BasicBlocks [2,2,2,2], global average pool.

    ``width`` scales the stage widths (64, 128, 256, 512 at the default 64); a narrow
    version (e.g. width=16) keeps the topology for CPU profiles.
    """

    def __init__(self, num_classes: int = 10, in_channels: int = 3, image_size: int = 32, width: int = 64):
        super().__init__()
        widths = [width, 2 * width, 4 * width, 8 * width]
        self.conv1 = nn.Conv2d(in_channels, width, 3, 1, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(width)
        layers, in_planes = [], width
        for i, planes in enumerate(widths):
            stride = 1 if i == 0 else 2
            layers.append(nn.Sequential(_BasicBlock(in_planes, planes, stride), _BasicBlock(planes, planes, 1)))
            in_planes = planes
        self.layer1, self.layer2, self.layer3, self.layer4 = layers
        self.embed_dim = widths[-1]
        self.classifier = nn.Linear(self.embed_dim, num_classes)

    def embed(self, x: torch.Tensor) -> torch.Tensor:
        out = F.relu(self.bn1(self.conv1(x)))
        out = self.layer4(self.layer3(self.layer2(self.layer1(out))))
        # Global average pool: equals the paper code's avg_pool2d(4) at 32x32 and also works at 28x28.
        return torch.flatten(F.adaptive_avg_pool2d(out, 1), 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.embed(x))


def _conv_out(size: int, kernel: int, stride: int = 1, padding: int = 0) -> int:
    return (size + 2 * padding - kernel) // stride + 1


class LeNet(nn.Module):
    """LeNet-5 as in the paper's code: conv5 -> pool -> conv5 -> pool -> FC 120-84-C, ReLU."""

    def __init__(self, num_classes: int = 10, in_channels: int = 3, image_size: int = 32):
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(in_channels, 6, 5), nn.ReLU(inplace=True), nn.MaxPool2d(2),
            nn.Conv2d(6, 16, 5), nn.ReLU(inplace=True), nn.MaxPool2d(2),
        )
        s = _conv_out(_conv_out(image_size, 5) // 2, 5) // 2
        if s < 1:
            raise ValueError(f"image_size={image_size} is too small for lenet; use image_size >= 12")
        self.head = nn.Sequential(
            nn.Linear(16 * s * s, 120), nn.ReLU(inplace=True), nn.Linear(120, 84), nn.ReLU(inplace=True)
        )
        self.embed_dim = 84
        self.classifier = nn.Linear(84, num_classes)

    def embed(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(torch.flatten(self.features(x), 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.embed(x))


class AlexNet(nn.Module):
    """The paper's small-image AlexNet: 3x3 convs (64, 192, 384, 256, 256), pools 2, 2, 3/2,
    dropout 0.6, FC 4096-2048-2048-C. The FC input is sized from ``image_size`` (the paper's
    code hard-coded MNIST's 2304 and broke CIFAR; see the book's audit chapter).

    ``width`` (default 64, the paper's) scales every conv and the FC hidden size (32 x width)
    proportionally, for narrow CPU profiles.
    """

    def __init__(self, num_classes: int = 10, in_channels: int = 3, image_size: int = 32, dropout: float = 0.6,
                 width: int = 64):
        super().__init__()
        c1, c2, c3, c4, c5 = (max(1, round(width * k / 64)) for k in (64, 192, 384, 256, 256))
        hidden = 32 * width
        self.features = nn.Sequential(
            nn.Conv2d(in_channels, c1, 3, padding=2), nn.ReLU(inplace=True), nn.MaxPool2d(2),
            nn.Conv2d(c1, c2, 3, padding=2), nn.ReLU(inplace=True), nn.MaxPool2d(2),
            nn.Conv2d(c2, c3, 3, padding=1), nn.ReLU(inplace=True),
            nn.Conv2d(c3, c4, 3, padding=1), nn.ReLU(inplace=True),
            nn.Conv2d(c4, c5, 3, padding=1), nn.ReLU(inplace=True),
            nn.MaxPool2d(3, 2),
        )
        s = _conv_out(image_size, 3, 1, 2) // 2
        s = _conv_out(s, 3, 1, 2) // 2
        s = _conv_out(s, 3, 2)
        if s < 1:
            raise ValueError(f"image_size={image_size} is too small for alexnet; use image_size >= 8")
        self.head = nn.Sequential(
            nn.Dropout(dropout), nn.Linear(c5 * s * s, hidden), nn.ReLU(inplace=True),
            nn.Dropout(dropout), nn.Linear(hidden, hidden), nn.ReLU(inplace=True),
        )
        self.embed_dim = hidden
        self.classifier = nn.Linear(hidden, num_classes)

    def embed(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(torch.flatten(self.features(x), 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.embed(x))


MODELS = {"resnet18": ResNet18, "lenet": LeNet, "alexnet": AlexNet}


def _positive_int(name: str, value) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"{name} must be a positive integer, got {value!r}")
    return value


def build_model(name: str, num_classes: int = 10, in_channels: int = 3, image_size: int = 32,
                **kwargs: object) -> nn.Module:
    """Build one of ``MODELS`` by name.

    ``kwargs`` go to the architecture: ``width`` for resnet18 and alexnet, ``dropout`` for alexnet.
    """
    if name not in MODELS:
        raise ValueError(f"unknown model {name!r}; choose one of {sorted(MODELS)}")
    _positive_int("num_classes", num_classes)
    _positive_int("in_channels", in_channels)
    _positive_int("image_size", image_size)
    allowed = {"resnet18": {"width"}, "alexnet": {"dropout", "width"}, "lenet": set()}[name]
    unknown = set(kwargs) - allowed
    if unknown:
        raise ValueError(
            f"model {name!r} takes no argument(s) {sorted(unknown)}; allowed extra arguments: {sorted(allowed) or 'none'}"
        )
    if "width" in kwargs:
        _positive_int("width", kwargs["width"])
    if "dropout" in kwargs and not (0.0 <= float(kwargs["dropout"]) < 1.0):
        raise ValueError(f"dropout must be in [0, 1), got {kwargs['dropout']!r}")
    return MODELS[name](num_classes=num_classes, in_channels=in_channels, image_size=image_size, **kwargs)


def count_parameters(model: nn.Module) -> int:
    """Number of trainable parameters."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad)
