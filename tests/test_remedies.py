"""Issue 24: logit-standardised KD (E12), the random-weight teacher (E13), and the two new teacher predictors
(T. stddev, adaptive ECE), each against an independent expectation: a hand computation, an identity, a closed
form."""
import math

import numpy as np
import pytest
import torch

from kdlib.blocks.distill import kd_loss_parts, standardize_logits
from kdlib.blocks.metrics import adaptive_ece, ece
from kdlib.blocks.predictors import t_stddev, teacher_properties
from kdlib.train.recipe import Learner, Recipe


# --------------------------------------------------------------------------- logit standardisation
def test_standardized_logits_by_hand():
    z = standardize_logits(torch.tensor([[1.0, 2.0, 3.0], [4.0, 4.0, 4.0]], dtype=torch.float64))
    s = math.sqrt(2.0 / 3.0)  # population std of 1, 2, 3
    assert z[0].tolist() == pytest.approx([-1 / s, 0.0, 1 / s], rel=1e-6)
    assert z[1].tolist() == [0.0, 0.0, 0.0]  # a constant row: zeros, not NaN
    with pytest.raises(ValueError, match=r"\(N, C\)"):
        standardize_logits(torch.zeros(3))


def _kl_by_hand(t_logits, s_logits, temperature):
    """KL(softmax(zt/T) || softmax(zs/T)) * T^2, every step in plain Python floats."""
    def z(v):
        m = sum(v) / len(v)
        sd = math.sqrt(sum((x - m) ** 2 for x in v) / len(v))
        return [(x - m) / sd for x in v]

    def softmax(v):
        e = [math.exp(x / temperature) for x in v]
        return [x / sum(e) for x in e]

    p, q = softmax(z(t_logits)), softmax(z(s_logits))
    return temperature ** 2 * sum(a * math.log(a / b) for a, b in zip(p, q))


def test_standardized_kd_term_equals_a_hand_computation():
    t, s = [1.0, 2.0, 3.0], [0.0, 0.0, 1.0]
    parts = kd_loss_parts(torch.tensor([s], dtype=torch.float64), torch.tensor([t], dtype=torch.float64),
                          torch.tensor([2]), temperature=2.0, alpha=0.5, standardize=True)
    assert parts["loss_kd"].item() == pytest.approx(_kl_by_hand(t, s, 2.0), rel=1e-6)
    hard = -math.log(math.exp(1) / (2 + math.exp(1)))  # the hard term sees the raw student logits
    assert parts["loss_ce"].item() == pytest.approx(hard, rel=1e-9)
    assert parts["loss"].item() == pytest.approx(0.5 * hard + 0.5 * parts["loss_kd"].item(), rel=1e-9)


def test_standardized_kd_ignores_shift_and_scale_of_either_logit_vector():
    g = torch.Generator().manual_seed(0)
    s = torch.randn(8, 10, generator=g, dtype=torch.float64)
    t = 3 * torch.randn(8, 10, generator=g, dtype=torch.float64)
    y = torch.arange(8) % 10
    shift = torch.randn(8, 1, generator=g, dtype=torch.float64)
    scale = torch.rand(8, 1, generator=g, dtype=torch.float64) * 4 + 0.25

    def kd(student, teacher, standardize):
        return kd_loss_parts(student, teacher, y, 4.0, 0.5, standardize=standardize)["loss_kd"].item()

    base = kd(s, t, True)
    assert kd(s, t * scale + shift, True) == pytest.approx(base, rel=1e-6)
    assert kd(s * scale + shift, t, True) == pytest.approx(base, rel=1e-6)
    # the raw loss is shift-invariant but not scale-invariant: the identity above is the standardisation's
    assert kd(s, t + shift, False) == pytest.approx(kd(s, t, False), rel=1e-9)
    assert abs(kd(s, t * scale, False) - kd(s, t, False)) > 1e-3


