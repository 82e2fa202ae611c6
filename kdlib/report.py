"""What the run-report notebooks show: parameters checked, histories plotted, metrics tabulated.

Notebooks call these and nothing else computes a number; every figure and table comes from
the run store written by :mod:`kdlib.pipeline`.
"""
from __future__ import annotations

import types

from .grid import validate_params
from .runs import Run

__all__ = ["notebook_params", "history_figure", "metrics_table", "REGIME_COLORS", "regime_color"]

# one colour per regime across the whole book
REGIME_COLORS = {
    "none": "#4C72B0",
    "flipcrop": "#55A868",
    "cutout": "#C44E52",
    "mixup": "#8172B3",
    "cutmix": "#CCB974",
}
_IPYTHON_NAMES = {"In", "Out", "get_ipython", "exit", "quit", "open"}


def regime_color(spec: str) -> str:
    """The colour of a regime spec: its last mixer decides (flipcrop+cutmix is a CutMix colour)."""
    last = spec.split("+")[-1].split("(")[0]
    return REGIME_COLORS.get(last, "#777777")


def notebook_params(kind: str, namespace: dict) -> dict:
    """The notebook's parameters, validated: call it first, right after the ``parameters`` cell.

    At that point every plain value in the namespace was set by the ``parameters`` cell or
    injected by papermill, so a name the notebook does not know is an unknown parameter, and
    ``validate_params`` rejects it (with the nearest valid name) as it rejects a wrong type.
    """
    params = {k: v for k, v in namespace.items() if not k.startswith("_") and k not in _IPYTHON_NAMES
              and not isinstance(v, (types.ModuleType, types.FunctionType, types.BuiltinFunctionType, type))}
    return validate_params(kind, params)


def history_figure(runs: list[Run], title: str = ""):
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(9, 3.2))
    for run in runs:
        h = run.read_history()
        cfg = run.config
        label = f"{cfg['model']['name']} seed {cfg['seed']}" + (f" a={cfg['alpha']:g}" if cfg["kind"] == "student" else "")
        epochs = [r["epoch"] for r in h]
        axes[0].plot(epochs, [r["loss"] for r in h], marker="o", label=label)
        axes[1].plot(epochs, [r["train_acc"] for r in h], marker="o", label=label)
    axes[0].set(xlabel="epoch", ylabel="training loss")
    axes[1].set(xlabel="epoch", ylabel="training accuracy (on augmented batches)")
    axes[1].legend(fontsize=7)
    fig.suptitle(title)
    fig.tight_layout()
    return fig


def metrics_table(runs: list[Run], split: str = "test"):
    import pandas as pd

    rows = []
    for run in runs:
        cfg = run.config
        m = run.read_json("metrics.json")[split]
        prov = run.read_json("provenance.json")
        row = {"run": run.id, "model": cfg["model"]["name"], "regime": cfg["augment"], "seed": cfg["seed"]}
        if cfg["kind"] == "student":
            row.update({"teacher": cfg["teacher"] or "-", "alpha": cfg["alpha"], "T": cfg["temperature"]})
        row.update({k: m[k] for k in ("accuracy", "precision", "recall", "f1", "nll", "ece", "class_separability")})
        for k in ("kl_to_human", "agreement_with_teacher", "kl_teacher_student"):
            if k in m:
                row[k] = m[k]
        row["train_s"] = prov["wall_seconds"]["train"]
        rows.append(row)
    return pd.DataFrame(rows)
