"""Training loops: teachers on the soft targets of their regime, students by distillation.

One loop, :func:`fit`, trains one or several *learners* in lockstep on one batch stream:
every batch is drawn (and augmented) once, the teacher (if any) runs once on **that same
tensor**, and each learner takes its own step. With a clean stream (student regime ``none``)
the teacher's outputs are deterministic, so they are computed once per teacher
(:func:`teacher_logits_on`) and looked up by row index instead.

Checkpoints (model, optimizer, scheduler, epoch, loader and RNG states, history) are written
atomically at an epoch end once ``checkpoint_every`` seconds have passed since the last one (60 s by
default; 0: every epoch) and always after the last epoch; :func:`fit` resumes from them exactly.
The loop never waits for the device inside an epoch: losses, accuracy and a non-finite-loss flag
(with the first bad step and its value) accumulate on the device and are read once per epoch. A
NaN or Inf loss then stops the run with :class:`NumericalError` naming the epoch and step, and the
last good checkpoint is kept (the bad epoch is never saved).
"""
from __future__ import annotations

import math
import time
from collections.abc import Callable

import torch
from torch import nn

from ..data.loader import DeviceLoader
from .checkpoints import _load_checkpoint, _save_checkpoint
from .recipe import Learner, NumericalError, resolve_engine
from .steps import EpochTally, _loss, autocast_for

__all__ = ["fit", "predict", "teacher_logits_on"]


def fit(learners: list[Learner], loader: DeviceLoader, teacher: nn.Module | None = None,
        cached_teacher_logits: torch.Tensor | None = None, progress: bool = True, desc: str = "train",
        on_epoch: Callable[[int], object] | None = None, checkpoint_every: float = 60.0,
        stop: Callable[[int], bool] | None = None, engine: str = "auto") -> list[Learner]:
    """Train ``learners`` in lockstep on ``loader`` and return them.

    All learners must be at the same epoch (fresh, or resumed from checkpoints of one epoch).
    Distilling learners get the teacher's logits on the very batch tensor they see: looked up in
    ``cached_teacher_logits`` by row (exact for a clean stream) or computed online by ``teacher``
    in eval mode under ``inference_mode``. ``checkpoint_every``: seconds between checkpoints
    (0: every epoch); the last epoch is always saved. ``stop(epoch) -> bool``, called after each
    epoch: True ends training there (that epoch is checkpointed, as a last epoch would be); it may
    evaluate the models, which are set back to training mode after it.

    ``engine`` says how each step runs (the results are the same up to float rounding; tested):
    ``"plain"``: ``torch.optim.SGD`` and the scheduler, learner by learner; ``"static"``: the whole
    group's step on static device buffers (:class:`kdlib.train.fast.GroupStep`) run eagerly; ``"graphs"``: that
    step captured as CUDA graphs (one replay per batch for the whole group; a failed capture falls back to
    ``"static"`` with a warning); ``"auto"`` (default): ``$KDLIB_ENGINE`` if set, else graphs on CUDA and
    plain elsewhere. The engine used is in each learner's ``engine``. On CUDA, cuDNN's autotuner
    (``cudnn.benchmark``) is on while training.
    """
    from tqdm.auto import tqdm

    if not learners:
        return learners
    needs_teacher = _check_fit_args(learners, loader, teacher, cached_teacher_logits, checkpoint_every)
    device, steps = loader.device, len(loader)
    opts, scheds, start = _prepare(learners, loader, teacher)
    epochs = learners[0].recipe.epochs
    if stop is not None and 0 < start < epochs and stop(start):  # it had stopped there before an interruption
        for learner in learners:
            learner.model.eval()
        return learners
    engine = resolve_engine(engine, device)
    stepper = None
    if engine in ("static", "graphs"):
        from .fast import GroupStep

        stepper = GroupStep(learners, opts, device, steps, start * steps, _loss,
                            teacher=teacher if cached_teacher_logits is None else None,
                            cached_teacher_logits=cached_teacher_logits, graphs=engine == "graphs")
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = True  # fixed shapes: let cuDNN pick its fastest kernels once
    bar = tqdm(range(start, epochs), desc=desc, disable=not progress, initial=start, total=epochs, unit="epoch")
    last_saved, last_save_time = start, time.perf_counter()
    tally = stepper.tally if stepper is not None else EpochTally(len(learners), device)
    for epoch in bar:
        t0 = time.perf_counter()
        batches = tqdm(loader, desc=f"epoch {epoch + 1}", leave=False, disable=not progress, total=steps)
        if stepper is not None:
            stepper.begin_epoch()
            seen = 0
            for batch in batches:
                stepper(batch)
                seen += batch.x.shape[0]
        else:
            tally.reset()
            seen = _plain_epoch(learners, opts, scheds, batches, tally,
                                teacher if needs_teacher else None, cached_teacher_logits if needs_teacher else None)
        _refuse_a_bad_loss(learners, tally, epoch, last_saved)
        if stepper is not None:  # the torch optimisers and schedulers where the plain path would have them
            stepper.sync_to(scheds, (epoch + 1) * steps)
        seconds = time.perf_counter() - t0
        _record_epoch(learners, opts, tally, epoch, seen, seconds)
        stop_now = bool(stop(epoch + 1)) if stop is not None and epoch + 1 < epochs else False
        for learner in learners:
            learner.model.train()
        if epoch + 1 == epochs or stop_now or time.perf_counter() - last_save_time >= checkpoint_every:
            for learner, opt, sched in zip(learners, opts, scheds):
                _save_checkpoint(learner, opt, sched, loader, epoch + 1)
            last_saved, last_save_time = epoch + 1, time.perf_counter()
        if progress:
            bar.set_postfix(loss=f"{learners[0].history[-1]['loss']:.3f}",
                            acc=f"{learners[0].history[-1]['train_acc']:.3f}", img_s=f"{seen / seconds:,.0f}")
        if on_epoch is not None:
            on_epoch(epoch + 1)
        if stop_now:
            break
    for learner in learners:
        learner.model.eval()
        learner.engine = stepper.engine if stepper is not None else "plain"
    return learners


