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

import contextlib
import errno
import math
import os
import pickle
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from .distill import check_kd_params, kd_loss_parts
from .loader import DeviceLoader

__all__ = ["Recipe", "Learner", "fit", "resolve_engine", "ENGINES", "EpochTally", "NumericalError", "predict",
           "teacher_logits_on", "atomic_torch_save", "seed_everything", "autocast_for"]


class NumericalError(RuntimeError):
    """The loss became NaN or Inf."""


MAX_EPOCHS = 10_000
MAX_BATCH = 65_536


@dataclass
class Recipe:
    """Optimiser and schedule: SGD with Nesterov momentum, one-cycle or cosine learning rate."""

    epochs: int
    batch_size: int = 128
    lr: float = 0.1
    momentum: float = 0.9
    nesterov: bool = True
    weight_decay: float = 5e-4
    schedule: str = "onecycle"  # or "cosine"
    warmup: float = 0.2  # fraction of steps rising to lr (one-cycle)
    label_smoothing: float = 0.0

    def __post_init__(self):
        if isinstance(self.epochs, bool) or not isinstance(self.epochs, int) or not 1 <= self.epochs <= MAX_EPOCHS:
            raise ValueError(f"epochs must be an integer >= 1 (and at most {MAX_EPOCHS}), got {self.epochs!r}")
        if (isinstance(self.batch_size, bool) or not isinstance(self.batch_size, int)
                or not 1 <= self.batch_size <= MAX_BATCH):
            raise ValueError(f"batch_size must be a positive integer (at most {MAX_BATCH}), got {self.batch_size!r}")
        if not isinstance(self.nesterov, bool):
            raise ValueError(f"nesterov must be true or false, got {self.nesterov!r}")
        if not isinstance(self.schedule, str):
            raise ValueError(f"schedule must be 'onecycle' or 'cosine', got {self.schedule!r}")
        for name in ("warmup", "label_smoothing"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, (int, float)):
                raise ValueError(f"{name} must be a number, got {v!r}")
        for name in ("lr", "momentum", "weight_decay"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v) or v < 0:
                raise ValueError(f"{name} must be a finite number >= 0, got {v!r}")
        if self.lr <= 0:
            raise ValueError(f"lr must be > 0, got {self.lr!r}")
        if self.schedule not in ("onecycle", "cosine"):
            raise ValueError(f"schedule must be 'onecycle' or 'cosine', got {self.schedule!r}")
        if not (0 < self.warmup < 1):
            raise ValueError(f"warmup must be a fraction in (0, 1), got {self.warmup!r}")
        if not (0 <= self.label_smoothing < 1):
            raise ValueError(f"label_smoothing must be in [0, 1), got {self.label_smoothing!r}")

    def optimizer(self, model: nn.Module):
        return torch.optim.SGD(model.parameters(), lr=self.lr, momentum=self.momentum,
                               nesterov=self.nesterov and self.momentum > 0, weight_decay=self.weight_decay)

    def scheduler(self, optimizer, steps_per_epoch: int):
        total = max(1, self.epochs * steps_per_epoch)
        if self.schedule == "cosine":
            return torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=total)
        warm = max(1, int(self.warmup * total))

        def linear_one_cycle(step):  # 0 -> lr over `warm` steps, then linearly down to 0
            if step < warm:
                return (step + 1) / warm
            return max(0.0, (total - step) / max(1, total - warm))

        return torch.optim.lr_scheduler.LambdaLR(optimizer, linear_one_cycle)


@dataclass
class Learner:
    """One model being trained: its optimiser, loss settings and where it checkpoints."""

    name: str
    model: nn.Module
    recipe: Recipe
    temperature: float = 20.0
    alpha: float = 0.0  # 0: plain cross-entropy on the (soft) targets; > 0: distillation
    checkpoint: Path | None = None
    history: list = field(default_factory=list)
    start_epoch: int = 0
    engine: str = ""  # set by fit: the engine that trained it (plain, static or graphs)

    def __post_init__(self):
        check_kd_params(self.temperature, self.alpha)


def seed_everything(seed: int):
    import random

    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


@contextlib.contextmanager
def torch_threads(n: int | None):
    """Run the block with ``n`` intra-op torch threads (None: leave the setting), restored afterwards.

    A profile's ``threads:`` is applied this way by every path that trains (``python -m kdlib grid``,
    the notebooks Snakemake runs), so one profile trains with one setting whatever the environment
    (e.g. ``OMP_NUM_THREADS``) says: CPU results depend on it through the order of float sums."""
    if n is None:
        yield
        return
    before = torch.get_num_threads()
    torch.set_num_threads(int(n))
    try:
        yield
    finally:
        torch.set_num_threads(before)


