"""The speed levers of kdlib.train.fast give the plain path's results (CPU where the mechanism allows)."""
import copy

import pytest
import torch

from kdlib.blocks.distill import kd_loss_parts
from kdlib.train.fast import StackedModels, sgd_foreach_
from kdlib.blocks.models import build_model


def lenets(k, seed=0):
    torch.manual_seed(seed)
    return [build_model("lenet", in_channels=1, image_size=16) for _ in range(k)]


def plain_run(model, batches, lr, wd, nesterov, teacher=None, alpha=0.0, T=20.0):
    opt = torch.optim.SGD(model.parameters(), lr=lr, momentum=0.9, nesterov=nesterov, weight_decay=wd)
    losses = []
    for i, (x, y) in enumerate(batches):
        logits = model(x)
        if alpha:
            loss = kd_loss_parts(logits, teacher[i], y, T, alpha)["loss"]
        else:
            loss = -(y * torch.log_softmax(logits, 1)).sum(1).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(float(loss))
    return losses


def batches(n=4, b=8, seed=1, k=None):
    g = torch.Generator().manual_seed(seed)
    shape = (b, 1, 16, 16) if k is None else (k, b, 1, 16, 16)
    out = []
    for _ in range(n):
        x = torch.randn(shape, generator=g)
        y = torch.softmax(3 * torch.randn(shape[:-3] + (10,), generator=g), -1)
        out.append((x, y))
    return out


@pytest.mark.parametrize("nesterov", [True, False])
def test_stacked_models_equal_separate_runs_on_a_shared_batch(nesterov):
    models = lenets(3)
    refs = [copy.deepcopy(m) for m in models]
    data = batches()
    stacked = StackedModels(models, lr=0.05, weight_decay=5e-4, nesterov=nesterov)
    got = torch.stack([stacked.step(x, y) for x, y in data], 1)  # (K, steps)
    stacked.unstack()
    for i, ref in enumerate(refs):
        want = plain_run(ref, data, 0.05, 5e-4, nesterov)
        torch.testing.assert_close(got[i], torch.tensor(want), rtol=1e-5, atol=1e-6)
        for (name, a), b in zip(models[i].named_parameters(), ref.parameters()):
            torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-6, msg=name)


def test_stacked_models_with_their_own_batches_and_teachers():
    """Seeds of one config: each model its own batch stream and its own teacher logits (distillation)."""
    k = 2
    models = lenets(k, seed=3)
    refs = [copy.deepcopy(m) for m in models]
    data = batches(k=k, seed=5)
    g = torch.Generator().manual_seed(9)
    teachers = [torch.randn(k, 8, 10, generator=g) * 4 for _ in data]
    stacked = StackedModels(models, lr=0.02, temperature=20.0, alpha=0.5)
    for (x, y), t in zip(data, teachers):
        stacked.step(x, y, t)
    stacked.unstack()
    for i, ref in enumerate(refs):
        plain_run(ref, [(x[i], y[i]) for x, y in data], 0.02, 5e-4, True, [t[i] for t in teachers], alpha=0.5)
        for a, b in zip(models[i].parameters(), ref.parameters()):
            torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-6)


def test_stacked_models_refuse_batchnorm_and_dropout():
    with pytest.raises(ValueError, match="BatchNorm2d"):
        StackedModels([build_model("resnet18", width=4)] * 2, lr=0.1)
    with pytest.raises(ValueError, match="Dropout"):
        StackedModels([build_model("alexnet", width=4)] * 2, lr=0.1)
    with pytest.raises(ValueError, match="one architecture"):
        StackedModels([build_model("lenet"), build_model("alexnet", width=4, dropout=0.0)], lr=0.1)


@pytest.mark.parametrize("nesterov,wd", [(True, 5e-4), (False, 0.0)])
def test_device_side_sgd_equals_torch_sgd(nesterov, wd):
    """The graph-capturable update (every quantity a device tensor) against torch.optim.SGD."""
    torch.manual_seed(0)
    ref = [torch.randn(5, 3), torch.randn(7)]
    mine = [p.clone() for p in ref]
    ref_p = [torch.nn.Parameter(p) for p in ref]
    opt = torch.optim.SGD(ref_p, lr=0.1, momentum=0.9, nesterov=nesterov, weight_decay=wd)
    bufs, first, lr = [torch.zeros_like(p) for p in mine], torch.ones(()), torch.tensor(0.1)
    for step in range(4):
        grads = [torch.randn_like(p) for p in ref]
        for p, g in zip(ref_p, grads):
            p.grad = g.clone()
        opt.step()
        sgd_foreach_(mine, grads, bufs, first, lr, 0.9, wd, nesterov)
        assert float(first) == 0.0
        for a, b in zip(ref_p, mine):
            torch.testing.assert_close(b, a.detach(), rtol=1e-6, atol=1e-7)
