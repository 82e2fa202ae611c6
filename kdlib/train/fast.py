"""Faster training steps, each one a lever measured against the plain step of :func:`kdlib.train.loop.fit`.

* :class:`GroupStep` - one training step of every learner of a lockstep group on static device
  buffers: ``fit``'s ``static`` engine runs it eagerly, its ``graphs`` engine captures it as CUDA
  graphs (one per batch shape) and replays one graph per batch for the whole group.
* :class:`StackedModels` - K models of one architecture trained in one step: their parameters are
  stacked and ``torch.func.vmap`` runs the K forward/backward passes as one batched computation,
  followed by one SGD update of the stacked tensors. Each model may see its own batch (seeds) or
  the same batch (students of one stream). Models with batch norm or dropout are refused: their
  running statistics or random masks would not match K separate runs.

Both reproduce SGD with momentum, Nesterov and weight decay as ``torch.optim.SGD`` does
(:func:`sgd_foreach_`, every quantity a device tensor), so their results equal the plain path's up to
float rounding (tested on the CPU; the CUDA capture itself by ``python -m kdlib bench --only levers``
and the GPU-only tests on a GPU).
"""
from __future__ import annotations

import copy
import warnings
from typing import TYPE_CHECKING

import torch
from torch import nn

from .steps import EpochTally, autocast_for

if TYPE_CHECKING:  # names for annotations only
    from collections.abc import Callable

    from ..data.loader import Batch
    from .recipe import Learner, Recipe

__all__ = ["StackedModels", "GroupStep", "sgd_foreach_", "lr_table"]


def sgd_foreach_(params: list[torch.Tensor], grads: list[torch.Tensor], bufs: list[torch.Tensor], first: torch.Tensor,
                 lr: torch.Tensor, momentum: float, weight_decay: float, nesterov: bool) -> None:
    """``torch.optim.SGD``'s update with every quantity on the device (for graph capture): ``bufs`` are
    zero-initialised momentum buffers and ``first`` a 0-dim tensor, 1 before the first step (where
    torch sets the buffer to the gradient) and set to 0 by the update; ``lr`` a 0-dim tensor."""
    if weight_decay:
        grads = torch._foreach_add(grads, params, alpha=weight_decay)
    if momentum:
        torch._foreach_mul_(bufs, momentum * (1.0 - first))  # first step: 0 * buf + g = g
        torch._foreach_add_(bufs, grads)
        grads = torch._foreach_add(grads, bufs, alpha=momentum) if nesterov else bufs
    torch._foreach_sub_(params, torch._foreach_mul(grads, lr))
    first.zero_()


def _refuse_stateful(model: nn.Module):
    for m in model.modules():
        if isinstance(m, (nn.modules.batchnorm._BatchNorm, nn.Dropout)) and not (
                isinstance(m, nn.Dropout) and m.p == 0):
            raise ValueError(f"{type(model).__name__} has {type(m).__name__}: stacked training would not match "
                             f"separate runs (running statistics / random masks); train it with kdlib.train.loop.fit")


