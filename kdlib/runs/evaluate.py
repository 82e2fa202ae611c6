"""Evaluating a model on the test sets of its run: predictions, metrics, embeddings."""
from __future__ import annotations

import warnings

import numpy as np
import torch

from ..blocks.metrics import (
    agreement,
    class_discrimination,
    class_kl_to_human,
    class_separability,
    classification_metrics,
    ece,
    kl_to_human,
    teacher_student_kl,
)
from ..blocks.models import build_model
from ..data.datasets import load_dataset
from ..data.formats import DataError
from ..data.human import human_labels_for, load_human_labels
from ..data.loader import DeviceLoader
from ..data.memo import split_of
from ..data.registry import NORMALIZATION, DatasetNotFoundError
from ..train.checkpoints import load_checkpoint_file
from ..train.loop import predict
from .store import Run

__all__ = ["load_model", "evaluate_model"]


def _eval_sets(config: dict) -> dict:
    """name -> (Dataset, human labels or None). CIFAR-10H and CINIC-10 join when they are available."""
    spec = config["dataset"]
    test = split_of(spec, "test", "test_subset")
    sets = {"test": (test, None)}
    if test.name == "cifar10":
        try:
            sets["test"] = (test, human_labels_for(test, load_human_labels(root=spec.get("human_root"))))
        except (DataError, ValueError) as err:
            warnings.warn(f"CIFAR-10H metrics skipped: {err}", stacklevel=2)
        try:
            cinic = load_dataset("cinic10", "test-imagenet", root=spec.get("cinic_root"))
            sets["cinic10-imagenet"] = (cinic, None)
        except DatasetNotFoundError:
            pass
    return sets


def load_model(run: Run, device: str | torch.device) -> torch.nn.Module:
    """The trained model of a finished (or checkpointed) run, from its weights_only checkpoint."""
    cfg = run.config
    ds_name = cfg["dataset"]["name"]
    model = _build(cfg["model"], ds_name)
    if not run.checkpoint.is_file():
        raise FileNotFoundError(f"run {run.folder} has no checkpoint.pt; train it first")
    state = load_checkpoint_file(run.checkpoint, device)
    try:
        model.load_state_dict(state["model"])
    except RuntimeError as err:
        raise ValueError(f"checkpoint {run.checkpoint} does not fit a {cfg['model']} for {ds_name}: "
                         f"{str(err).splitlines()[0]}. The teacher run was trained for another architecture or "
                         f"class count; point the student at the right teacher.") from None
    return model.to(device).eval()


def _build(model_spec: dict, dataset_name: str):
    spec = dict(model_spec)
    name = spec.pop("name")
    mean, _ = NORMALIZATION[dataset_name]
    image_size = 28 if dataset_name in ("mnist", "fashion-mnist") else 32
    return build_model(name, num_classes=10, in_channels=len(mean), image_size=image_size, **spec)


def evaluate_model(model: torch.nn.Module, config: dict, device: str | torch.device,
                   teacher_predictions: dict | None = None) -> tuple[dict, dict]:
    """metrics dict and predictions arrays on every evaluation set of ``config``."""
    mean, std = NORMALIZATION[config["dataset"]["name"]]
    metrics, arrays = {}, {}
    for name, (ds, human) in _eval_sets(config).items():
        loader = DeviceLoader(ds.images, ds.labels, 1000, "none", mean=mean, std=std, device=device,
                              num_classes=10, shuffle=False)
        pred = predict(model, loader)
        p, y = pred["probs"], pred["labels"]
        m = classification_metrics(p, y)
        m["ece"] = ece(p, y, 15)
        m["ece10"] = ece(p, y, 10)
        m["class_separability"] = class_separability(p, y)
        m["discrimination_embedding"] = class_discrimination(pred["embeddings"], y)
        m["discrimination_logits"] = class_discrimination(pred["logits"], y)
        m["source"] = ds.source
        m["normalization"] = {"mean": mean, "std": std, "from": config["dataset"]["name"]}
        if human is not None:
            m["kl_to_human"] = kl_to_human(p, human)
            m["class_kl_to_human"] = class_kl_to_human(p, human, y)
            uncertain = ds.meta.get("uncertain_indices")
            if uncertain is not None:
                certain = ~np.isin(ds.indices, uncertain)
                m["kl_to_human_certain"] = kl_to_human(p[certain], human[certain])
                m["n_certain"] = int(certain.sum())
            arrays[f"{name}_human"] = human.astype(np.float32)
        if teacher_predictions is not None and f"{name}_probs" in teacher_predictions:
            tp = teacher_predictions[f"{name}_probs"]
            m["agreement_with_teacher"] = agreement(p, tp)
            m["kl_teacher_student"] = teacher_student_kl(tp, p)
        metrics[name] = m
        arrays[f"{name}_probs"] = p.astype(np.float32)
        arrays[f"{name}_logits"] = pred["logits"].astype(np.float32)
        arrays[f"{name}_embeddings"] = pred["embeddings"].astype(np.float16)
        arrays[f"{name}_labels"] = y.astype(np.int64)
        arrays[f"{name}_indices"] = ds.indices.astype(np.int64)
    return metrics, arrays
