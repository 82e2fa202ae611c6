"""Metrics against sklearn, brute-force references and hand-computed cases."""
import numpy as np
import pytest
import torch
from sklearn.metrics import accuracy_score, precision_recall_fscore_support

import kdlib.blocks.metrics as M


def random_probs(n, c, seed=0, sharp=2.0):
    rng = np.random.default_rng(seed)
    z = rng.normal(size=(n, c)) * sharp
    p = np.exp(z - z.max(1, keepdims=True))
    return p / p.sum(1, keepdims=True), rng.integers(0, c, size=n)


@pytest.mark.parametrize("seed", range(4))
def test_classification_metrics_equal_sklearn(seed):
    p, y = random_probs(300, 10, seed)
    if seed == 3:
        p[:, 7] = 0  # a class never predicted: sklearn's zero_division=0 path
        p /= p.sum(1, keepdims=True)
    got = M.classification_metrics(p, y)
    pr, rc, f1, _ = precision_recall_fscore_support(y, p.argmax(1), average="macro", zero_division=0)
    assert got["accuracy"] == pytest.approx(accuracy_score(y, p.argmax(1)))
    assert got["precision"] == pytest.approx(pr)
    assert got["recall"] == pytest.approx(rc)
    assert got["f1"] == pytest.approx(f1)
    assert got["nll"] == pytest.approx(-np.log(np.maximum(p[np.arange(300), y], M.MIN_PROB)).mean())


def test_metrics_accept_tensors():
    p, y = random_probs(50, 4, 1)
    a = M.classification_metrics(torch.tensor(p, dtype=torch.float32), torch.tensor(y))
    assert a["accuracy"] == pytest.approx(M.classification_metrics(p, y)["accuracy"])


def test_ece_hand_computed():
    # 4 samples, 10 bins. conf 0.95 correct, 0.95 wrong -> bin (0.9,1]: acc 0.5, conf 0.95, gap .45
    # conf 0.55 correct -> bin (0.5,0.6]: gap .45; conf 0.3 (uniform-ish) wrong -> bin (0.2,0.3]: gap .3
    p = np.array([[0.95, 0.05, 0.0], [0.95, 0.05, 0.0], [0.55, 0.45, 0.0], [0.3, 0.3, 0.4]])
    p[3] = [0.3, 0.4, 0.3]  # max 0.4, predicted class 1
    y = np.array([0, 1, 0, 0])
    # bins: 0.95,0.95 -> (0.9,1]; 0.55 -> (0.5,0.6]; 0.4 -> (0.3,0.4] (upper edge inclusive)
    expected = (2 / 4) * abs(0.5 - 0.95) + (1 / 4) * abs(1 - 0.55) + (1 / 4) * abs(0 - 0.4)
    assert M.ece(p, y, n_bins=10) == pytest.approx(expected)
    curve = M.reliability_curve(p, y, n_bins=10)
    assert curve["count"].tolist() == [0, 0, 0, 1, 0, 1, 0, 0, 0, 2]


def test_ece_bin_edges_are_lower_open_upper_closed():
    # a confidence exactly on an edge (0.5) belongs to (0.4, 0.5], as in Guo et al.'s code
    p = np.array([[0.5, 0.5], [1.0, 0.0]])
    curve = M.reliability_curve(p, np.array([0, 0]), n_bins=10)
    assert curve["count"][4] == 1 and curve["count"][9] == 1


def test_ece_matches_brute_force_loop_reference():
    p, y = random_probs(2000, 10, 5, sharp=1.0)
    conf, pred = p.max(1), p.argmax(1)
    ref = 0.0
    edges = np.linspace(0, 1, 16)
    for lo, hi in zip(edges[:-1], edges[1:]):
        inb = (conf > lo) & (conf <= hi)
        if inb.any():
            ref += inb.mean() * abs((pred[inb] == y[inb]).mean() - conf[inb].mean())
    assert M.ece(p, y) == pytest.approx(ref)


def test_kl_to_human_hand_computed_with_zero_entries():
    human = np.array([[1.0, 0.0], [0.5, 0.5]])
    model = np.array([[0.5, 0.5], [0.25, 0.75]])
    expected = (np.log(2) + (0.5 * np.log(0.5 / 0.25) + 0.5 * np.log(0.5 / 0.75))) / 2
    assert M.kl_to_human(model, human) == pytest.approx(expected)


def test_class_kl_uses_ground_truth_means_and_rows_sum_to_class_kl():
    p, y = random_probs(400, 5, 7)
    h, _ = random_probs(400, 5, 8, sharp=3.0)
    mat = M.class_kl_matrix(p, h, y)
    for c in range(5):
        hb, mb = h[y == c].mean(0), p[y == c].mean(0)
        assert mat[c].sum() == pytest.approx((hb * np.log(hb / mb)).sum())
        assert mat[c, 2] == pytest.approx(hb[2] * np.log(hb[2] / mb[2]))
    assert M.class_kl_to_human(p, h, y) == pytest.approx(mat.sum(1).mean())


def test_mean_confusion_and_class_separability():
    p = np.array([[0.9, 0.1], [0.7, 0.3], [0.2, 0.8]])
    y = np.array([0, 0, 1])
    mc = M.mean_confusion(p, y)
    np.testing.assert_allclose(mc, [[0.8, 0.2], [0.2, 0.8]])
    kl = 0.8 * np.log(0.8 / 0.2) + 0.2 * np.log(0.2 / 0.8)  # KL(p0||p1) = KL(p1||p0) here
    assert M.class_separability(p, y) == pytest.approx(2 * kl / 4)


