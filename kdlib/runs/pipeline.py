"""Run one teacher config, or one group of student configs, into the run store.

A finished run is a cache hit; an unfinished one resumes from its checkpoint. These functions
are what the notebooks, ``python -m kdlib grid`` and the Snakemake rules call, so every path
writes the same run store.

A student group whose input is clean (``augment: none``) distils from its teacher's cached logits on the
training split; one whose input is augmented needs the teacher online (its weights). So a teacher that is
only a committed record (:mod:`kdlib.runs.compact`, no weights) still teaches clean students where the record
carries its training-set logits (float16; the students' ``provenance.json`` says so under
``teacher.logits``), and :class:`TeacherWeightsMissing` names the fix for the others.
"""
from __future__ import annotations

import contextlib
import hashlib
import time

import numpy as np
import torch

from ..blocks.augment import build_augmentation
from ..blocks.calibration import (
    ScaledTeacher,
    calibration_mask,
    temperature_scaling_report,
)
from ..data.loader import DeviceLoader
from ..data.memo import split_of
from ..data.registry import NORMALIZATION
from ..train.checkpoints import atomic_torch_save, load_checkpoint_file
from ..train.loop import fit, predict, teacher_logits_on
from ..train.recipe import Learner, NumericalError, Recipe, seed_everything
from .evaluate import _build, evaluate_model, load_model
from .provenance import provenance
from .store import COMPACT_TRAIN_LOGITS, TRAIN_LOGITS, ArtifactError, Run, RunStore

__all__ = ["run_teacher", "run_students", "TeacherWeightsMissing", "resolve_device", "stream_seeds",
           "read_train_logits"]


def resolve_device(device: str | torch.device | None = None) -> torch.device:
    if device in (None, "auto"):
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(device)


def stream_seeds(seed: int) -> tuple[int, int]:
    """(order_seed, aug_seed) of a run seed: every run of one seed sees the same batch stream."""
    return 1000 * seed + 1, 1000 * seed + 2


def _train_loader(config: dict, device, shuffle=True, augment=None) -> DeviceLoader:
    ds = split_of(config["dataset"], "train", "subset")
    mean, std = NORMALIZATION[ds.name]
    order_seed, aug_seed = stream_seeds(config["seed"])
    return DeviceLoader(ds.images, ds.labels, config["recipe"]["batch_size"],
                        build_augmentation(config["augment"] if augment is None else augment, ds.num_classes),
                        mean=mean, std=std, device=device, num_classes=ds.num_classes, shuffle=shuffle,
                        order_seed=order_seed, aug_seed=aug_seed)


def _dataset_provenance(config):
    out = []
    for split, key in (("train", "subset"), ("test", "test_subset")):
        out.append(split_of(config["dataset"], split, key).provenance())
    return out


def _finish(run: Run, learner: Learner, metrics, arrays, device, t_start, t_train, extra=None):
    from .health import run_health

    run.write_history(learner.history)
    run.write_arrays("predictions.npz", compress=False, **arrays)  # the record (results/) is the compact copy
    metrics["health"] = run_health(metrics, learner.history, int(arrays["test_probs"].shape[1]),
                                   untrained=bool(run.config.get("untrained")))
    run.write_json("metrics.json", metrics)
    prov = provenance(device, _dataset_provenance(run.config),
                      {"train": t_train, "total": time.perf_counter() - t_start})
    prov.update(extra or {})
    run.write_json("provenance.json", prov)
    run.mark_done()


class TeacherWeightsMissing(FileNotFoundError):
    """A student's teacher is a committed record: its metrics are known, its weights are not here (and, for
    students on clean input, its record carries no training-set logits either). ``online``: whether the
    students needed the teacher online (augmented input), so that only its weights would do."""

    online = True


def _online(config: dict) -> bool:
    """Whether a student group needs its teacher online: its input is augmented, so the teacher's logits are
    those of each augmented batch (clean input: the teacher's cached logits on the training split)."""
    return config["augment"] != "none"