def autocast_for(device: torch.device, cache_enabled: bool = True):
    """bf16 autocast on CUDA (``cache_enabled=False`` while a CUDA graph is captured), nothing elsewhere."""
    if device.type == "cuda":
        return torch.autocast("cuda", dtype=torch.bfloat16, cache_enabled=cache_enabled)
    return contextlib.nullcontext()


class EpochTally:
    """One epoch's sums per learner (loss, its CE and KD parts, correct predictions) and its first non-finite
    step, kept on the device: reading them every step would make the host wait each time. Read once at the
    epoch's end. ``fit``'s plain loop and :class:`kdlib.fast.GroupStep` (inside its CUDA graph) both add to one."""

    def __init__(self, k: int, device):
        self.sums = torch.zeros(k, 4, device=device, dtype=torch.float64)
        self.bad_step = torch.full((k,), -1, device=device, dtype=torch.long)
        self.bad_value = torch.zeros(k, device=device)

    def reset(self):
        self.sums.zero_()
        self.bad_step.fill_(-1)
        self.bad_value.zero_()

    def add(self, i: int, parts: dict, logits, labels, step):
        """Learner ``i``'s step ``step`` (an int or a device tensor) with loss ``parts`` on ``logits``."""
        loss = parts["loss"].detach()
        first = (self.bad_step[i] < 0) & ~torch.isfinite(loss)
        self.bad_step[i] = torch.where(first, step, self.bad_step[i])
        self.bad_value[i] = torch.where(first, loss.float(), self.bad_value[i])
        n = logits.shape[0]
        self.sums[i] += torch.stack([parts[k].detach().double() * n for k in ("loss", "loss_ce", "loss_kd")]
                                    + [(logits.argmax(1) == labels).sum().double()])

    def read(self, i: int) -> dict:
        return dict(zip(("loss", "loss_ce", "loss_kd", "correct"), self.sums[i].tolist()))


def _disk_full(path: Path, err: BaseException) -> OSError:
    return OSError(errno.ENOSPC, f"cannot write {path}: the disk is full or the quota is reached "
                                 f"({' '.join(str(err).split())[:200]}). Nothing was half-written; free space on "
                                 f"{path.parent} or point the run store elsewhere (--runs DIR or $KDLIB_RUNS) and "
                                 f"run again: training resumes from the last checkpoint")