def test_class_separability_needs_every_class():
    with pytest.raises(ValueError, match="classes"):
        M.class_separability(np.array([[0.5, 0.3, 0.2]]), np.array([0]))


def brute_force_discrimination(e, y):
    z = (e - e.mean(0)) / e.std(0)
    u = z / np.linalg.norm(z, axis=1, keepdims=True)
    cos = u @ u.T
    classes = np.unique(y)
    coh = []
    for c in classes:
        idx = np.where(y == c)[0]
        vals = [cos[i, j] for a, i in enumerate(idx) for j in idx[a + 1:]]
        coh.append(np.mean(vals))
    adh = [cos[np.ix_(y == a, y == b)].mean() for i, a in enumerate(classes) for b in classes[i + 1:]]
    return np.mean(coh), np.mean(adh)


def test_class_discrimination_equals_brute_force_pairs():
    rng = np.random.default_rng(3)
    y = rng.integers(0, 4, size=120)
    e = rng.normal(size=(120, 6)) + y[:, None] * 0.8
    got = M.class_discrimination(e, y)
    coh, adh = brute_force_discrimination(e, y)
    assert got["cohesion"] == pytest.approx(coh)
    assert got["adhesion"] == pytest.approx(adh)
    assert got["discrimination"] == pytest.approx((coh - adh) / np.sqrt(6))
    assert got["dim"] == 6


def test_class_discrimination_identity_for_perfect_clusters():
    # two classes of identical standardised vectors pointing opposite ways: cohesion 1, adhesion -1
    e = np.array([[1.0, 2.0]] * 3 + [[-1.0, -2.0]] * 3)
    got = M.class_discrimination(e, np.array([0, 0, 0, 1, 1, 1]))
    assert got["cohesion"] == pytest.approx(1.0)
    assert got["adhesion"] == pytest.approx(-1.0)
    assert got["discrimination"] == pytest.approx(2 / np.sqrt(2))


def test_paper_table5_implies_ten_dimensions():
    # The paper's Table 5 (cohesion, adhesion, D): D * sqrt(10) == cohesion - adhesion to rounding
    # for four teachers, never with d=512; the Mixup row is off by 0.03 (a transcription slip?).
    rows = {"baseline": (0.739, -0.041, 0.246), "augment": (0.886, -0.049, 0.296),
            "cutout": (0.783, -0.043, 0.261), "mixup": (0.793, -0.042, 0.255),
            "cutmix": (0.917, -0.050, 0.306)}
    consistent = {k for k, (coh, adh, d) in rows.items() if abs(d * np.sqrt(10) - (coh - adh)) < 0.005}
    assert consistent == {"baseline", "augment", "cutout", "cutmix"}
    coh, adh, d = rows["mixup"]
    assert (coh - adh) - d * np.sqrt(10) == pytest.approx(0.029, abs=0.001)
    for coh, adh, d in rows.values():
        assert abs(d * np.sqrt(512) - (coh - adh)) > 4


def test_agreement_and_teacher_student_kl():
    t = np.array([[0.6, 0.4], [0.1, 0.9]])
    s = np.array([[0.5, 0.5], [0.6, 0.4]])
    # argmax of [0.5, 0.5] is class 0 (first), so row 0 agrees, row 1 does not
    assert M.agreement(s, t) == 0.5
    expected = np.mean([0.6 * np.log(0.6 / 0.5) + 0.4 * np.log(0.4 / 0.5),
                        0.1 * np.log(0.1 / 0.6) + 0.9 * np.log(0.9 / 0.4)])
    assert M.teacher_student_kl(t, s) == pytest.approx(expected)
    assert M.teacher_student_kl(t, t) == pytest.approx(0.0, abs=1e-12)


@pytest.mark.parametrize(
    "call,needle",
    [
        (lambda: M.ece(np.array([[2.0, -1.0]]), np.array([0])), "not logits"),
        (lambda: M.ece(np.array([[0.5, 0.5]]), np.array([0, 1])), "length 1"),
        (lambda: M.ece(np.array([[0.5, 0.5]]), np.array([2])), r"lie in \[0, 1\]"),
        (lambda: M.ece(np.array([[0.5, 0.5]]), np.array([0]), n_bins=0), "n_bins"),
        (lambda: M.kl_to_human(np.full((2, 2), 0.5), np.full((3, 2), 0.5)), "shape"),
        (lambda: M.classification_metrics(np.zeros((0, 3)), np.zeros(0)), "non-empty"),
    ],
)
def test_bad_inputs_raise_value_error(call, needle):
    with pytest.raises(ValueError, match=needle):
        call()


def test_macro_prf_by_hand_with_zero_division_and_an_absent_class():
    """Independent of sklearn (which kdlib now calls): class 2 is never predicted (precision 0, not NaN),
    class 3 is neither true nor predicted (left out of the average, as kdlib's hand-written version did)."""
    y = np.array([0, 0, 1, 1, 2])
    pred = np.array([0, 1, 1, 1, 0])
    p = np.full((5, 4), 0.1)
    p[np.arange(5), pred] = 0.7
    got = M.classification_metrics(p, y)
    assert got["precision"] == pytest.approx((1 / 2 + 2 / 3 + 0) / 3)
    assert got["recall"] == pytest.approx((1 / 2 + 1 + 0) / 3)
    assert got["f1"] == pytest.approx((1 / 2 + 0.8 + 0) / 3)
    assert got["accuracy"] == pytest.approx(3 / 5)
