# ---
# jupyter:
#   jupytext:
#     formats: py:percent
#     notebook_metadata_filter: -jupytext.text_representation.jupytext_version,-jupytext.text_representation.format_version
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
# student sees. `kdlib.blocks.distill.kd_loss` implements it; `tests/test_distill.py` checks it against a
# numpy re-derivation.

# %% tags=["parameters", "hide-input"]
profile = "quick"
runs = None
part = "II"

# %% [markdown]
# ## The regimes on real images (the paper's Fig. 2)
#
# The same eight images of the part's dataset (training images where the data are on this machine,
# else test images kept with the records) through each regime of `kdlib.blocks.augment`, with one generator seed;
# Mixup and CutMix pair each image with another of the batch.

# %% tags=["hide-input"]
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import torch
from IPython.display import Markdown, display

from kdlib.blocks.augment import build_augmentation
from kdlib.data.registry import CLASSES, NORMALIZATION
from kdlib.data.formats import DataError
from kdlib.runs.plan import load_grid, resolve_dataset
from kdlib.data.loader import to_device_images
from kdlib.blocks.models import build_model, count_parameters
from kdlib.data.memo import split_of
from kdlib.book.names import DATASET_NAMES, PARTS
from kdlib.book.report import public_path_text
from kdlib.book.recipes import beside_paper, recipe_table
from kdlib.book.rows import paper_tables, heldout_view
from kdlib.runs.store import RunStore

grid = load_grid()
spec = resolve_dataset(grid, profile, "main")
display(Markdown(f"**{PARTS[part]}.** Dataset **{DATASET_NAMES.get(spec['name'], spec['name'])}**, profile "
                 f"`{profile}`."))
try:
    train = split_of(spec, "train", "subset")
    images, labels, source = train.images[:8], train.labels[:8], "training"
except (DataError, FileNotFoundError):
    train = None
    view = heldout_view(RunStore(runs, profile), spec)
    images, labels, source = view["images"][:8], view["labels"][view["image_rows"][:8]], "test (from the records)"
name = spec["name"]
classes = CLASSES[name]
mean, std = NORMALIZATION[name]
x = to_device_images(images, mean, std)
y = torch.as_tensor(labels)
regimes = ["none", "flipcrop", "flipcrop+cutout", "flipcrop+mixup", "flipcrop+cutmix(prob=1)"]
fig, axes = plt.subplots(len(regimes), 8, figsize=(9.5, len(regimes) * 1.55))
for row, regime in zip(axes, regimes):
    out, soft = build_augmentation(regime, len(classes))(x, y, generator=torch.Generator().manual_seed(3))
    img = (out * torch.tensor(std).view(1, -1, 1, 1) + torch.tensor(mean).view(1, -1, 1, 1)).clamp(0, 1)
    for k, ax in enumerate(row):
        ax.imshow(img[k].permute(1, 2, 0).squeeze(-1).numpy(), cmap="gray" if img.shape[1] == 1 else None)
        ax.set_xticks([]), ax.set_yticks([])
        top = soft[k].topk(2)
        ax.set_xlabel("\n".join(f"{classes[int(i)][:8]} {float(v):.2f}" for v, i in zip(*top) if v > 0.005),
                      fontsize=7)
    row[0].set_ylabel(regime.split("(")[0], fontsize=9)
fig.suptitle(f"Augmentation regimes on eight {DATASET_NAMES.get(name, name)} {source} images "
             f"(under each: the soft target after mixing)", fontsize=10)
fig.tight_layout()
plt.show()

# %% [markdown]
# ## Models

# %% tags=["hide-input"]
prof = grid["profiles"][profile]
image_size = 28 if name in ("mnist", "fashion-mnist") else 32
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
display(Markdown(f"Profile **{profile}**: {prof['description']} Seeds {prof['seeds']}."))
display(recipe_table(prof).style.hide(axis="index"))

# %% [markdown]
# ### Our recipe beside the paper's
#
# What the paper's text states (§4), what its public code sets, and what this profile runs. Where they
# differ, the audit chapter says why we chose ours.

# %% tags=["hide-input"]
display(beside_paper(prof, paper_tables()["recipe"], grid.get("defaults", {})).style.hide(axis="index"))
if train is not None:
    display(Markdown(f"Training data: `{public_path_text(train.source)}` ({len(train)} images, checksum `{train.checksum[:16]}`), "
                     f"normalised with mean {mean} and std {std}."))
else:
    display(Markdown(f"The training data are not on this machine; the records' `provenance.json` name the copy and "
                     f"its checksum (see the run reports). Normalisation: mean {mean}, std {std}."))
