"""From the run store to rows: one row per finished run, with the selections the chapters use."""
from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import yaml

from ..base.paths import PAPER_TABLES
from ..blocks.spec import mixer_names
from ..runs.store import RunStore

__all__ = ["regime_key", "collect", "paper_tables", "PAPER_REGIMES", "PAPER_TABLES", "select", "distilled",
           "load_predictions", "teacher_train_logits", "heldout_view", "align"]


PAPER_REGIMES = ["none", "flipcrop", "cutout", "mixup", "cutmix"]


def paper_tables(path: Path | str | None = None) -> dict:
    return yaml.safe_load(Path(path or PAPER_TABLES).read_text())


def regime_key(spec: str) -> str:
    """The paper's name for a canonical spec: the last mixer names it (flipcrop+cutmix -> cutmix)."""
    return mixer_names(spec)[-1]


def collect(store: RunStore, grid: dict | None = None, plan_only: bool = True, include_failed: bool | None = None,
            extensions: bool = False) -> list[dict]:
    """One flat record per finished run: config fields, teacher regime and test metrics.

    ``plan_only`` (the default): only the runs the current grid plans for ``store.profile``, so a
    one-off run (another temperature) or the runs of an edited recipe never join a table.
    Failed runs (:func:`kdlib.runs.health.run_health`: at chance, a non-finite or flat loss) are left
    out unless ``include_failed`` (default: the profile's ``failed_runs`` setting: ``keep`` only for the
    smoke profiles, whose runs are at chance by design); each row says ``failed`` and why (``failure``).
    Each row names the ``experiments`` that plan it. Runs that only the extension experiments plan
    (``extension: true`` in grid.yaml: paper-literal and label-smoothed teachers, other temperatures, the
    cross of regimes, calibrated teachers) are left out unless ``extensions``: the paper's chapters never
    see them.
    """
    from ..runs.health import run_health
    from ..runs.plan import extension_experiments, load_grid

    grid = grid or load_grid()
    if include_failed is None:
        include_failed = (grid.get("profiles", {}).get(store.profile, {}).get("failed_runs") == "keep")
    experiments_of = _experiments_of(store.profile, grid)
    extension = set(extension_experiments(grid))
    teachers = {r.id: r.config for r in store.runs("teacher")}
    rows = []
    for run in store.runs():
        if plan_only and run.id not in experiments_of:
            continue
        exps = experiments_of.get(run.id, set())
        if not extensions and exps and exps <= extension:
            continue
        try:
            metrics = run.read_json("metrics.json")
            history = run.read_history()
        except (OSError, ValueError) as err:
            raise ValueError(f"{run.folder}: unreadable record ({err}); delete the folder to retrain it, or import "
                             f"the record again") from None
        health = run_health(metrics, history, int(metrics.get("num_classes", 10)), bool(run.config.get("untrained")))
        if health["failed"] and not include_failed:
            continue
        tcfg = teachers.get(run.config.get("teacher")) if run.config["kind"] == "student" else None
        rows.append(_row(run, metrics, health, tcfg, exps))
    return rows


def _experiments_of(profile: str, grid: dict) -> dict[str, set[str]]:
    """Run id -> the experiments that plan it."""
    from ..runs.plan import plan, task_configs
    from ..runs.store import run_id

    out: dict[str, set[str]] = {}
    for task in plan(profile, grid):
        for c in task_configs(task, grid):
            out.setdefault(run_id(c), set()).update(task.experiments)
    return out


_TEST_METRICS = ("accuracy", "precision", "recall", "f1", "nll", "ece", "ece10", "class_separability",
                 "kl_to_human", "class_kl_to_human", "agreement_with_teacher", "kl_teacher_student")


def _row(run: object, metrics: dict, health: dict, tcfg: dict | None, exps: set[str]) -> dict:
    """The flat row of one finished run (``tcfg``: its teacher's config, for a student)."""
    cfg, test = run.config, metrics["test"]
    student = cfg["kind"] == "student"
    row = {"id": run.id, "kind": cfg["kind"], "dataset": cfg["dataset"]["name"], "model": cfg["model"]["name"],
           "regime": regime_key(cfg["augment"]), "seed": cfg["seed"], "alpha": cfg.get("alpha", 0.0),
           "temperature": cfg.get("temperature")}
    row["teacher"] = cfg.get("teacher") if student else None
    row["teacher_model"] = tcfg["model"]["name"] if tcfg else None
    row["teacher_regime"] = regime_key(tcfg["augment"]) if tcfg else None
    row["experiments"] = sorted(exps)
    row["augment"] = cfg["augment"]
    row["teacher_augment"] = tcfg["augment"] if tcfg else None
    row["label_smoothing"] = cfg["recipe"].get("label_smoothing", 0.0)
    row["teacher_label_smoothing"] = tcfg["recipe"].get("label_smoothing", 0.0) if tcfg else None
    row["teacher_calibration"] = cfg.get("teacher_calibration", "none")
    row["matched_to"] = cfg.get("stop_at_accuracy_of")  # a teacher stopped at that teacher's accuracy (E11)
    row["teacher_matched"] = bool(tcfg.get("stop_at_accuracy_of")) if tcfg else None
    row["untrained"] = bool(cfg.get("untrained"))  # the random-weight teacher (E13)
    row["teacher_untrained"] = bool(tcfg.get("untrained")) if tcfg else None
    row["kd_logits"] = cfg.get("kd_logits", "raw")  # "standardized": logit-standardised KD (E12)
    prov = run.provenance()
    row["teacher_scale"] = (prov.get("teacher_calibration") or {}).get("temperature", math.nan)
    for k in _TEST_METRICS:
        row[k] = test.get(k, math.nan)
    for k in ("discrimination", "cohesion", "adhesion"):
        row[k] = test["discrimination_embedding"][k]
    row["discrimination_logits"] = test["discrimination_logits"]["discrimination"]
    row["cinic_accuracy"] = metrics.get("cinic10-imagenet", {}).get("accuracy", math.nan)
    row["failed"] = health["failed"]
    row["failure"] = "; ".join(health["reasons"])
    row["record"] = run.record
    row["device"] = prov.get("device_name")
    return row


