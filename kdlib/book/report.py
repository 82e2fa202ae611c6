"""What the run-report notebooks show: parameters checked, histories plotted, metrics tabulated.

Notebooks call these and nothing else computes a number; every figure and table comes from
the run store written by :mod:`kdlib.pipeline`.
"""
from __future__ import annotations

import types
from typing import TYPE_CHECKING

from ..runs.plan import validate_params
from ..runs.store import Run
from .names import DATASET_NAMES, MODEL_NAMES, PARTS, regime_name

if TYPE_CHECKING:  # names for annotations only
    from collections.abc import Iterable
    from pathlib import Path

    import pandas as pd
    from matplotlib.figure import Figure
    from pandas.io.formats.style import Styler

    from ..runs.plan import Task
    from ..runs.store import RunStore


__all__ = ["notebook_params", "history_figure", "metrics_table", "report_links", "linked", "task_title",
           "part_header"]


def task_title(task: Task | dict, dataset: str | None = None) -> str:
    """A distinct, readable title for a task's run report (``dataset``: the dataset its role resolves to)."""
    p = task.params if hasattr(task, "params") else task
    kind = task.kind if hasattr(task, "kind") else p["kind"]
    data = DATASET_NAMES.get(dataset, dataset) if dataset else f"{p['dataset']} data"
    if kind == "teacher":
        ls = f", label smoothing {p['label_smoothing']:g}" if p.get("label_smoothing") else ""
        if p.get("match_accuracy_of"):
            ls += f", stopped at the {regime_name(p['match_accuracy_of'])} teacher's accuracy"
        if p.get("untrained"):
            ls += ", random weights (never trained)"
        return (f"Teacher: {MODEL_NAMES.get(p['model'], p['model'])}, {regime_name(p['regime'])}{ls} "
                f"({data}, profile {p['profile']})")
    students = ", ".join(MODEL_NAMES.get(m, m) for m in p["students"])
    if p.get("teacher_model") is None or p["alpha"] == 0:
        source = "no teacher (α = 0)"
    else:
        source = f"{MODEL_NAMES.get(p['teacher_model'], p['teacher_model'])} {regime_name(p['teacher_regime'])} teacher"
        if p.get("teacher_label_smoothing"):
            source += f" (label smoothing {p['teacher_label_smoothing']:g})"
        if p.get("teacher_calibration", "none") != "none":
            source += " after temperature scaling"
        if p.get("teacher_match_accuracy_of"):
            source += f" (stopped at the {regime_name(p['teacher_match_accuracy_of'])} teacher's accuracy)"
        if p.get("teacher_untrained"):
            source = f"random-weight {MODEL_NAMES.get(p['teacher_model'], p['teacher_model'])} teacher (never trained)"
        if p.get("kd_logits", "raw") == "standardized":
            source += ", logit-standardised KD"
    extra = "" if p["temperature"] == 20 or source.startswith("no") else f", T = {p['temperature']:g}"
    trained = "" if p["regime"] == "none" else f", students trained with {regime_name(p['regime'])}"
    return f"Students {students} ← {source}{trained}{extra} ({data}, profile {p['profile']})"


def part_header(part: str, profile: str, rows: list[dict], dataset: str, store: RunStore | None = None) -> str:
    """One paragraph: which part, dataset, profile, seeds, hardware and where the runs come from."""
    seeds = sorted({r["seed"] for r in rows})
    devices = sorted({r.get("device") or "?" for r in rows})
    n_rec = sum(1 for r in rows if r.get("record"))
    where = []
    if n_rec:
        where.append(f"{n_rec} committed records (`results/{profile}/`)")
    if len(rows) - n_rec:
        where.append(f"{len(rows) - n_rec} runs trained in this build's run store")
    name = DATASET_NAMES.get(dataset, dataset)
    return (f"**{PARTS.get(part, part)}.** Dataset **{name}**, profile `{profile}`, "
            f"seeds {seeds if seeds else 'none yet'}, {len(rows)} finished runs"
            + (f" ({' and '.join(where)})" if where else "") + f"; hardware: {', '.join(devices) if rows else '-'}.")


_IPYTHON_NAMES = {"In", "Out", "get_ipython", "exit", "quit", "open"}


def notebook_params(kind: str, namespace: dict) -> dict:
    """The notebook's parameters, validated: call it first, right after the ``parameters`` cell.

    At that point every plain value in the namespace was set by the ``parameters`` cell or
    injected by papermill, so a name the notebook does not know is an unknown parameter, and
    ``validate_params`` rejects it (with the nearest valid name) as it rejects a wrong type.
    """
    params = {k: v for k, v in namespace.items() if not k.startswith("_") and k not in _IPYTHON_NAMES
              and not isinstance(v, (types.ModuleType, types.FunctionType, types.BuiltinFunctionType, type))}
    return validate_params(kind, params)


def public_path_text(text: str) -> str:
    """``text`` with every absolute path cut to its last two components (no machine's paths in the book)."""
    import re

    return re.sub(r"(?<![\w.])/(?:[^\s/`'\"]+/)*([^\s/`'\"]+/[^\s/`'\"]+)", r"\1", str(text))


def report_links(profile: str, part: str, grid: dict | None = None) -> dict:
    """run id -> the relative URL of the run report that shows it (from a chapter page of ``part``)."""
    from ..runs.plan import load_grid, plan, task_configs
    from ..runs.store import run_id

    grid = grid or load_grid()
    folder = {"I": "part1", "II": "part2"}.get(part, part)
    return {run_id(c): f"../runs/{folder}/{t.name}.html" for t in plan(profile, grid) for c in task_configs(t, grid)}


