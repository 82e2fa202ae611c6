"""The audit's arithmetic: the identities hold for real classifiers (checked with sklearn on random
predictions), and the paper rows they flag are the ones computed by hand."""
import numpy as np
import pytest
from sklearn.metrics import accuracy_score, precision_recall_fscore_support

from kdlib.book.audit import f1_bound_violations, recall_accuracy_violations
from kdlib.book.rows import paper_tables


@pytest.mark.parametrize("seed", range(20))
def test_the_identities_hold_for_any_classifier(seed):
    rng = np.random.default_rng(seed)
    y = np.repeat(np.arange(10), 50)  # balanced
    noise = rng.uniform(0, 1)
    pred = np.where(rng.uniform(size=len(y)) < noise, rng.integers(0, 10, len(y)), y)
    p, r, f1, _ = precision_recall_fscore_support(y, pred, average="macro", zero_division=0)
    assert f1 <= (p + r) / 2 + 1e-12
    assert r == pytest.approx(accuracy_score(y, pred))


def test_flagged_rows_match_hand_computation():
    t = paper_tables()
    f1 = {(v["table"], v["regime"], v["test set"]): v for v in f1_bound_violations(t)}
    # Table 9 Mixup on CIFAR-10: (0.954 + 0.867) / 2 = 0.9105 < 0.953
    assert f1[("table9", "mixup", "cifar10")]["bound (P+R)/2"] == pytest.approx(0.9105)
    # Table 9 CINIC: flip+crop (0.620 + 0.628) / 2 = 0.624 < 0.629; Cutout 0.624 < 0.630
    assert set(f1) == {("table9", "mixup", "cifar10"), ("table9", "flipcrop", "cinic"), ("table9", "cutout", "cinic")}
    rec = {(v["table"], v["model"], v["regime"], v["test set"]) for v in recall_accuracy_violations(t)}
    assert ("table9", "teacher", "cutmix", "cinic") in rec  # accuracy 0.710, recall 0.720
    assert ("table9", "teacher", "none", "cifar10") not in rec  # 0.852 = 0.852


def test_table1s_cutmix_teacher_is_worse_calibrated_than_the_plain_one():
    # the audit's reading of Table 1 against §5: ECE 0.252 (CutMix) > 0.205 (none) > 0.170 (Mixup)
    t = paper_tables()["table1"]["teacher"]
    assert (t["cutmix"]["ece"], t["none"]["ece"], t["mixup"]["ece"]) == (0.252, 0.205, 0.170)
    assert t["cutmix"]["ece"] > t["none"]["ece"] > t["mixup"]["ece"]