def atomic_torch_save(obj, path: Path):
    """torch.save to a temporary name, then rename. A full disk is an OSError(ENOSPC) naming ``path``
    and the fix (torch reports it as "enforce fail at inline_container.cc ... file write failed")."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=path.name + ".", suffix=".tmp", dir=path.parent)
    os.close(fd)
    try:
        try:
            torch.save(obj, tmp)
        except RuntimeError as err:
            if "inline_container" in str(err) or "file write failed" in str(err):
                raise _disk_full(path, err) from None
            raise
        except OSError as err:
            if err.errno in (errno.ENOSPC, errno.EDQUOT):
                raise _disk_full(path, err) from None
            raise
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def load_checkpoint_file(path: Path, device="cpu", keys=("model",)) -> dict:
    """``torch.load(path, weights_only=True)`` with errors that name the file, the cause and the fix.

    A checkpoint torch refuses under ``weights_only`` holds objects other than tensors: it was
    tampered with or written by another program. It is refused; torch's advice to load it with
    ``weights_only=False`` (which runs code from the file) is not passed on.
    """
    path = Path(path)
    fix = f"delete {path} (or its run folder) and train the run again"
    try:
        state = torch.load(path, map_location=device, weights_only=True)
    except FileNotFoundError:
        raise FileNotFoundError(f"checkpoint {path} is missing; train the run first") from None
    except PermissionError as err:
        raise PermissionError(f"cannot read checkpoint {path} ({err.strerror}); make it readable "
                              f"(chmod u+r) or {fix}") from None
    except pickle.UnpicklingError:
        raise ValueError(f"checkpoint {path} holds objects other than tensors and numbers: it was altered or "
                         f"written by another program, and is refused for safety. Fix: {fix}") from None
    except (RuntimeError, OSError, EOFError, ValueError, KeyError, AttributeError) as err:
        reason = " ".join(str(err).split())[:160]
        raise ValueError(f"checkpoint {path} is truncated or not a kdlib checkpoint ({type(err).__name__}: "
                         f"{reason}). Fix: {fix}") from None
    if not isinstance(state, dict) or any(k not in state for k in keys):
        raise ValueError(f"checkpoint {path} lacks {[k for k in keys if not isinstance(state, dict) or k not in state]}"
                         f"; it is not a kdlib checkpoint. Fix: {fix}")
    return state


def _rng_state():
    # tensors only, so that the checkpoint loads with torch.load(weights_only=True)
    state = {"torch": torch.get_rng_state(), "numpy": torch.from_numpy(np.random.get_state()[1].astype(np.int64))}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def _save_checkpoint(learner: Learner, opt, sched, loader: DeviceLoader, epoch: int):
    if learner.checkpoint is None:
        return
    atomic_torch_save({
        "model": learner.model.state_dict(), "optimizer": opt.state_dict(), "scheduler": sched.state_dict(),
        "epoch": epoch, "loader": loader.state_dict(), "rng": _rng_state(), "history": learner.history,
    }, learner.checkpoint)


def _load_checkpoint(learner: Learner, opt, sched, device):
    """Restore a learner from its checkpoint; returns the loader state saved with it (or None)."""
    if learner.checkpoint is None or not Path(learner.checkpoint).is_file():
        return None
    state = load_checkpoint_file(learner.checkpoint, device,
                                 keys=("model", "optimizer", "scheduler", "history", "epoch", "rng", "loader"))
    learner.model.load_state_dict(state["model"])
    opt.load_state_dict(state["optimizer"])
    sched.load_state_dict(state["scheduler"])
    learner.history = list(state["history"])
    learner.start_epoch = int(state["epoch"])
    torch.set_rng_state(state["rng"]["torch"].cpu())
    return state["loader"]


def _loss(learner: Learner, logits, y_soft, teacher_logits):
    if learner.alpha == 0:
        if learner.recipe.label_smoothing:
            c = y_soft.shape[1]
            y_soft = y_soft * (1 - learner.recipe.label_smoothing) + learner.recipe.label_smoothing / c
        logp = F.log_softmax(logits.float(), dim=1)
        loss = -(y_soft * logp).sum(1).mean()
        return {"loss": loss, "loss_ce": loss, "loss_kd": torch.zeros((), device=loss.device)}
    return kd_loss_parts(logits.float(), teacher_logits.float(), y_soft, learner.temperature, learner.alpha)


def fit(learners: list[Learner], loader: DeviceLoader, teacher: nn.Module | None = None,
        cached_teacher_logits: torch.Tensor | None = None, progress: bool = True, desc: str = "train",
        on_epoch=None, checkpoint_every: float = 60.0, stop=None, engine: str = "auto"):
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
    group's step on static device buffers (:class:`kdlib.fast.GroupStep`) run eagerly; ``"graphs"``: that
    step captured as CUDA graphs (one replay per batch for the whole group; a failed capture falls back to
    ``"static"`` with a warning); ``"auto"`` (default): ``$KDLIB_ENGINE`` if set, else graphs on CUDA and
    plain elsewhere. The engine used is in each learner's ``engine``. On CUDA, cuDNN's autotuner
    (``cudnn.benchmark``) is on while training.
    """
    from tqdm.auto import tqdm

    if not learners:
        return learners
    if isinstance(checkpoint_every, bool) or not isinstance(checkpoint_every, (int, float)) or \
            not math.isfinite(checkpoint_every) or checkpoint_every < 0:
        raise ValueError(f"checkpoint_every must be a number of seconds >= 0, got {checkpoint_every!r}")
    device = loader.device
    needs_teacher = any(lr.alpha > 0 for lr in learners)
    if needs_teacher and teacher is None and cached_teacher_logits is None:
        raise ValueError("a learner has alpha > 0 but neither a teacher nor cached teacher logits were given")
    if cached_teacher_logits is not None and loader.augment.spec != "none":
        raise ValueError(f"cached teacher logits are exact only for a clean stream; this loader applies "
                         f"{loader.augment.spec!r}: pass the teacher instead")
    if teacher is not None:
        teacher.eval()
        for p in teacher.parameters():
            p.requires_grad_(False)
    steps = len(loader)
    for lr in learners:  # on the device before the optimisers exist: resumed momentum buffers follow the parameters
        lr.model.to(device).train()
        if device.type == "cuda":
            lr.model.to(memory_format=torch.channels_last)
    opts = [lr.recipe.optimizer(lr.model) for lr in learners]
    scheds = [lr.recipe.scheduler(o, steps) for lr, o in zip(learners, opts)]
    loader_states = [_load_checkpoint(lr, o, s, device) for lr, o, s in zip(learners, opts, scheds)]
    starts = {lr.start_epoch for lr in learners}
    if len(starts) != 1:
        raise ValueError(f"learners resume from different epochs {sorted(starts)}; train them in separate groups")
    start = starts.pop()
    if loader_states[0] is not None:
        loader.load_state_dict(loader_states[0])
    epochs = learners[0].recipe.epochs
    if any(lr.recipe.epochs != epochs for lr in learners):
        raise ValueError("learners in one lockstep group must share the number of epochs")
    if stop is not None and 0 < start < epochs and stop(start):  # it had stopped there before an interruption
        for lr in learners:
            lr.model.eval()
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
        seen = 0
        batches = tqdm(loader, desc=f"epoch {epoch + 1}", leave=False, disable=not progress, total=steps)
        if stepper is not None:
            stepper.begin_epoch()
        else:
            tally.reset()
        for step, batch in enumerate(batches):
            x = batch.x
            if stepper is not None:
                stepper(batch)
                seen += x.shape[0]
                continue
            teacher_logits = None
            if needs_teacher:
                if cached_teacher_logits is not None:
                    teacher_logits = cached_teacher_logits[batch.index]
                else:
                    with torch.inference_mode(), autocast_for(device):
                        teacher_logits = teacher(x).float()
                    teacher_logits = teacher_logits.clone()
            for i, (lr, opt, sched) in enumerate(zip(learners, opts, scheds)):
                with autocast_for(device):
                    logits = lr.model(x)
                parts = _loss(lr, logits, batch.y_soft, teacher_logits)
                tally.add(i, parts, logits, batch.labels, step)
                opt.zero_grad(set_to_none=True)
                parts["loss"].backward()
                opt.step()
                sched.step()
            seen += x.shape[0]
        for i, lr in enumerate(learners):
            step_bad = int(tally.bad_step[i])
            if step_bad >= 0:
                raise NumericalError(
                    f"{lr.name}: loss is {float(tally.bad_value[i])} at epoch {epoch + 1}, step {step_bad + 1}. Likely "
                    f"cause: a learning rate too high for this model (lr={lr.recipe.lr}) or corrupt inputs. The "
                    + (f"last good checkpoint (epoch {last_saved}) is kept" if last_saved and lr.checkpoint else
                       "run had no checkpoint yet") + "; lower lr and run again."
                )
        if stepper is not None:  # the torch optimisers and schedulers where the plain path would have them
            stepper.sync_to(scheds, (epoch + 1) * steps)
        seconds = time.perf_counter() - t0
        for i, (lr, opt) in enumerate(zip(learners, opts)):
            acc = tally.read(i)
            lr.history.append({
                "epoch": epoch + 1, "loss": acc["loss"] / seen, "loss_ce": acc["loss_ce"] / seen,
                "loss_kd": acc["loss_kd"] / seen, "train_acc": acc["correct"] / seen,
                "lr": opt.param_groups[0]["lr"], "seconds": seconds, "images_per_s": seen / seconds,
            })
        stop_now = bool(stop(epoch + 1)) if stop is not None and epoch + 1 < epochs else False
        for lr in learners:
            lr.model.train()
        if epoch + 1 == epochs or stop_now or time.perf_counter() - last_save_time >= checkpoint_every:
            for lr, opt, sched in zip(learners, opts, scheds):
                _save_checkpoint(lr, opt, sched, loader, epoch + 1)
            last_saved, last_save_time = epoch + 1, time.perf_counter()
        if progress:
            bar.set_postfix(loss=f"{learners[0].history[-1]['loss']:.3f}",
                            acc=f"{learners[0].history[-1]['train_acc']:.3f}", img_s=f"{seen / seconds:,.0f}")
        if on_epoch is not None:
            on_epoch(epoch + 1)
        if stop_now:
            break
    for lr in learners:
        lr.model.eval()
        lr.engine = stepper.engine if stepper is not None else "plain"
    return learners


ENGINES = ("auto", "plain", "static", "graphs")


def check_engine(engine) -> str:
    if engine not in ENGINES:
        raise ValueError(f"engine must be one of {list(ENGINES)} (auto: CUDA graphs on a GPU, the plain "
                         f"torch.optim step elsewhere), got {engine!r}")
    return engine


def resolve_engine(engine: str, device) -> str:
    """The engine :func:`fit` uses: ``auto`` is ``$KDLIB_ENGINE`` when set, else ``graphs`` on CUDA and
    ``plain`` elsewhere; ``graphs`` off CUDA is an error naming the fix."""
    check_engine(engine)
    if engine == "auto":
        env = os.environ.get("KDLIB_ENGINE", "").strip()
        if env:
            try:
                engine = check_engine(env)
            except ValueError as err:
                raise ValueError(f"$KDLIB_ENGINE: {err}") from None
    device = torch.device(device)
    if engine == "auto":
        engine = "graphs" if device.type == "cuda" else "plain"
    if engine == "graphs" and device.type != "cuda":
        raise ValueError(f"engine 'graphs' (CUDA graphs) needs a CUDA device, and this run is on {device}; use "
                         f"engine 'plain' or 'static' (or unset $KDLIB_ENGINE)")
    return engine


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