def test_a_learner_refuses_an_unknown_kd_logits_mode():
    with pytest.raises(ValueError, match="kd_logits must be one of"):
        Learner("x", torch.nn.Linear(2, 2), Recipe(epochs=1, batch_size=2, lr=0.1), alpha=0.5, kd_logits="zscore")


def test_the_grid_refuses_an_unknown_kd_logits_mode(tmp_path):
    import yaml

    from kdlib.base.paths import GRID_PATH
    from kdlib.runs.plan import load_grid

    grid = yaml.safe_load(GRID_PATH.read_text())
    grid["experiments"]["E12"]["kd_logits"] = "zscore"
    path = tmp_path / "grid.yaml"
    path.write_text(yaml.safe_dump(grid))
    with pytest.raises(ValueError, match=r"E12\.kd_logits must be one of \['raw', 'standardized'\]"):
        load_grid(path)


def test_only_e12_students_carry_kd_logits_and_e13_teachers_are_untrained():
    from kdlib.runs.plan import load_grid, plan, task_configs

    grid = load_grid()
    tasks = plan("smoke-ext", grid)
    for task in tasks:
        for c in task_configs(task, grid):
            if c.get("kd_logits") is not None:
                assert task.experiments == ["E12"] and c["kd_logits"] == "standardized" and c["temperature"] == 2
            if c.get("untrained"):
                assert task.experiments == ["E13"] and c["kind"] == "teacher"
    e13 = [t for t in tasks if t.experiments == ["E13"] and t.kind == "students"]
    assert e13 and all(t.params["teacher_untrained"] and t.params["temperature"] == 20 for t in e13)


# --------------------------------------------------------------------------- the random-weight teacher
def test_the_random_teacher_is_its_seeded_initialisation_never_trained_and_reproducible(tmp_path):
    from kdlib.runs.evaluate import _build, load_model
    from kdlib.runs.execute import run_task
    from kdlib.runs.plan import load_grid, plan
    from kdlib.train.recipe import seed_everything

    grid = load_grid()
    task = next(t for t in plan("smoke-ext", grid) if t.name == "teacher-main-resnet18-none-random")
    a = run_task(task, runs=tmp_path / "a", progress=False, results=None, seeds=[0])[0]
    b = run_task(task, runs=tmp_path / "b", progress=False, results=None, seeds=[0])[0]
    assert a.read_history() == [] and a.read_json("metrics.json")["health"]["failed"] is False
    seed_everything(0)
    fresh = _build(a.config["model"], a.config["dataset"]["name"]).state_dict()
    for model in (load_model(a, "cpu"), load_model(b, "cpu")):
        for name, value in model.state_dict().items():
            assert torch.equal(value, fresh[name]), name  # the initial weights of seed 0, untouched
    pa, pb = a.read_predictions(), b.read_predictions()
    assert np.array_equal(pa["test_probs"], pb["test_probs"])
    other = run_task(task, runs=tmp_path / "a", progress=False, results=None, seeds=[1])[0]
    assert not np.array_equal(other.read_predictions()["test_probs"], pa["test_probs"])  # another seed, another net


def test_students_of_the_random_teacher_train_from_its_logits(tmp_path):
    from kdlib.runs.execute import run_task
    from kdlib.runs.plan import load_grid, plan

    grid = load_grid()
    task = next(t for t in plan("smoke-ext", grid) if t.name == "students-main-resnet18-none-random-to-none-a0.5-T20")
    runs = run_task(task, runs=tmp_path, progress=False, results=None, seeds=[0])
    assert {r.config["model"]["name"] for r in runs} == {"lenet", "alexnet"}
    for r in runs:
        prov = r.read_json("provenance.json")
        assert prov["teacher"]["logits"]["from"] == "run" and len(r.read_history()) == r.config["recipe"]["epochs"]


