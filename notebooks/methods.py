# ---
# jupyter:
#   jupytext:
#     formats: py:percent
#     text_representation:
#       extension: .py
#       format_name: percent
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # Methods
#
# ## Distillation loss
#
# The student is trained on
#
# $$
# \mathcal{L} = (1-\alpha)\,\mathrm{CE}\big(s, y\big)
#   + \alpha\,T^2\,\mathrm{KL}\big(\mathrm{softmax}(t/T)\,\|\,\mathrm{softmax}(s/T)\big),
# $$
#
# with $s$ and $t$ the student's and teacher's logits, $T = 20$ and $\alpha = 0.5$ as in the paper;
# $\alpha$ weights the soft term (Hinton et al.). The KL divergence is summed over classes and
# averaged over the batch. The teacher stays in evaluation mode and sees the very batch tensor the
# student sees. `kdlib.distill.kd_loss` implements it; `tests/test_distill.py` checks it against a
# numpy re-derivation.

# %% tags=["parameters", "hide-input"]
profile = "quick"
runs = None

# %% [markdown]
# ## The regimes on real images (the paper's Fig. 2)
#
# The same eight training images through each regime of `kdlib.augment`, with one generator seed;
# Mixup and CutMix pair each image with another of the batch.

# %% tags=["hide-input"]
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import torch
from IPython.display import Markdown, display

from kdlib.augment import build_augmentation
from kdlib.data import NORMALIZATION
from kdlib.grid import load_grid, resolve_dataset
from kdlib.loader import to_device_images
from kdlib.models import build_model, count_parameters
from kdlib.pipeline import split_of

grid = load_grid()
spec = resolve_dataset(grid, profile, "main")
train = split_of(spec, "train", "subset")
mean, std = NORMALIZATION[train.name]
x = to_device_images(train.images[:8], mean, std)
y = torch.as_tensor(train.labels[:8])
regimes = ["none", "flipcrop", "flipcrop+cutout", "flipcrop+mixup", "flipcrop+cutmix(prob=1)"]
fig, axes = plt.subplots(len(regimes), 8, figsize=(8 * 1.1, len(regimes) * 1.25))
for row, regime in zip(axes, regimes):
    out, soft = build_augmentation(regime, train.num_classes)(x, y, generator=torch.Generator().manual_seed(3))
    img = (out * torch.tensor(std).view(1, -1, 1, 1) + torch.tensor(mean).view(1, -1, 1, 1)).clamp(0, 1)
    for k, ax in enumerate(row):
        ax.imshow(img[k].permute(1, 2, 0).squeeze(-1).numpy(), cmap="gray" if img.shape[1] == 1 else None)
        ax.set_xticks([]), ax.set_yticks([])
        top = soft[k].topk(2)
        ax.set_xlabel(" / ".join(f"{train.classes[int(i)][:7]} {float(v):.2f}" for v, i in zip(*top) if v > 0.005),
                      fontsize=5)
    row[0].set_ylabel(regime.split("(")[0], fontsize=7)
fig.suptitle(f"Augmentation regimes on {train.name} (labels: soft targets after mixing)")
fig.tight_layout()

# %% [markdown]
# ## Models

# %% tags=["hide-input"]
prof = grid["profiles"][profile]
image_size = 28 if train.name in ("mnist", "fashion-mnist") else 32
rows = []
for name in ("resnet18", "lenet", "alexnet"):
    kwargs = prof["models"].get(name) or {}
    here = build_model(name, in_channels=len(mean), image_size=image_size, **kwargs)
    rows.append({"model": name, "parameters (paper, 3x32x32, 10 classes)": f"{count_parameters(build_model(name)):,}",
                 "arguments in this profile": ", ".join(f"{k}={v}" for k, v in kwargs.items()) or "-",
                 f"parameters in this profile ({len(mean)}x{image_size}x{image_size})": f"{count_parameters(here):,}",
                 "penultimate d": here.embed_dim})
pd.DataFrame(rows).style.hide(axis="index")

# %% [markdown]
# ## Recipes and data of this profile

# %% tags=["hide-input"]
recipes = pd.DataFrame(prof["recipes"]).T
display(Markdown(f"Profile **{profile}**: {prof['description']} Seeds {prof['seeds']}."))
display(recipes)
display(Markdown(f"Training data: `{train.source}` ({len(train)} images, checksum `{train.checksum[:16]}`), "
                 f"normalised with mean {mean} and std {std}."))
