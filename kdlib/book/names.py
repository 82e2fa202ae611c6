"""Display names and colours of models, regimes and datasets: one place for the whole book."""
from __future__ import annotations

from ..blocks.spec import mixer_names

__all__ = ["REGIME_COLORS", "regime_color", "MODEL_NAMES", "REGIME_NAMES", "MIXER_NAMES", "DATASET_NAMES",
           "regime_name", "PARTS"]


MODEL_NAMES = {"resnet18": "ResNet-18", "lenet": "LeNet", "alexnet": "AlexNet"}


# the parts of a regime spec, one mixer each ...
MIXER_NAMES = {"none": "none", "flipcrop": "flip+crop", "cutout": "Cutout", "mixup": "Mixup", "cutmix": "CutMix"}


# ... and the five regimes of the paper's teachers as they ran (grid.yaml E1): every mixer on top of flip+crop, so
# a table row keyed by a regime's last mixer (kdlib.book.rows.regime_key) names the composite, never the bare mixer
REGIME_NAMES = {"none": "none", "flipcrop": "flip+crop", "cutout": "flip+crop + Cutout", "mixup": "flip+crop + Mixup",
                "cutmix": "flip+crop + CutMix"}


DATASET_NAMES = {"cifar10": "CIFAR-10", "fashion-mnist": "Fashion-MNIST", "mnist": "MNIST", "cinic10": "CINIC-10"}


# the two parts of the book: what each shows, whatever profile fills it
PARTS = {
    "I": "Part I · CIFAR-10, the paper's setting",
    "II": "Part II · A laptop replication",
}


def regime_name(spec: str | None) -> str:
    """'flipcrop+cutmix' -> 'flip+crop + CutMix'; None -> 'no teacher'."""
    if spec is None:
        return "no teacher"
    return " + ".join(MIXER_NAMES.get(name, name) for name in mixer_names(spec))


# one colour per regime across the whole book
REGIME_COLORS = {
    "none": "#4C72B0",
    "flipcrop": "#55A868",
    "cutout": "#C44E52",
    "mixup": "#8172B3",
    "cutmix": "#CCB974",
}


def regime_color(spec: str) -> str:
    """The colour of a regime spec: its last mixer decides (flipcrop+cutmix is a CutMix colour)."""
    return REGIME_COLORS.get(mixer_names(spec)[-1], "#777777")