def test_the_random_teacher_and_its_students_export_as_records_and_teach_from_them(tmp_path):
    from kdlib.runs.execute import run_task
    from kdlib.runs.export import export_store
    from kdlib.runs.plan import load_grid, plan
    from kdlib.runs.store import RunStore

    grid = load_grid()
    tasks = {t.name: t for t in plan("smoke-ext", grid)}
    run_task(tasks["students-main-resnet18-none-random-to-none-a0.5-T20"], runs=tmp_path / "runs", progress=False,
             results=None, seeds=[0])
    report = export_store("smoke-ext", runs=tmp_path / "runs", dest=tmp_path / "results", results=None)
    assert sorted(r["status"] for r in report) == ["added"] * 3, report  # the teacher (no epochs) and 2 students
    records = RunStore(tmp_path / "empty", "smoke-ext", results=tmp_path / "results")
    teacher = next(r for r in records.runs("teacher"))
    assert teacher.record and teacher.config["untrained"] and teacher.read_history() == []


# --------------------------------------------------------------------------- T. stddev and adaptive ECE
def _two_class_logits(p_true):
    """Logits whose softmax gives p(class 0) = p_true exactly (class 0 the label)."""
    p = np.asarray(p_true, dtype=np.float64)
    return np.stack([np.log(p), np.log1p(-p)], axis=1), np.zeros(len(p), dtype=np.int64)


def test_t_stddev_closed_form_for_two_batches():
    logits, labels = _two_class_logits([0.9] * 64 + [0.5] * 64 + [0.1] * 10)  # 10 left over: dropped
    assert t_stddev(logits, labels, seed=None) == pytest.approx(0.2, rel=1e-9)  # |0.9 - 0.5| / 2
    const, y = _two_class_logits([0.7] * 256)
    assert t_stddev(const, y) == pytest.approx(0.0, abs=1e-12)
    with pytest.raises(ValueError, match="two batches of 64"):
        t_stddev(const[:100], y[:100])


def test_t_stddev_of_independent_probabilities_is_their_std_over_root_batch():
    # p(true) uniform on [0.2, 0.8] for every image: batch means have std sigma / sqrt(B), sigma^2 = 0.6^2 / 12
    rng = np.random.default_rng(3)
    logits, labels = _two_class_logits(rng.uniform(0.2, 0.8, size=64 * 2000))
    expected = 0.6 / math.sqrt(12) / math.sqrt(64)
    assert t_stddev(logits, labels) == pytest.approx(expected, rel=0.05)  # 2000 batches: s.e. of a std ~1.6%
    assert t_stddev(logits, labels, batch_size=16) == pytest.approx(0.6 / math.sqrt(12) / 4, rel=0.05)


def test_adaptive_ece_by_hand():
    conf = np.array([0.6, 0.7, 0.8, 0.9])
    probs = np.stack([conf, 1 - conf], axis=1)
    labels = np.array([0, 1, 0, 0])  # correct, wrong, correct, correct
    # equal-mass bins {0.6, 0.7}: accuracy 0.5, confidence 0.65; {0.8, 0.9}: accuracy 1, confidence 0.85
    assert adaptive_ece(probs, labels, n_bins=2) == pytest.approx(0.5 * 0.15 + 0.5 * 0.15)
    # one bin: |mean accuracy - mean confidence|
    assert adaptive_ece(probs, labels, n_bins=1) == pytest.approx(abs(0.75 - 0.75))
    # where every equal-width bin holds the same count, the two estimators agree
    c = np.repeat([0.55, 0.65, 0.75, 0.85, 0.95], 4)
    p = np.stack([c, 1 - c], axis=1)
    y = np.random.default_rng(0).integers(0, 2, size=len(c))
    assert adaptive_ece(p, y, n_bins=5) == pytest.approx(ece(p, y, n_bins=10))
    with pytest.raises(ValueError, match="n_bins"):
        adaptive_ece(probs, labels, n_bins=0)