def _check_fit_args(learners: list[Learner], loader: DeviceLoader, teacher: nn.Module | None,
                    cached_teacher_logits: torch.Tensor | None, checkpoint_every: float) -> bool:
    """Refuse what :func:`fit` cannot train; True when some learner distils (needs teacher logits)."""
    if isinstance(checkpoint_every, bool) or not isinstance(checkpoint_every, (int, float)) or \
            not math.isfinite(checkpoint_every) or checkpoint_every < 0:
        raise ValueError(f"checkpoint_every must be a number of seconds >= 0, got {checkpoint_every!r}")
    needs_teacher = any(learner.alpha > 0 for learner in learners)
    if needs_teacher and teacher is None and cached_teacher_logits is None:
        raise ValueError("a learner has alpha > 0 but neither a teacher nor cached teacher logits were given")
    if cached_teacher_logits is not None and loader.augment.spec != "none":
        raise ValueError(f"cached teacher logits are exact only for a clean stream; this loader applies "
                         f"{loader.augment.spec!r}: pass the teacher instead")
    epochs = learners[0].recipe.epochs
    if any(learner.recipe.epochs != epochs for learner in learners):
        raise ValueError("learners in one lockstep group must share the number of epochs")
    return needs_teacher


def _prepare(learners: list[Learner], loader: DeviceLoader, teacher: nn.Module | None) -> tuple[list, list, int]:
    """Models on the device in training mode, the teacher frozen, optimisers and schedulers built and every
    checkpoint resumed: ``(optimisers, schedulers, start epoch)``."""
    device = loader.device
    if teacher is not None:
        teacher.eval()
        for p in teacher.parameters():
            p.requires_grad_(False)
    for learner in learners:  # on the device before the optimisers exist: resumed momentum buffers follow the parameters
        learner.model.to(device).train()
        if device.type == "cuda":
            learner.model.to(memory_format=torch.channels_last)
    opts = [learner.recipe.optimizer(learner.model) for learner in learners]
    scheds = [learner.recipe.scheduler(o, len(loader)) for learner, o in zip(learners, opts)]
    loader_states = [_load_checkpoint(learner, o, s, device) for learner, o, s in zip(learners, opts, scheds)]
    starts = {learner.start_epoch for learner in learners}
    if len(starts) != 1:
        raise ValueError(f"learners resume from different epochs {sorted(starts)}; train them in separate groups")
    if loader_states[0] is not None:
        loader.load_state_dict(loader_states[0])
    return opts, scheds, starts.pop()


