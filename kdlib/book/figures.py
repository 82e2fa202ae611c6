"""Figures of the book's chapters that are more than a call to matplotlib: each one states what it must show
(and a test checks it), so that the notebooks only choose the data and call them."""
from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:  # names for annotations only
    from collections.abc import Sequence

    from matplotlib.figure import Figure


__all__ = ["matrix_figure", "short_class_names"]


def short_class_names(classes: Sequence[str], width: int = 8) -> list[str]:
    """Class names for tick labels: whole up to ``width`` characters, else cut with a full stop."""
    return [c if len(c) <= width else c[:width - 1] + "." for c in classes]


def matrix_figure(mats: dict, classes: Sequence[str], cmap: str, label: str, title: str) -> Figure:
    """One panel per class-by-class matrix (``{panel title: matrix}``, NaN cells left blank), every panel on ONE
    colour scale (the comparison between panels is the point, as in the paper's Fig. 6), one colour bar labelled
    ``label``, class names at 8 pt. Returns the figure."""
    import matplotlib.pyplot as plt

    if not mats:
        raise ValueError("matrix_figure needs at least one matrix")
    values = np.concatenate([np.asarray(m, float)[np.isfinite(m)] for m in mats.values()])
    if not len(values):
        raise ValueError("matrix_figure: every cell of every matrix is NaN")
    vmin, vmax = float(values.min()), float(values.max())
    ncols = min(3, len(mats))
    nrows = (len(mats) + ncols - 1) // ncols
    fig, axes = plt.subplots(nrows, ncols, figsize=(3.4 * ncols + 0.9, 3.5 * nrows + 0.5), squeeze=False,
                             layout="constrained")
    flat = list(axes.flat)
    for ax in flat[len(mats):]:
        ax.axis("off")
    names = short_class_names(classes)
    for ax, (name, m) in zip(flat, mats.items()):
        im = ax.imshow(m, cmap=cmap, vmin=vmin, vmax=vmax)
        ax.set_title(name, fontsize=10)
        ax.set_xticks(range(len(classes)), names, rotation=90, fontsize=8)
        ax.set_yticks(range(len(classes)), names, fontsize=8)
    for row in axes:
        row[0].set_ylabel("true class", fontsize=9)
    bar = fig.colorbar(im, ax=flat[:len(mats)], shrink=0.8)
    bar.set_label(label, fontsize=9)
    bar.ax.tick_params(labelsize=8)
    fig.suptitle(title, fontsize=10)
    return fig