def test_teacher_properties_leave_what_is_missing_as_nan():
    logits, labels = _two_class_logits([0.9] * 64 + [0.5] * 64)
    full = teacher_properties(logits, labels, logits, labels)
    assert full["t_stddev"] == pytest.approx(t_stddev(logits, labels))
    assert full["adaptive_ece"] == pytest.approx(adaptive_ece(np.exp(logits), labels))
    none = teacher_properties(None, None)
    assert all(math.isnan(v) for v in none.values())


# --------------------------------------------------------------------------- the remedies table's selection
def test_half_accuracy_splits_by_dataset_index_parity():
    from kdlib.book.remedies import half_accuracy

    pred = {"test_probs": np.eye(3)[[0, 1, 2, 0, 1, 2]], "test_labels": np.array([0, 1, 2, 1, 1, 1]),
            "test_indices": np.array([10, 11, 12, 13, 14, 15])}
    # even indices 10, 12, 14: rows 0, 2, 4 -> all right; odd 11, 13, 15: rows 1, 3, 5 -> right, wrong, wrong
    assert half_accuracy(pred, "heldout") == 1.0
    assert half_accuracy(pred, "eval") == pytest.approx(1 / 3)
    with pytest.raises(ValueError, match="half must be one of"):
        half_accuracy(pred, "test")


def test_the_temperature_is_chosen_on_the_heldout_half_never_on_the_judged_one():
    from kdlib.book.remedies import choose_temperature

    # T = 4 is best on the judged half, T = 2 on the held-out half: the choice is T = 2 and its judged accuracy
    cands = {1.0: (0.70, 0.71), 2.0: (0.75, 0.72), 4.0: (0.74, 0.80), 20.0: (0.60, 0.65)}
    assert choose_temperature(cands) == (2.0, 0.72)
    assert choose_temperature({2.0: (0.7, 0.1), 8.0: (0.7, 0.2)}) == (8.0, 0.2)  # a tie goes to the higher T
    assert all(math.isnan(v) for v in choose_temperature({}))


def _diff(mean, half, n=5):
    return {"mean": mean, "low": mean - half, "high": mean + half, "n": n}


def test_the_advice_says_only_what_the_intervals_support():
    from kdlib.book.remedies import remedy_advice

    none = {"lsd_gain": _diff(-0.03, 0.01), "lsd_left": _diff(0, 0, 0), "best_t_gain": _diff(0.01, 0.02),
            "best_t_left": _diff(0, 0, 0)}
    mix = {"lsd_gain": _diff(0.18, 0.05), "lsd_left": _diff(-0.05, 0.07),  # up, and the penalty unresolved
           "best_t_gain": _diff(0.01, 0.02), "best_t_left": _diff(-0.1, 0.05)}  # not up
    cut = {"lsd_gain": _diff(0.01, 0.005), "lsd_left": _diff(-0.03, 0.01),  # up, the penalty stays
           "best_t_gain": _diff(0.0, 0.0, 0), "best_t_left": _diff(0.0, 0.0, 0)}  # not run
    text = remedy_advice([("LeNet", "none", none), ("LeNet", "Mixup", mix), ("LeNet", "CutMix", cut)])
    lsd, best = text.split(". ")
    assert lsd.startswith("Logit-standardised KD raises 2 of 2 mixer-teacher students")
    assert "Mixup teacher by +0.180 (5 seeds, no remaining penalty detected)" in lsd
    assert "CutMix teacher by +0.010 (5 seeds)" in lsd
    assert "1 of them no longer trail the plain teacher's student detectably, the rest do" in lsd
    assert "costs the plain teacher's students (LeNet -0.030)" in lsd
    assert best == "The best held-out T raises none of 1 mixer-teacher students beyond its interval"
    assert remedy_advice([]) == "not run yet"
    short = remedy_advice([("LeNet", "none", none), ("LeNet", "Mixup", mix), ("LeNet", "CutMix", cut)], short=True)
    assert short.startswith("Logit-standardised KD raises 2 of 2 Mixup/CutMix-teacher students; 1 of them")
    assert "+0.180" not in short and "(LeNet -0.030)" in short
