"""KD loss against a numpy re-derivation; the teacher never gets a gradient nor leaves eval()."""
import numpy as np
import pytest
import torch
from torch import nn

from kdlib.blocks.distill import kd_loss, kd_loss_parts
from kdlib.blocks.models import build_model


def np_log_softmax(z):
    z = z - z.max(axis=1, keepdims=True)
    return z - np.log(np.exp(z).sum(axis=1, keepdims=True))


def np_kd(s, t, y, T, a):
    """(1-a) CE + a T^2 KL(softmax(t/T) || softmax(s/T)), KL summed over classes, mean over batch."""
    n = s.shape[0]
    logp = np_log_softmax(s)
    soft = y if y.ndim == 2 else np.eye(s.shape[1])[y]
    ce = -(soft * logp).sum(axis=1).mean()
    pt = np.exp(np_log_softmax(t / T))
    kl = (pt * (np.log(pt) - np_log_softmax(s / T))).sum() / n
    return (1 - a) * ce + a * T * T * kl


@pytest.mark.parametrize("T,a", [(20.0, 0.5), (4.0, 0.9), (1.0, 0.0), (2.5, 1.0)])
def test_kd_loss_matches_numpy_rederivation(T, a):
    rng = np.random.default_rng(0)
    s, t = rng.normal(size=(6, 10)) * 3, rng.normal(size=(6, 10)) * 3
    y = rng.integers(0, 10, size=6)
    got = kd_loss(torch.tensor(s), torch.tensor(t), torch.tensor(y), temperature=T, alpha=a)
    assert float(got) == pytest.approx(np_kd(s, t, y, T, a), rel=1e-5)


def test_kd_loss_with_soft_targets():
    rng = np.random.default_rng(1)
    s, t = rng.normal(size=(5, 4)), rng.normal(size=(5, 4))
    y = rng.dirichlet(np.ones(4), size=5)
    got = kd_loss(torch.tensor(s), torch.tensor(t), torch.tensor(y), temperature=3.0, alpha=0.3)
    assert float(got) == pytest.approx(np_kd(s, t, y, 3.0, 0.3), rel=1e-5)


def test_hand_computed_two_class_case():
    # student logits 0,0 -> uniform; teacher logits at T=1: ln 3, 0 -> (3/4, 1/4); label 0.
    # CE = ln 2; KL = 3/4 ln(3/2) + 1/4 ln(1/2); alpha 0.5, T=1.
    s = torch.zeros(1, 2)
    t = torch.tensor([[np.log(3.0), 0.0]])
    expected = 0.5 * np.log(2) + 0.5 * (0.75 * np.log(1.5) + 0.25 * np.log(0.5))
    assert float(kd_loss(s, t, torch.tensor([0]), temperature=1.0, alpha=0.5)) == pytest.approx(expected, rel=1e-6)


def test_soft_term_is_batchmean_not_mean_over_classes():
    # The paper's code used reduction='mean' (divides by N*C): 10x smaller on 10 classes.
    rng = np.random.default_rng(2)
    s, t = torch.tensor(rng.normal(size=(8, 10))), torch.tensor(rng.normal(size=(8, 10)))
    parts = kd_loss_parts(s, t, torch.zeros(8, dtype=torch.long), temperature=20.0, alpha=1.0)
    mean_over_all = nn.KLDivLoss(reduction="mean")(torch.log_softmax(s / 20, 1), torch.softmax(t / 20, 1)) * 400
    assert float(parts["loss_kd"]) == pytest.approx(10 * float(mean_over_all), rel=1e-9)


def test_no_gradient_reaches_the_teacher():
    s = torch.randn(4, 10, requires_grad=True)
    t = torch.randn(4, 10, requires_grad=True)
    kd_loss(s, t, torch.tensor([0, 1, 2, 3])).backward()
    assert s.grad is not None and s.grad.abs().sum() > 0
    assert t.grad is None


@pytest.mark.parametrize(
    "kwargs,needle",
    [
        ({"temperature": 0.0}, "temperature must be"),
        ({"temperature": -1.0}, "temperature must be"),
        ({"alpha": 1.5}, r"alpha must be in \[0, 1\]"),
        ({"alpha": -0.1}, r"alpha must be in \[0, 1\]"),
    ],
)
def test_bad_parameters_raise(kwargs, needle):
    s = torch.randn(2, 3)
    with pytest.raises(ValueError, match=needle):
        kd_loss(s, s, torch.tensor([0, 1]), **kwargs)


def test_shape_mismatch_raises():
    with pytest.raises(ValueError, match="teacher_logits shape"):
        kd_loss(torch.randn(2, 3), torch.randn(2, 4), torch.tensor([0, 1]))
    with pytest.raises(ValueError, match="targets"):
        kd_loss(torch.randn(2, 3), torch.randn(2, 3), torch.tensor([0, 1, 2]))


def test_alpha_zero_needs_no_teacher():
    s = torch.randn(3, 4)
    y = torch.tensor([0, 1, 2])
    assert torch.allclose(kd_loss(s, None, y, alpha=0.0), nn.functional.cross_entropy(s, y))
