"""Faster training steps, each one a lever measured against the plain step of :func:`kdlib.train.fit`.

* :class:`GraphedStep` - one whole training step (forward, loss, backward, SGD update) captured as a
  CUDA graph and replayed: one launch instead of hundreds, for a fixed batch shape (a static batch:
  the last, short batch of an epoch must be dropped or padded by the caller).
* :class:`StackedModels` - K models of one architecture trained in one step: their parameters are
  stacked and ``torch.func.vmap`` runs the K forward/backward passes as one batched computation,
  followed by one SGD update of the stacked tensors. Each model may see its own batch (seeds) or
  the same batch (students of one stream). Models with batch norm or dropout are refused: their
  running statistics or random masks would not match K separate runs.

Both reproduce SGD with momentum, Nesterov and weight decay exactly as ``torch.optim.SGD`` does,
so their results equal the plain path's (tested: identical per-model results on the CPU for
:class:`StackedModels`; the same loss curve within float tolerance for :class:`GraphedStep`, run by
``python -m kdlib bench --only levers`` on a GPU).
"""
from __future__ import annotations

import copy

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["GraphedStep", "StackedModels", "sgd_update_", "sgd_foreach_"]


def sgd_update_(params: list[torch.Tensor], grads: list[torch.Tensor], bufs: list[torch.Tensor | None], lr: float,
                momentum: float, weight_decay: float, nesterov: bool):
    """In place: the update of ``torch.optim.SGD`` (dampening 0). ``bufs`` holds the momentum buffers
    (``None`` before the first step, as in torch, where the first buffer is the gradient itself)."""
    for i, (p, g) in enumerate(zip(params, grads)):
        if weight_decay:
            g = g.add(p, alpha=weight_decay)
        if momentum:
            if bufs[i] is None:
                bufs[i] = g.detach().clone()
            else:
                bufs[i].mul_(momentum).add_(g)
            g = g.add(bufs[i], alpha=momentum) if nesterov else bufs[i]
        p.sub_(g, alpha=lr)


def sgd_foreach_(params, grads, bufs, first: torch.Tensor, lr: torch.Tensor, momentum: float, weight_decay: float,
                 nesterov: bool):
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
                             f"separate runs (running statistics / random masks); train it with kdlib.train.fit")


class StackedModels:
    """K models of one architecture, trained together by ``vmap``.

    ``step(x, y_soft)``: ``x`` is (B, C, H, W) shared by all models or (K, B, C, H, W), one batch per
    model; ``y_soft`` likewise (B, classes) or (K, B, classes). Optional ``teacher_logits`` (same
    shapes) switch the loss to Hinton's ``alpha * T^2 * KL + (1 - alpha) * CE`` of
    :func:`kdlib.distill.kd_loss_parts`. Returns the K losses (a tensor; no host sync).
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
        self.bufs: list[torch.Tensor | None] = [None] * len(self.params)
        self.lr, self.momentum, self.weight_decay, self.nesterov = lr, momentum, weight_decay, nesterov
        self.temperature, self.alpha = float(temperature), float(alpha)
        self.base = copy.deepcopy(models[0]).to("meta")

    def _loss_one(self, params, x, y_soft, t_logits):
        from torch.func import functional_call

        from .distill import kd_loss_parts

        logits = functional_call(self.base, dict(zip(self.names, params)), (x,))
        if self.alpha == 0 or t_logits is None:
            return -(y_soft * F.log_softmax(logits.float(), dim=1)).sum(1).mean()
        return kd_loss_parts(logits.float(), t_logits.float(), y_soft, self.temperature, self.alpha)["loss"]

    def step(self, x, y_soft, teacher_logits=None, lr: float | None = None) -> torch.Tensor:
        from torch.func import grad_and_value, vmap

        per_model = x.dim() == 5
        in_dims = (0, 0 if per_model else None, 0 if y_soft.dim() == 3 else None,
                   None if teacher_logits is None else (0 if teacher_logits.dim() == 3 else None))
        grads, losses = vmap(grad_and_value(self._loss_one), in_dims=in_dims)(self.params, x, y_soft,
                                                                                teacher_logits)
        with torch.no_grad():
            sgd_update_(self.params, list(grads), self.bufs, self.lr if lr is None else lr, self.momentum,
                        self.weight_decay, self.nesterov)
        return losses.detach()

    @torch.no_grad()
    def unstack(self) -> list[nn.Module]:
        for i, m in enumerate(self.models):
            own = dict(m.named_parameters())
            for n, p in zip(self.names, self.params):
                own[n].copy_(p[i])
        return self.models


class GraphedStep:
    """A whole SGD training step of ``model`` on a fixed batch shape, captured once as a CUDA graph.

    ``step(x, y_soft)`` copies the batch into the graph's static inputs, replays the graph and returns
    the (device) loss. The optimiser is ``torch.optim.SGD`` at a fixed learning rate per capture
    (``set_lr`` recaptures nothing: the rate lives in a device tensor the graph reads). Capture needs
    warm-up steps; they run on copies of the parameters and optimiser state, which are restored, so
    the first replay is the model's first real step.
    """

    def __init__(self, model: nn.Module, x_example: torch.Tensor, y_example: torch.Tensor, lr: float,
                 momentum: float = 0.9, weight_decay: float = 5e-4, nesterov: bool = True, amp: bool = True,
                 warmup: int = 3):
        if x_example.device.type != "cuda":
            raise ValueError("CUDA graphs need a CUDA device; use kdlib.train.fit on the CPU")
        self.model = model
        self.amp = amp
        self.lr = torch.tensor(float(lr), device=x_example.device)
        self.params = [p for p in model.parameters() if p.requires_grad]
        self.bufs = [torch.zeros_like(p) for p in self.params]
        self.momentum, self.weight_decay, self.nesterov = momentum, weight_decay, nesterov
        self.static_x = x_example.clone()
        self.static_y = y_example.clone()
        self.first = torch.ones((), device=x_example.device)  # 1 before the first step: buffer = gradient
        saved = copy.deepcopy(model.state_dict())
        side = torch.cuda.Stream()
        side.wait_stream(torch.cuda.current_stream())
        with torch.cuda.stream(side):
            for _ in range(warmup):
                self._body()
        torch.cuda.current_stream().wait_stream(side)
        self.graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(self.graph):
            self.static_loss = self._body()
        with torch.no_grad():  # undo the warm-up: the first replay is the first real step
            model.load_state_dict(saved)
            for b in self.bufs:
                b.zero_()
            self.first.fill_(1.0)

    def _body(self):
        for p in self.params:
            p.grad = None
        with torch.autocast("cuda", dtype=torch.bfloat16, enabled=self.amp, cache_enabled=False):
            logits = self.model(self.static_x)
        loss = -(self.static_y * F.log_softmax(logits.float(), dim=1)).sum(1).mean()
        loss.backward()
        with torch.no_grad():
            sgd_foreach_(self.params, [p.grad for p in self.params], self.bufs, self.first, self.lr, self.momentum,
                         self.weight_decay, self.nesterov)
        return loss.detach()

    def set_lr(self, lr: float):
        self.lr.fill_(float(lr))

    def step(self, x, y_soft) -> torch.Tensor:
        if x.shape != self.static_x.shape:
            raise ValueError(f"a graphed step takes batches of shape {tuple(self.static_x.shape)}, got "
                             f"{tuple(x.shape)}: drop or pad the last batch")
        self.static_x.copy_(x)
        self.static_y.copy_(y_soft)
        self.graph.replay()
        return self.static_loss