class StackedModels:
    """K models of one architecture, trained together by ``vmap``.

    ``step(x, y_soft)``: ``x`` is (B, C, H, W) shared by all models or (K, B, C, H, W), one batch per
    model; ``y_soft`` likewise (B, classes) or (K, B, classes). Optional ``teacher_logits`` (same
    shapes) switch the loss to Hinton's ``alpha * T^2 * KL + (1 - alpha) * CE`` of
    :func:`kdlib.blocks.distill.kd_loss_parts`. Returns the K losses (a tensor; no host sync).
    ``unstack()`` writes the trained parameters back into the K modules.
    """

    def __init__(self, models: list[nn.Module], lr: float, momentum: float = 0.9, weight_decay: float = 5e-4,
                 nesterov: bool = True, temperature: float = 20.0, alpha: float = 0.0):
        from torch.func import stack_module_state

        if not models:
            raise ValueError("StackedModels needs at least one model")
        if len({type(m) for m in models}) != 1:
            raise ValueError("StackedModels trains models of one architecture only")
        for m in models:
            _refuse_stateful(m)
        self.models = models
        self.k = len(models)
        params, _ = stack_module_state(models)
        self.names = list(params)
        self.params = [params[n].detach().requires_grad_(False) for n in self.names]
        self.bufs = [torch.zeros_like(p) for p in self.params]
        self.first = torch.ones((), device=self.params[0].device)  # 1 until the first step: buffer = gradient
        self.lr_now = torch.tensor(float(lr), device=self.params[0].device)
        self.lr, self.momentum, self.weight_decay, self.nesterov = lr, momentum, weight_decay, nesterov
        self.temperature, self.alpha = float(temperature), float(alpha)
        self.base = copy.deepcopy(models[0]).to("meta")

    def _loss_one(self, params, x, y_soft, t_logits):
        from torch.func import functional_call

        from ..blocks.distill import kd_loss_parts, soft_cross_entropy

        logits = functional_call(self.base, dict(zip(self.names, params)), (x,))
        if self.alpha == 0 or t_logits is None:
            return soft_cross_entropy(logits.float(), y_soft)
        return kd_loss_parts(logits.float(), t_logits.float(), y_soft, self.temperature, self.alpha)["loss"]

    def step(self, x: torch.Tensor, y_soft: torch.Tensor, teacher_logits: torch.Tensor | None = None,
             lr: float | None = None) -> torch.Tensor:
        from torch.func import grad_and_value, vmap

        per_model = x.dim() == 5
        in_dims = (0, 0 if per_model else None, 0 if y_soft.dim() == 3 else None,
                   None if teacher_logits is None else (0 if teacher_logits.dim() == 3 else None))
        grads, losses = vmap(grad_and_value(self._loss_one), in_dims=in_dims)(self.params, x, y_soft,
                                                                                teacher_logits)
        with torch.no_grad():
            self.lr_now.fill_(self.lr if lr is None else lr)
            sgd_foreach_(self.params, list(grads), self.bufs, self.first, self.lr_now, self.momentum,
                         self.weight_decay, self.nesterov)
        return losses.detach()

    @torch.no_grad()
    def unstack(self) -> list[nn.Module]:
        for i, m in enumerate(self.models):
            own = dict(m.named_parameters())
            for n, p in zip(self.names, self.params):
                own[n].copy_(p[i])
        return self.models


def lr_table(recipe: Recipe, steps_per_epoch: int) -> list[float]:
    """The learning rate of every step of ``recipe`` (``epochs * steps + 1`` values: entry ``k`` is the rate
    after ``k`` scheduler steps), read off torch's own optimiser and scheduler stepped on a dummy parameter,
    so the graphed and static engines follow :func:`kdlib.train.loop.fit`'s plain schedule value for value."""
    import dataclasses

    key = (dataclasses.astuple(recipe), int(steps_per_epoch))
    if key not in _LR_TABLES:
        dummy = nn.Parameter(torch.zeros(1))
        opt = torch.optim.SGD([dummy], lr=recipe.lr, momentum=recipe.momentum,
                              nesterov=recipe.nesterov and recipe.momentum > 0, weight_decay=recipe.weight_decay)
        sched = recipe.scheduler(opt, steps_per_epoch)
        out = [opt.param_groups[0]["lr"]]
        with warnings.catch_warnings():  # the dummy optimiser never steps: torch warns about the call order
            warnings.simplefilter("ignore", UserWarning)
            for _ in range(recipe.epochs * steps_per_epoch):
                sched.step()
                out.append(opt.param_groups[0]["lr"])
        _LR_TABLES[key] = out
    return list(_LR_TABLES[key])


_LR_TABLES: dict = {}