def _by_seed(rows, metric, **where) -> dict:
    out = {}
    for r in rows:
        if all(r.get(k) == v for k, v in where.items()) and not math.isnan(r.get(metric, math.nan)):
            out[r["seed"]] = r[metric]
    return out


def _combine(rows, metric, terms) -> dict:
    """Per seed: sum of sign * metric over ``terms`` [(sign, filter)], for the seeds every term has."""
    parts = [(sign, _by_seed(rows, metric, **where)) for sign, where in terms]
    seeds = set.intersection(*(set(v) for _, v in parts)) if parts else set()
    return {s: sum(sign * v[s] for sign, v in parts) for s in sorted(seeds)}


def select(rows: list[dict], **where: object) -> list[dict]:
    """The records matching every ``key=value``."""
    return [r for r in rows if all(r.get(k) == v for k, v in where.items())]


def distilled(rows: list[dict], model: str, teacher_regime: str, dataset: str, regime: str = "none",
              teacher_model: str = "resnet18", alpha: float = 0.5) -> list[dict]:
    """Students ``model`` (trained under ``regime``) distilled from the ``teacher_regime`` teacher."""
    return select(rows, kind="student", model=model, alpha=alpha, regime=regime, teacher_model=teacher_model,
                  teacher_regime=teacher_regime, dataset=dataset)


def load_predictions(store: RunStore, run_id_: str) -> dict:
    """The run's test predictions (full or compact record), see :meth:`kdlib.runs.store.Run.read_predictions`."""
    run = store.find(run_id_)
    if run is None:
        raise KeyError(f"no finished run {run_id_} in {store.root / store.profile} or its records")
    return run.read_predictions()


def teacher_train_logits(store: RunStore, run_id_: str) -> tuple[np.ndarray | None, np.ndarray | None]:
    """(logits, labels) of a teacher on its clean training split, in the split's order: the logits from the run
    (float32) or its record (float16), the labels from the data. ``(None, None)`` where the run kept no such
    logits or the training data is not on this machine (T. stddev is then left out, and the chapter says so)."""
    from ..data.formats import DataError
    from ..data.memo import split_of
    from ..runs.pipeline import read_train_logits
    from ..runs.store import COMPACT_TRAIN_LOGITS, TRAIN_LOGITS

    run = store.find(run_id_, "teacher")
    if run is None or not (run.path(TRAIN_LOGITS).is_file() or run.path(COMPACT_TRAIN_LOGITS).is_file()):
        return None, None
    try:
        train = split_of(run.config["dataset"], "train", "subset")
    except (DataError, FileNotFoundError, OSError):
        return None, None
    return read_train_logits(run, len(train)), np.asarray(train.labels)


def heldout_view(store: RunStore, spec: dict, need_images: bool = True) -> dict:
    """What chapters need of the profile's test split, from the data when they are here, else from the
    dataset sidecar committed with the records (``results/<profile>/datasets/``).

    Keys: ``labels``, ``indices`` (original test indices), ``classes``, ``human`` (CIFAR-10H rows in the
    same order, or None), ``images`` (uint8, N×H×W×C) with ``image_rows`` (their rows in the split:
    every row from the data, the explorer subset from the sidecar; None when neither is here),
    ``source`` ('data' or 'sidecar' or None).
    """
    from ..data.formats import DataError
    from ..data.human import human_labels_for, load_human_labels
    from ..data.memo import split_of
    from ..data.registry import CLASSES
    from ..runs.sidecar import read_dataset_sidecar

    out = {"classes": CLASSES[spec["name"]], "human": None, "images": None, "image_rows": None, "source": None}
    try:
        test = split_of(spec, "test", "test_subset")
    except (DataError, FileNotFoundError, ValueError):
        test = None
    if test is not None:
        out.update(labels=test.labels.astype(np.int64), indices=test.indices.astype(np.int64), source="data")
        if need_images:
            out["images"], out["image_rows"] = test.images, np.arange(len(test.labels))
        if spec["name"] == "cifar10":
            try:
                out["human"] = human_labels_for(test, load_human_labels())
            except (DataError, ValueError):
                pass
    side = read_dataset_sidecar(store.results, store.profile, spec["name"]) if store.results is not None else None
    if side is not None and (test is None or (out["human"] is None and "human" in side)):
        if test is None:
            out.update(labels=side["labels"], indices=side["indices"], source="sidecar")
            if need_images:
                out["images"], out["image_rows"] = side["images"], side["image_index"].astype(np.int64)
        if "human" in side and np.array_equal(side["indices"], out["indices"]):
            out["human"] = side["human"]
    if "labels" not in out:
        out.update(labels=None, indices=None)
    return out


def align(pred: dict, view: dict, key: str = "test_probs") -> np.ndarray:
    """Rows of ``pred[key]`` reordered to the view's test order (joined on the original indices)."""
    pos = {int(i): k for k, i in enumerate(pred["test_indices"])}
    return pred[key][[pos[int(i)] for i in view["indices"]]]