def linked(text: str, rows: Iterable[dict] | pd.DataFrame, links: dict) -> str:
    """``text`` as a link to the report of the runs ``rows`` came from (their first one's task)."""
    rows = list(rows.to_dict("records") if hasattr(rows, "to_dict") else rows)
    href = next((links[r["id"]] for r in rows if r.get("id") in links), None)
    return f'<a href="{href}" title="the run report">{text}</a>' if href and text != "-" else text


def run_location(run: Run) -> str:
    """Where a run lives, relative to the repository or its store (never an absolute path)."""
    from pathlib import Path

    from ..base.paths import REPO

    folder = Path(run.folder).resolve()
    try:
        rel = folder.relative_to(REPO)
    except ValueError:
        rel = Path(*folder.parts[-3:])  # <profile>/<kind>/<id> inside the run store
    tag = " (committed record)" if getattr(run, "record", False) else ""
    return f"`{rel}`{tag}"


def missing_table(configs: list[dict], profile: str, runs: Path | str | None = None,
                  grid_path: Path | str | None = None) -> Styler | None:
    """The runs of a task that are not finished, each with the command that makes it or why none can
    (:func:`kdlib.book.fill.fill_plan`: the pipeline's own rule; a student of a committed record that cannot teach
    it is never given a command)."""
    import pandas as pd

    from ..runs.plan import load_grid
    from ..runs.store import RunStore, run_id
    from .fill import NOT_FILLABLE, fill_command, fill_plan

    grid = load_grid(grid_path)
    gpu = profile == "paper" or profile.startswith("paper-")
    wanted = {run_id(c) for c in configs}
    seeds = sorted({c["seed"] for c in configs})
    plan_rows = {r["id"]: r for r in fill_plan(RunStore(runs, profile), grid, experiments=list(grid["experiments"]),
                                               seeds=seeds) if r["id"] in wanted}
    rows = []
    for cfg in configs:
        rid = run_id(cfg)
        r = plan_rows.get(rid, {"fillable": False, "why": "not planned by the grid", "only": ""})
        how = (fill_command(profile, [cfg["seed"]], r["only"].split(",") if r["only"] else None, gpu) if r["fillable"]
               else f"none: {r['why']}")
        rows.append({"missing run": rid, "model": cfg["model"]["name"], "seed": cfg["seed"], "made by": how})
    n_bad = sum(1 for x in rows if x["made by"].startswith("none"))
    caption = f"{len(rows)} runs of this task are not finished" + (
        f"; {n_bad} can never be made ({NOT_FILLABLE.split(' (')[0]})" if n_bad else "")
    return pd.DataFrame(rows).style.hide(axis="index").set_caption(caption)


def provenance_table(runs: list[Run]) -> Styler:
    """One row per run: where and how it was made (from its provenance.json)."""
    import pandas as pd

    rows = []
    for run in runs:
        prov = run.provenance()
        v = prov.get("versions", {})
        data = prov.get("datasets") or [{}]
        rows.append({"run": run.id, "seed": run.config["seed"], "device": prov.get("device_name", "?"),
                     "CPUs": prov.get("cpus"), "torch": v.get("torch"), "python": v.get("python"),
                     "commit": (prov.get("git_commit") or "?")[:10] + (" (dirty)" if prov.get("git_dirty") else ""),
                     "finished": str(prov.get("time", "?"))[:16].replace("T", " "),
                     "train s": round(prov.get("wall_seconds", {}).get("train", float("nan")), 1),
                     "data": f"{data[0].get('dataset', '?')} ({data[0].get('order', '?')} order, checksum "
                             f"{str(data[0].get('checksum', '?'))[:12]})"})
    return pd.DataFrame(rows).style.hide(axis="index")


def history_figure(runs: list[Run], title: str = "") -> Figure:
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(9, 3.4), layout="constrained")  # constrained: no title on a label
    for run in runs:
        h = run.read_history()
        cfg = run.config
        label = f"{cfg['model']['name']} seed {cfg['seed']}" + (f" a={cfg['alpha']:g}" if cfg["kind"] == "student" else "")
        epochs = [r["epoch"] for r in h]
        axes[0].plot(epochs, [r["loss"] for r in h], marker="o", label=label)
        axes[1].plot(epochs, [r["train_acc"] for r in h], marker="o", label=label)
    axes[0].set(xlabel="epoch", ylabel="training loss")
    axes[1].set(xlabel="epoch", ylabel="training accuracy\n(on the batches it trained on)")
    axes[1].legend(fontsize=7)
    fig.suptitle(title, fontsize=10)
    return fig


def metrics_table(runs: list[Run], split: str = "test") -> pd.DataFrame:
    import pandas as pd

    rows = []
    for run in runs:
        cfg = run.config
        m = run.read_json("metrics.json")[split]
        prov = run.read_json("provenance.json")
        row = {"run": run.id, "model": MODEL_NAMES.get(cfg["model"]["name"], cfg["model"]["name"]), "seed": cfg["seed"]}
        row.update({short: round(float(m[k]), 3) for k, short in METRIC_COLUMNS.items() if k in m})
        row["train s"] = round(float(prov["wall_seconds"]["train"]), 1)
        rows.append(row)
    # the regime, teacher, alpha and T are the task's, stated above the table: not repeated on every row
    return pd.DataFrame(rows)


# the metrics of a run report, under short column names (the run report's page is one column wide)
METRIC_COLUMNS = {"accuracy": "acc.", "precision": "prec.", "recall": "recall", "f1": "F1", "nll": "NLL",
                  "ece": "ECE", "class_separability": "sep.", "kl_to_human": "KL human",
                  "agreement_with_teacher": "agrees", "kl_teacher_student": "KL teacher"}
