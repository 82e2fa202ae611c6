"""Fidelity and teacher predictors against independent references (scipy, hand counts)."""
import math

import numpy as np
import pytest
from scipy import stats

from kdlib.blocks.predictors import PREDICTORS, bootstrap_corr, correlations, logit_std, teacher_student_pairs


def test_logit_std_is_shift_invariant_and_hand_checked():
    z = np.array([[1.0, 3.0], [0.0, 0.0], [2.0, 4.0]])
    assert logit_std(z) == pytest.approx((1.0 + 0.0 + 1.0) / 3)
    assert logit_std(z + np.array([[5.0], [-2.0], [7.0]])) == pytest.approx(logit_std(z))
    assert math.isnan(logit_std(None))
    with pytest.raises(ValueError, match="logits must be"):
        logit_std(np.zeros(3))


@pytest.mark.parametrize("method,ref", [("pearson", stats.pearsonr), ("spearman", stats.spearmanr)])
def test_correlation_equals_scipy_and_its_interval_contains_it(method, ref):
    rng = np.random.default_rng(1)
    x = rng.normal(size=30)
    y = 0.6 * x + rng.normal(size=30)
    y[3] = y[5]  # a tie for the ranks
    res = bootstrap_corr(x, y, method=method, n_boot=500)
    assert res["r"] == pytest.approx(ref(x, y)[0], abs=1e-12)
    assert res["low"] < res["r"] < res["high"] and res["n"] == 30
    assert bootstrap_corr(x, y, method=method, n_boot=500) == res  # seeded: the book is reproducible


def test_nan_pairs_are_dropped_and_tiny_samples_get_no_interval():
    res = bootstrap_corr([1, 2, 3, float("nan")], [2, 4, 7, 1])
    assert res["n"] == 3 and res["r"] == pytest.approx(stats.pearsonr([1, 2, 3], [2, 4, 7])[0])
    assert math.isnan(res["low"]) and math.isnan(res["high"])
    assert math.isnan(bootstrap_corr([1, 1, 1, 1], [1, 2, 3, 4])["r"])  # a constant predictor
    with pytest.raises(ValueError, match="method"):
        bootstrap_corr([1, 2], [1, 2], method="kendall")


def test_pairs_join_each_student_to_its_own_teacher():
    rows = [
        {"id": "t0", "kind": "teacher", "model": "resnet18", "regime": "none", "seed": 0, "accuracy": 0.84,
         "nll": 0.5, "ece": 0.03, "kl_to_human": 0.6, "class_separability": 3.0, "discrimination": 0.1},
        {"id": "t1", "kind": "teacher", "model": "resnet18", "regime": "mixup", "seed": 0, "accuracy": 0.90,
         "nll": 0.4, "ece": 0.08, "kl_to_human": 0.5, "class_separability": 2.0, "discrimination": 0.2},
        {"id": "s0", "kind": "student", "model": "lenet", "regime": "none", "alpha": 0.5, "teacher": "t0",
         "accuracy": 0.67, "agreement_with_teacher": 0.7, "kl_teacher_student": 0.3},
        {"id": "s1", "kind": "student", "model": "lenet", "regime": "none", "alpha": 0.5, "teacher": "t1",
         "accuracy": 0.64, "agreement_with_teacher": 0.65, "kl_teacher_student": 0.4},
        {"id": "s2", "kind": "student", "model": "alexnet", "regime": "none", "alpha": 0.5, "teacher": "t1",
         "accuracy": 0.80},
        {"id": "s3", "kind": "student", "model": "lenet", "regime": "none", "alpha": 0.0, "teacher": None,
         "accuracy": 0.65},
    ]
    pairs = teacher_student_pairs(rows, "lenet", teacher_logits={"t0": np.array([[0.0, 2.0]]), "t1": None})
    assert [(p["teacher"], p["student"]) for p in pairs] == [("t0", "s0"), ("t1", "s1")]
    assert pairs[1]["accuracy"] == 0.90 and pairs[1]["student_accuracy"] == 0.64 and pairs[1]["agreement"] == 0.65
    assert pairs[0]["logit_std"] == pytest.approx(1.0) and math.isnan(pairs[1]["logit_std"])
    table = correlations(pairs)
    assert [t["predictor"] for t in table] == list(PREDICTORS)
    # the two computed from predictions (no properties given here) have no teacher; the others one or two
    assert all(t["n"] == 0 if t["predictor"] in ("adaptive_ece", "t_stddev") else t["n"] in (1, 2) for t in table)