def _teacher_for(store: RunStore, tid: str, configs: list[dict]) -> Run:
    """The finished teacher run of a student group, or TeacherWeightsMissing where it cannot teach them here:
    a record (no weights) teaches only students on clean input, and only where it carries its logits."""
    teacher_run = store.find(tid, "teacher")
    if teacher_run is None:
        raise FileNotFoundError(f"teacher run {tid} is not finished in {store.root / store.profile}; "
                                f"train it first (python -m kdlib grid --profile {store.profile})")
    online = _online(configs[0])
    if teacher_run.has_weights and (online or teacher_run.path(TRAIN_LOGITS).is_file()):
        return teacher_run
    if not online and teacher_run.record and teacher_run.path(COMPACT_TRAIN_LOGITS).is_file():
        return teacher_run  # distilled from the record's float16 logits
    prov = teacher_run.provenance()
    cfg = teacher_run.config
    made = f"{prov.get('device_name', 'another machine')}, {str(prov.get('time', '?'))[:10]}"
    names = ", ".join(sorted({c["model"]["name"] for c in configs}))
    if online:
        why = (f"their input is augmented ({configs[0]['augment']}), so the teacher must run on every augmented "
               f"batch: that needs its weights, which a record does not keep (a record teaches only students on "
               f"clean input, from its training-set logits)")
    else:
        why = (f"they train on the teacher's cached training-set logits, and this record carries none (it was "
               f"exported before records kept them, as {COMPACT_TRAIN_LOGITS}); re-export the teacher from a run "
               f"store that still holds it (python -m kdlib export) to make them trainable from the record")
    err = TeacherWeightsMissing(
        f"the students ({names}, seed {configs[0]['seed']}) need teacher {tid} ({cfg['model']['name']}, "
        f"{cfg['augment']}, seed {cfg['seed']}), which is a committed record in {teacher_run.folder.parent.parent} "
        f"(trained on {made}) without its weights: {why}. Otherwise train them where the teacher can "
        f"be retrained, with the records set aside: python -m kdlib grid --profile {store.profile} "
        f"--seeds {configs[0]['seed']} --ignore-results (on a GPU for the paper profile). The retrained teacher "
        f"is a new realisation: its students are recorded under it, and the importer refuses students whose "
        f"teacher differs from the recorded one.")
    err.online = online  # what is missing: the weights (augmented input) or the record's logits (clean input)
    raise err


def run_teacher(config: dict, store: RunStore, device: str | torch.device | None = None,
                progress: bool = True) -> Run:
    """Train and evaluate one teacher (or return it from the store)."""
    run = store.run(config)
    if run.done:
        return run
    device = resolve_device(device)
    store.ensure_writable()
    with run.lock():
        if run.done:
            return run
        store.prepare(run)
        t0 = time.perf_counter()
        seed_everything(config["seed"])
        model = _build(config["model"], config["dataset"]["name"])
        learner = Learner("teacher", model, Recipe(**config["recipe"]), alpha=0.0, checkpoint=run.checkpoint)
        loader = _train_loader(config, device)
        stop, matched = (None, None)
        if config.get("stop_at_accuracy_of"):
            stop, matched = _accuracy_stop(model, config, store, device)
        try:
            if not config.get("untrained"):
                fit([learner], loader, progress=progress,
                    desc=f"teacher {config['model']['name']} {config['augment']}", stop=stop)
            else:  # the random-teacher control (E13): its seeded initial weights, kept for online students
                model.to(device).eval()
                atomic_torch_save({"model": model.state_dict(), "epoch": 0}, run.checkpoint)
        except NumericalError as err:
            run.record_failure(err)
            raise
        t_train = time.perf_counter() - t0
        if stop is not None:
            stop(0)  # the held-out accuracy of the final model (the last epoch is not checked inside fit)
        metrics, arrays = evaluate_model(model, config, device)
        extra = {"engine": learner.engine or ("none: untrained" if config.get("untrained") else "")}
        if matched is not None:
            metrics["accuracy_match"] = {**matched, "stopped_at_epoch": len(learner.history),
                                         "heldout_accuracy": matched["last"],
                                         "reached": matched["last"] >= matched["target"]}
            metrics["accuracy_match"].pop("last")
        # teacher logits on the clean training split, once per teacher: exact for every clean student
        clean = _train_loader(config, device, shuffle=False, augment="none")
        run.write_arrays(TRAIN_LOGITS, logits=teacher_logits_on(model, clean).cpu().numpy())
        _finish(run, learner, metrics, arrays, device, t0, t_train, extra)
    return run


def _heldout(config: dict):
    """The held-out half of the test split (even dataset index; :func:`kdlib.blocks.calibration.calibration_mask`)."""
    ds = split_of(config["dataset"], "test", "test_subset")
    return ds, calibration_mask(ds.indices)