def _cuda_capture(fn, pool, warmup: int):
    """``fn`` run ``warmup`` times on a side stream (cuDNN autotuning, lazy allocations), then captured as a
    CUDA graph in ``pool`` (None: a new private pool). Returns the graph and the pool for the next capture.
    The warm-up changes whatever ``fn`` changes; the caller restores it."""
    side = torch.cuda.Stream()
    side.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(side):
        for _ in range(warmup):
            fn()
    torch.cuda.current_stream().wait_stream(side)
    graph = torch.cuda.CUDAGraph()
    with torch.cuda.graph(graph, pool=pool):
        fn()
    return graph, (graph.pool() if pool is None else pool)


class GroupStep:
    """One training step of every learner of a lockstep group, on static buffers: the step
    :func:`kdlib.train.loop.fit` takes with ``engine="static"`` (run eagerly) or ``engine="graphs"`` (captured as
    CUDA graphs, one per batch shape, so the short last batch of an epoch needs neither dropping nor
    padding: the recipe is unchanged).

    Everything a step reads or writes lives in device tensors the graph keeps pointers to: the batch
    (copied in), each learner's parameters, momentum buffers and a "first step" flag, the learning-rate
    table of the whole run indexed by a step counter on the device, the epoch's loss/accuracy sums and
    the first non-finite step. The host only copies the batch in and replays, so an epoch never waits
    for the device. The optimiser is ``torch.optim.SGD``'s update (:func:`sgd_foreach_`); ``sync_to``
    writes the momentum buffers and the learning rate back into the learners' torch optimisers and
    schedulers, so checkpoints are the plain path's and resume either way.
    """

    def __init__(self, learners: list[Learner], opts: list[torch.optim.Optimizer], device: str | torch.device,
                 steps_per_epoch: int, start_step: int, loss_fn: Callable[..., dict], teacher: nn.Module | None = None,
                 cached_teacher_logits: torch.Tensor | None = None, graphs: bool = False, warmup: int = 3) -> None:
        self.learners, self.opts, self.device = learners, opts, torch.device(device)
        self.loss_fn, self.teacher, self.cached = loss_fn, teacher, cached_teacher_logits
        self.needs_teacher = any(lr.alpha > 0 for lr in learners)
        self.graphs = bool(graphs)
        if self.graphs and self.device.type != "cuda":
            raise ValueError("engine 'graphs' needs a CUDA device; on the CPU use engine 'plain' or 'static'")
        self.warmup = warmup
        self.tables = [lr_table(lr.recipe, steps_per_epoch) for lr in learners]
        self.lr_tab = [torch.tensor(t, device=self.device, dtype=torch.float32) for t in self.tables]
        self.step_count = torch.full((), int(start_step), device=self.device, dtype=torch.long)
        self.epoch_step = torch.zeros((), device=self.device, dtype=torch.long)
        self.params, self.bufs, self.first = [], [], []
        for lr, opt in zip(learners, opts):
            ps = [p for p in lr.model.parameters() if p.requires_grad]
            state = [opt.state.get(p, {}).get("momentum_buffer") for p in ps]
            resumed = all(b is not None for b in state) and bool(state)
            self.params.append(ps)
            self.bufs.append([b.detach().clone() if resumed else torch.zeros_like(p) for b, p in zip(state, ps)])
            self.first.append(torch.full((), 0.0 if resumed else 1.0, device=self.device))
        self.tally = EpochTally(len(learners), self.device)
        self.statics: dict = {}  # batch shape -> static inputs
        self.captured: dict = {}  # batch shape -> CUDA graph
        self.pool = None
        self.capture_error: str | None = None

    # -- the step itself -------------------------------------------------------------------------
    def _body(self, s: dict):
        x = s["x"]
        teacher_logits = None
        if self.needs_teacher:
            if self.cached is not None:
                teacher_logits = self.cached[s["index"]]
            else:
                with torch.no_grad(), autocast_for(self.device, cache_enabled=not self.graphs):
                    teacher_logits = self.teacher(x).float()
        lr_index = self.step_count.view(1)
        for i, lr in enumerate(self.learners):
            for p in self.params[i]:
                p.grad = None
            with autocast_for(self.device, cache_enabled=not self.graphs):
                logits = lr.model(x)
            parts = self.loss_fn(lr, logits, s["y_soft"], teacher_logits)
            self.tally.add(i, parts, logits, s["labels"], self.epoch_step)
            parts["loss"].backward()
            rec = lr.recipe
            with torch.no_grad():
                sgd_foreach_(self.params[i], [p.grad for p in self.params[i]], self.bufs[i], self.first[i],
                             self.lr_tab[i].index_select(0, lr_index).squeeze(0), rec.momentum, rec.weight_decay,
                             rec.nesterov and rec.momentum > 0)
        self.step_count += 1
        self.epoch_step += 1

    def _static_for(self, batch) -> dict:
        key = tuple(batch.x.shape)
        if key not in self.statics:
            self.statics[key] = {"x": batch.x.clone(), "y_soft": batch.y_soft.clone(), "labels": batch.labels.clone(),
                                 "index": batch.index.clone()}
        return self.statics[key]

    def _state_tensors(self) -> list[torch.Tensor]:
        out = [self.step_count, self.epoch_step, self.tally.sums, self.tally.bad_step, self.tally.bad_value,
               *self.first]
        for lr, bufs in zip(self.learners, self.bufs):
            out += list(lr.model.state_dict(keep_vars=True).values()) + list(bufs)
        return [t.data if isinstance(t, nn.Parameter) else t for t in out]

    def _capture(self, key, s):
        """Warm up and capture the step for one batch shape; the state is restored afterwards, so the
        first replay is the next real step. A failed capture leaves the eager step in charge."""
        saved = [t.detach().clone() for t in self._state_tensors()]
        try:
            self.captured[key], self.pool = _cuda_capture(lambda: self._body(s), self.pool, self.warmup)
        except Exception as err:  # noqa: BLE001 - fall back to the same step, eagerly
            self.graphs = False
            self.capture_error = f"{type(err).__name__}: {' '.join(str(err).split())[:300]}"
            warnings.warn(f"CUDA graph capture failed ({self.capture_error}); training goes on with the same "
                          f"step run eagerly (engine 'static')", stacklevel=3)
        finally:
            with torch.no_grad():
                for t, v in zip(self._state_tensors(), saved):
                    t.copy_(v)
            for ps in self.params:
                for p in ps:
                    p.grad = None

    def __call__(self, batch: Batch) -> None:
        s = self._static_for(batch)
        s["x"].copy_(batch.x)
        s["y_soft"].copy_(batch.y_soft)
        s["labels"].copy_(batch.labels)
        s["index"].copy_(batch.index)
        if self.graphs:
            key = tuple(batch.x.shape)
            if key not in self.captured:
                self._capture(key, s)
            if self.graphs:
                self.captured[key].replay()
                return
        self._body(s)

    @property
    def engine(self) -> str:
        return "graphs" if self.graphs else "static"

    # -- epoch bookkeeping -----------------------------------------------------------------------
    def begin_epoch(self) -> None:
        self.tally.reset()
        self.epoch_step.zero_()

    @torch.no_grad()
    def sync_to(self, scheds: list[torch.optim.lr_scheduler.LRScheduler], step: int) -> None:
        """Write the momentum buffers and the schedule position ``step`` into the torch optimisers and
        schedulers (what the plain path would hold after ``step`` steps), for checkpoints and history."""
        for i, (opt, sched) in enumerate(zip(self.opts, scheds)):
            started = float(self.first[i]) == 0.0
            for p, b in zip(self.params[i], self.bufs[i]):
                if opt.param_groups[0]["momentum"]:
                    opt.state[p]["momentum_buffer"] = b.detach().clone() if started else None
            lr = self.tables[i][step]
            for g in opt.param_groups:
                g["lr"] = lr
            sched.last_epoch = step
            sched._step_count = step + 1
            sched._last_lr = [lr for _ in opt.param_groups]