def _plain_epoch(learners: list[Learner], opts: list, scheds: list, batches, tally: EpochTally,
                 teacher: nn.Module | None, cached_teacher_logits: torch.Tensor | None) -> int:
    """One epoch of the plain engine: per batch, the teacher's logits once (looked up or computed on that very
    tensor), then each learner's step. Returns the number of images seen."""
    seen = 0
    for step, batch in enumerate(batches):
        x = batch.x
        teacher_logits = None
        if cached_teacher_logits is not None:
            teacher_logits = cached_teacher_logits[batch.index]
        elif teacher is not None:
            with torch.inference_mode(), autocast_for(x.device):
                teacher_logits = teacher(x).float()
            teacher_logits = teacher_logits.clone()
        for i, (learner, opt, sched) in enumerate(zip(learners, opts, scheds)):
            with autocast_for(x.device):
                logits = learner.model(x)
            parts = _loss(learner, logits, batch.y_soft, teacher_logits)
            tally.add(i, parts, logits, batch.labels, step)
            opt.zero_grad(set_to_none=True)
            parts["loss"].backward()
            opt.step()
            sched.step()
        seen += x.shape[0]
    return seen


def _refuse_a_bad_loss(learners: list[Learner], tally: EpochTally, epoch: int, last_saved: int) -> None:
    """:class:`NumericalError` naming the epoch and step when a learner's loss was not finite this epoch."""
    for i, learner in enumerate(learners):
        step_bad = int(tally.bad_step[i])
        if step_bad >= 0:
            raise NumericalError(
                f"{learner.name}: loss is {float(tally.bad_value[i])} at epoch {epoch + 1}, step {step_bad + 1}. "
                f"Likely cause: a learning rate too high for this model (lr={learner.recipe.lr}) or corrupt inputs. "
                f"The " + (f"last good checkpoint (epoch {last_saved}) is kept" if last_saved and learner.checkpoint
                           else "run had no checkpoint yet") + "; lower lr and run again."
            )


def _record_epoch(learners: list[Learner], opts: list, tally: EpochTally, epoch: int, seen: int,
                  seconds: float) -> None:
    """Append the epoch's means (read from the device once) to each learner's history."""
    for i, (learner, opt) in enumerate(zip(learners, opts)):
        acc = tally.read(i)
        learner.history.append({
            "epoch": epoch + 1, "loss": acc["loss"] / seen, "loss_ce": acc["loss_ce"] / seen,
            "loss_kd": acc["loss_kd"] / seen, "train_acc": acc["correct"] / seen,
            "lr": opt.param_groups[0]["lr"], "seconds": seconds, "images_per_s": seen / seconds,
        })


@torch.no_grad()
def predict(model: nn.Module, loader: DeviceLoader) -> dict:
    """Probabilities, logits and penultimate embeddings of ``model`` over ``loader`` (in order)."""
    model.eval()
    device = loader.device
    logits, embeds, labels = [], [], []
    for batch in loader:
        with autocast_for(device):
            e = model.embed(batch.x)
            z = model.classifier(e)
        logits.append(z.float().cpu())
        embeds.append(e.float().cpu())
        labels.append(batch.labels.cpu())
    z = torch.cat(logits)
    return {"probs": torch.softmax(z, 1).numpy(), "logits": z.numpy(), "embeddings": torch.cat(embeds).numpy(),
            "labels": torch.cat(labels).numpy()}


@torch.no_grad()
def teacher_logits_on(teacher: nn.Module, loader: DeviceLoader) -> torch.Tensor:
    """The teacher's logits on every row of a clean, unshuffled loader, on the loader's device."""
    if loader.augment.spec != "none" or loader.shuffle:
        raise ValueError("teacher logits can be cached only on the clean split in order (augment='none', shuffle=False)")
    teacher.eval()
    out = torch.empty(loader.num_samples, loader.num_classes, device=loader.device)
    for batch in loader:
        with torch.inference_mode(), autocast_for(loader.device):
            out[batch.index] = teacher(batch.x).float()
    return out