def _accuracy_stop(model, config: dict, store: RunStore, device):
    """``stop(epoch)`` for a teacher stopped early at another teacher's accuracy (grid E11): True once the
    model's accuracy on the held-out half of the test split reaches that of the finished teacher run
    ``config["stop_at_accuracy_of"]`` on the same images; and the dict it fills (target, last, run)."""
    tid = config["stop_at_accuracy_of"]
    target_run = store.find(tid, "teacher")
    if target_run is None:
        raise FileNotFoundError(f"this teacher stops at the accuracy of teacher run {tid}, which is not finished in "
                                f"{store.root / store.profile}; train it first (python -m kdlib grid --profile "
                                f"{store.profile} --only E1)")
    pred = target_run.read_predictions()
    keep = calibration_mask(pred["test_indices"])
    target = float((pred["test_probs"][keep].argmax(1) == pred["test_labels"][keep]).mean())
    ds, mask = _heldout(config)
    mean, std = NORMALIZATION[config["dataset"]["name"]]
    loader = DeviceLoader(ds.images[mask], ds.labels[mask], 1000, "none", mean=mean, std=std, device=device,
                          num_classes=10, shuffle=False)
    state = {"target": target, "last": 0.0, "of": tid, "n_heldout": int(mask.sum())}

    def stop(epoch: int) -> bool:
        out = predict(model, loader)
        state["last"] = float((out["probs"].argmax(1) == out["labels"]).mean())
        return state["last"] >= target

    return stop, state


def _check_group(configs: list[dict]) -> None:
    keys = {(c.get("teacher"), c["augment"], c["seed"], c["recipe"]["epochs"], c["recipe"]["batch_size"],
             str(c["dataset"]), c.get("teacher_calibration", "none"), c.get("kd_logits", "raw")) for c in configs}
    if len(keys) != 1:
        raise ValueError("students of one group must share teacher, teacher calibration, logit standardisation, "
                         "augment, seed, epochs, batch size and dataset")


def _learners(store: RunStore, pending: list[Run]) -> list[Learner]:
    """A fresh student (seeded by its seed and model name) for each pending run, its folder prepared."""
    learners = []
    for r in pending:
        store.prepare(r)
        cfg = r.config
        seed_everything(cfg["seed"] * 7919 + sum(map(ord, cfg["model"]["name"])))
        model = _build(cfg["model"], cfg["dataset"]["name"])
        learners.append(Learner(f"{cfg['model']['name']} a={cfg['alpha']}", model, Recipe(**cfg["recipe"]),
                                temperature=cfg["temperature"], alpha=cfg["alpha"], checkpoint=r.checkpoint,
                                kd_logits=cfg.get("kd_logits", "raw")))
    return learners


def _calibrated_teacher(teacher_run: Run, first: dict, teacher: torch.nn.Module | None, preds: dict, prov: dict,
                        online: bool, device: torch.device) -> tuple[torch.nn.Module | None, torch.Tensor | None]:
    """The teacher as the students see it: temperature-scaled where the config asks, and for clean students
    its cached training-set logits instead of the model (``prov`` records both)."""
    scale = None
    if first.get("teacher_calibration", "none") == "temperature":
        report = _teacher_scaling(teacher_run, preds)
        scale = report["temperature"]
        if teacher is not None:
            teacher = ScaledTeacher(teacher, scale)
        prov["teacher_calibration"] = {"method": "temperature", **report}
    if online:
        return teacher, None
    train = split_of(first["dataset"], "train", "subset")
    logits = read_train_logits(teacher_run, len(train))
    prov["teacher"]["logits"] = _logits_provenance(teacher_run, logits, train)
    if scale is not None:
        logits = logits / np.float32(scale)
    return teacher, torch.as_tensor(logits, device=device)


def _fit_by_epoch(pending: list[Run], learners: list[Learner], first: dict, device: torch.device,
                  teacher: torch.nn.Module | None, cached: torch.Tensor | None, progress: bool) -> None:
    """Train the students in lockstep, one group per epoch they resume from; a numerical failure is
    recorded in every run of its group."""
    by_epoch: dict = {}
    for r, learner in zip(pending, learners):
        by_epoch.setdefault(_checkpoint_epoch(r), []).append((r, learner))
    for members in by_epoch.values():
        loader = _train_loader(first, device)
        group = [learner for _, learner in members]
        try:
            fit(group, loader, teacher=None if cached is not None else teacher, cached_teacher_logits=cached,
                progress=progress, desc=f"students {first['augment']} <- {first.get('teacher') or 'no teacher'}")
        except NumericalError as err:
            for r, _ in members:
                r.record_failure(err)
            raise


def run_students(configs: list[dict], store: RunStore, device: str | torch.device | None = None,
                 progress: bool = True) -> list[Run]:
    """Distil a group of students that share a teacher, a regime, a seed and a schedule, in lockstep."""
    if not configs:
        return []
    _check_group(configs)
    runs = [store.run(c) for c in configs]
    pending = [r for r in runs if not r.done]
    if not pending:
        return runs
    device = resolve_device(device)
    store.ensure_writable()
    first = configs[0]
    teacher_run = _teacher_for(store, first["teacher"], configs) if first.get("teacher") else None
    with contextlib.ExitStack() as stack:
        for r in pending:
            stack.enter_context(r.lock())
        pending = [r for r in pending if not r.done]
        if not pending:
            return runs
        t0 = time.perf_counter()
        online = _online(first)
        # the teacher's model only where it runs online; clean students read its cached logits
        teacher = load_model(teacher_run, device) if teacher_run is not None and online else None
        teacher_preds = teacher_run.read_predictions() if teacher_run is not None else None
        teacher_prov = ({"teacher": {"id": teacher_run.id, "metrics_sha256": hashlib.sha256(
            teacher_run.path("metrics.json").read_bytes()).hexdigest()}} if teacher_run is not None else {})
        learners = _learners(store, pending)
        cached = None
        if teacher_run is not None:
            teacher, cached = _calibrated_teacher(teacher_run, first, teacher, teacher_preds, teacher_prov, online,
                                                  device)
        _fit_by_epoch(pending, learners, first, device, teacher, cached, progress)
        t_train = time.perf_counter() - t0
        for r, learner in zip(pending, learners):
            metrics, arrays = evaluate_model(learner.model, r.config, device, teacher_preds)
            _finish(r, learner, metrics, arrays, device, t0, t_train, {**teacher_prov, "engine": learner.engine})
    return runs


def _teacher_scaling(teacher_run: Run, preds: dict) -> dict:
    """The post-hoc temperature of a teacher, fitted on the even-index half of its test predictions
    (:func:`kdlib.blocks.calibration.temperature_scaling_report`)."""
    missing = [k for k in ("test_logits", "test_labels", "test_indices") if k not in preds]
    if missing:
        raise ArtifactError(f"teacher {teacher_run.folder}: predictions lack {missing}, which temperature scaling "
                            f"needs; retrain the teacher (delete its folder) or import a complete record")
    return temperature_scaling_report(preds["test_logits"], preds["test_labels"], preds["test_indices"])


def _logits_provenance(teacher_run: Run, logits: np.ndarray, train) -> dict:
    """What a student's provenance says of the cached logits it was distilled from (``teacher.logits``)."""
    if teacher_run.path(TRAIN_LOGITS).is_file():
        return {"from": "run", "file": TRAIN_LOGITS, "dtype": "float32"}
    from .compact import logits_digest

    used = [d for d in teacher_run.provenance().get("datasets") or [] if d.get("split") == "train"]
    same_order = used and used[0].get("order") == "original" == train.order  # rows are the dataset's own order
    if used and used[0].get("checksum") != train.checksum and not same_order:
        raise ArtifactError(f"teacher record {teacher_run.folder} computed its training-set logits on a copy of "
                            f"{train.name} in {used[0].get('order')!r} order ({used[0].get('source')}), this machine "
                            f"reads {train.source} in {train.order!r} order: row i need not be the same image. Use "
                            f"a copy in the dataset's original order (with its index map), or retrain the teacher")
    return {"from": "record", "file": COMPACT_TRAIN_LOGITS, "dtype": "float16", "digest": logits_digest(logits),
            "record": f"{teacher_run.folder.parent.parent.name}/teacher/{teacher_run.id}"}


def read_train_logits(run: Run, n: int, num_classes: int = 10) -> np.ndarray:
    """A teacher's cached logits on the clean training split: float (n, num_classes), finite, or an
    ArtifactError naming the file and the fix (a short or object-dtype file is not used silently). From the
    run's ``train_logits.npz``, or from a record's float16 ``train-logits-fp16.npz`` (returned as float32)."""
    name = COMPACT_TRAIN_LOGITS if run.record and not run.path(TRAIN_LOGITS).is_file() else TRAIN_LOGITS
    path = run.path(name)
    arrays = run.read_arrays(name)  # names the file when unreadable; never unpickles
    fix = (f"import the teacher's record again (python -m kdlib import) or export it again from its run store"
           if name == COMPACT_TRAIN_LOGITS else
           f"delete {path} and the teacher's DONE marker to retrain the teacher (python -m kdlib grid)")
    logits = arrays.get("logits")
    if logits is None:
        raise ArtifactError(f"{path} has no 'logits' array (it holds {sorted(arrays)}); {fix}")
    if logits.dtype.kind != "f":
        raise ArtifactError(f"{path}: logits have dtype {logits.dtype}, not floats; {fix}")
    if logits.shape != (n, num_classes):
        raise ArtifactError(f"{path}: logits of shape {logits.shape}, but the training split has {n} images of "
                            f"{num_classes} classes; the file is short or belongs to another dataset. {fix}")
    if not np.isfinite(logits).all():
        raise ArtifactError(f"{path}: logits hold NaN or Inf; {fix}")
    return logits.astype(np.float32)


def _checkpoint_epoch(run: Run) -> int:
    if not run.checkpoint.is_file():
        return 0
    return int(load_checkpoint_file(run.checkpoint, "cpu", keys=("epoch",))["epoch"])
