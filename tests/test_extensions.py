"""The pieces of the extension experiments (grid E6-E10): post-hoc temperature scaling, the label-smoothed
teacher, temperatures and regime crosses in the plan, profiles that reuse another profile's runs, and the
extensions chapter."""
from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from conftest import grid_with

from kdlib.blocks.calibration import ScaledTeacher, calibration_mask, fit_temperature, nll, temperature_scaling_report
from kdlib.runs.plan import load_grid, plan, task_configs
from kdlib.runs.execute import run_grid
from kdlib.blocks.metrics import ece
from kdlib.runs.store import RunStore, run_id
from kdlib.train.recipe import Learner, Recipe
from kdlib.train.steps import _loss

EXTENSIONS = ["E6", "E7", "E8", "E9", "E10", "E11", "E12", "E13"]


# ------------------------------------------------------------------ temperature scaling
def test_fitted_temperature_matches_the_closed_form_of_a_two_class_problem():
    # every image has logits (a, 0); a fraction p are of class 0. NLL(s) is smallest where
    # sigmoid(a / s) = p, i.e. s = a / ln(p / (1 - p)): a = 4, p = 0.8 gives 4 / ln 4 = 2.8854
    a, n = 4.0, 1000
    logits = np.tile([a, 0.0], (n, 1))
    labels = np.r_[np.zeros(800, int), np.ones(200, int)]
    assert fit_temperature(logits, labels) == pytest.approx(4 / math.log(4), rel=1e-4)


def test_nll_equals_torch_cross_entropy_and_the_fit_is_the_minimum_of_a_grid_search():
    rng = np.random.default_rng(0)
    logits = rng.normal(0, 3, (400, 10))
    labels = np.where(rng.random(400) < 0.7, logits.argmax(1), rng.integers(0, 10, 400))
    for s in (0.5, 1.0, 3.0):
        ref = F.cross_entropy(torch.tensor(logits / s), torch.tensor(labels)).item()
        assert nll(logits, labels, s) == pytest.approx(ref, rel=1e-10)
    grid = np.exp(np.linspace(math.log(0.1), math.log(20), 4001))
    best = grid[np.argmin([F.cross_entropy(torch.tensor(logits / g), torch.tensor(labels)).item() for g in grid])]
    assert fit_temperature(logits, labels) == pytest.approx(best, rel=2e-3)


def test_scaling_report_fits_on_even_indices_and_measures_on_odd_ones():
    rng = np.random.default_rng(1)
    n = 600
    labels = rng.integers(0, 10, n)
    logits = rng.normal(0, 1, (n, 10))
    logits[np.arange(n), labels] += 2.0
    logits *= 4  # overconfident: the fitted scale is > 1
    indices = rng.permutation(10_000)[:n]
    even = indices % 2 == 0
    rep = temperature_scaling_report(logits, labels, indices)
    assert rep["n_fit"] == even.sum() and rep["n_eval"] == (~even).sum()
    assert rep["temperature"] == pytest.approx(fit_temperature(logits[even], labels[even]))
    assert rep["temperature"] > 1.5
    scaled = torch.softmax(torch.tensor(logits[~even]) / rep["temperature"], 1).numpy()
    assert rep["ece_after"] == pytest.approx(ece(scaled, labels[~even], 15))
    assert rep["ece_after"] < rep["ece_before"] and rep["nll_after"] < rep["nll_before"]
    assert (calibration_mask([0, 1, 2, 7]) == [True, False, True, False]).all()


def test_temperature_scaling_refuses_bad_inputs_with_the_cause():
    with pytest.raises(ValueError, match="NaN or Inf"):
        fit_temperature(np.array([[np.nan, 0.0]]), np.array([0]))
    with pytest.raises(ValueError, match="labels outside"):
        fit_temperature(np.zeros((2, 3)), np.array([0, 3]))
    with pytest.raises(ValueError, match="both even and odd"):
        temperature_scaling_report(np.zeros((2, 3)), np.array([0, 1]), np.array([2, 4]))
    with pytest.raises(ValueError, match="scale must be"):
        ScaledTeacher(torch.nn.Identity(), 0.0)


def test_scaled_teacher_divides_the_logits_and_keeps_the_argmax():
    torch.manual_seed(0)
    net = torch.nn.Linear(5, 4)
    x = torch.randn(8, 5)
    out = ScaledTeacher(net, 2.5)(x)
    torch.testing.assert_close(out, net(x) / 2.5)
    assert torch.equal(out.argmax(1), net(x).argmax(1))


# ------------------------------------------------------------------ label smoothing
def test_label_smoothed_teacher_loss_equals_torch_cross_entropy_with_smoothing():
    torch.manual_seed(0)
    logits, y = torch.randn(16, 10), torch.randint(0, 10, (16,))
    learner = Learner("t", torch.nn.Identity(), Recipe(epochs=1, label_smoothing=0.1), alpha=0.0)
    got = _loss(learner, logits, F.one_hot(y, 10).float(), None)["loss"]
    torch.testing.assert_close(got, F.cross_entropy(logits, y, label_smoothing=0.1))
    # by hand for one image: targets 0.91 on the label, 0.01 elsewhere
    z = torch.tensor([[2.0, 0.0, -1.0]])
    learner3 = Learner("t", torch.nn.Identity(), Recipe(epochs=1, label_smoothing=0.3), alpha=0.0)
    logp = z - torch.logsumexp(z, 1, keepdim=True)
    by_hand = -(0.8 * logp[0, 0] + 0.1 * logp[0, 1] + 0.1 * logp[0, 2])
    torch.testing.assert_close(_loss(learner3, z, torch.tensor([[1.0, 0, 0]]), None)["loss"], by_hand)


# ------------------------------------------------------------------ the plan
def test_the_extensions_plan_what_the_issue_asks_and_leave_the_paper_runs_alone():
    grid = load_grid()
    tasks = plan("paper", grid)
    by_exp = {e: [t for t in tasks if e in t.experiments] for e in EXTENSIONS}
    # E6: Cutout, Mixup, CutMix teachers without flip+crop
    assert sorted(t.params["regime"] for t in by_exp["E6"] if t.kind == "teacher") == ["cutmix", "cutout", "mixup"]
    # E7: every E1 teacher at five temperatures
    temps = {(t.params["teacher_regime"], t.params["temperature"]) for t in by_exp["E7"] if t.kind == "students"}
    assert len(temps) == 25 and {T for _, T in temps} == {1.0, 2.0, 4.0, 8.0, 20.0}
    # E8: the full 5 x 5 cross for LeNet students
    cells = {(t.params["teacher_regime"], t.params["regime"]) for t in by_exp["E8"] if t.kind == "students"}
    assert len(cells) == 25 and all("lenet" in t.params["students"] for t in by_exp["E8"] if t.kind == "students")
    # E9: the teacher's recipe smooths its labels by 0.1; E10: students distil from calibrated teachers
    ls = [c for t in by_exp["E9"] if t.kind == "teacher" for c in task_configs(t, grid)]
    assert ls and all(c["recipe"]["label_smoothing"] == 0.1 and c["augment"] == "none" for c in ls)
    ts = [c for t in by_exp["E10"] if t.kind == "students" for c in task_configs(t, grid)]
    assert len(ts) == 5 * 2 * len(grid["profiles"]["paper"]["seeds"]) and all(c["teacher_calibration"] == "temperature" for c in ts)
    # the configs of E1-E5 carry no new key, so the committed records keep their ids
    main = [t for t in tasks if set(t.experiments) - set(EXTENSIONS)]
    assert all("teacher_calibration" not in c and c["recipe"]["label_smoothing"] == 0.0
               for t in main for c in task_configs(t, grid))
    # the quick profile (make book) plans only the paper's experiments
    assert {e for t in plan("quick", grid) for e in t.experiments} == {"E1", "E2", "E3", "E4", "E5"}
    assert {e for t in plan("quick-ext", grid) for e in t.experiments} >= set(EXTENSIONS)


@pytest.mark.parametrize("edit, match", [
    (lambda g: g["experiments"]["E7"].update(temperature=4), "both 'temperature' and 'temperatures'"),
    (lambda g: g["experiments"]["E7"].update(temperatures=[1, 0]), "temperature must be"),
    (lambda g: g["experiments"]["E10"].update(teacher_calibration="platt"), "teacher_calibration must be one of"),
    (lambda g: g["experiments"]["E9"]["teachers"].update(label_smoothing=1.5), "label_smoothing must be in"),
    (lambda g: g["profiles"]["quick"].update(experiments=["E1", "E66"]), "'E66' is not an experiment"),
    (lambda g: g["profiles"]["quick-ext"].update(reuse="quik"), "must name another profile"),
])
def test_bad_extension_settings_are_refused_with_the_place_and_the_fix(tmp_path, edit, match):
    with pytest.raises(ValueError, match=match):
        load_grid(grid_with(tmp_path, edit))


# ------------------------------------------------------------------ pipeline
@pytest.fixture(scope="module")
def ext_store(tmp_path_factory):
    """The smoke profile's E1 teachers, then the extensions in smoke-ext, which reads them."""
    root = tmp_path_factory.mktemp("ext") / "runs"
    run_grid("smoke", runs=root, device="cpu", progress=False, only=["E1"], results=None)
    run_grid("smoke-ext", runs=root, device="cpu", progress=False, only=EXTENSIONS, seeds=[0], results=None)
    return RunStore(root, "smoke-ext", results=None)


def test_a_profile_that_reuses_another_reads_its_runs_and_retrains_nothing(ext_store):
    grid = load_grid()
    e1 = [c for t in plan("smoke", grid) if "E1" in t.experiments for c in task_configs(t, grid)]
    for c in e1:
        run = ext_store.run(c)
        assert run.done and run.folder.parent.parent.name == "smoke"  # the smoke store's folder
    assert not (ext_store.root / "smoke-ext" / "teacher" / run_id(e1[0])).exists()
    # only the runs the smoke store had not finished were trained into smoke-ext
    own = {p.name for p in (ext_store.root / "smoke-ext").glob("*/*")}
    smoke = {r.id for r in RunStore(ext_store.root, "smoke", results=None).runs()}
    assert own and smoke and not own & smoke
    assert RunStore(ext_store.root, "smoke-ext", results=None, reuse=None).run(e1[0]).done is False


def test_calibrated_students_distil_from_the_teachers_logits_divided_by_the_fitted_scale(ext_store, monkeypatch):
    from kdlib.runs import pipeline
    from kdlib.runs.pipeline import read_train_logits
    from kdlib.data.memo import split_of

    grid = load_grid()
    task = next(t for t in plan("smoke-ext", grid) if t.name == "students-main-resnet18-flipcrop-ts-to-none-a0.5-T20")
    cfg = task_configs(task, grid, seeds=[0])[0]
    teacher = ext_store.find(cfg["teacher"], "teacher")
    preds = teacher.read_predictions()
    expected = fit_temperature(preds["test_logits"][preds["test_indices"] % 2 == 0],
                               preds["test_labels"][preds["test_indices"] % 2 == 0])
    student = ext_store.run(cfg)
    prov = json.loads(student.path("provenance.json").read_text())["teacher_calibration"]
    assert prov["temperature"] == pytest.approx(expected, rel=1e-6)
    # what fit() is given: the cached train logits divided by that scale
    seen = {}

    def spy(learners, loader, teacher=None, cached_teacher_logits=None, **kw):
        seen["cached"], seen["teacher"] = cached_teacher_logits, teacher
        raise KeyboardInterrupt

    monkeypatch.setattr(pipeline, "fit", spy)
    fresh = RunStore(ext_store.root.parent / "fresh", "smoke-ext", results=None, reuse=None)
    import shutil

    shutil.copytree(teacher.folder, fresh.root / "smoke-ext" / "teacher" / teacher.id)
    with pytest.raises(KeyboardInterrupt):
        pipeline.run_students([cfg], fresh, device="cpu", progress=False)
    n = len(split_of(cfg["dataset"], "train", "subset"))
    torch.testing.assert_close(seen["cached"], torch.as_tensor(read_train_logits(teacher, n) / np.float32(expected)))


def test_the_cross_distils_augmented_students_from_the_online_teacher(ext_store, monkeypatch):
    from kdlib.runs import pipeline

    grid = load_grid()
    task = next(t for t in plan("smoke-ext", grid)
                if t.name == "students-main-resnet18-flipcrop-mixup-to-flipcrop-cutmix-a0.5-T20")
    cfg = task_configs(task, grid, seeds=[0])[0]
    seen = {}

    def spy(learners, loader, teacher=None, cached_teacher_logits=None, **kw):
        seen.update(teacher=teacher, cached=cached_teacher_logits, augment=loader.augment.spec)
        raise KeyboardInterrupt

    monkeypatch.setattr(pipeline, "fit", spy)
    fresh = RunStore(ext_store.root.parent / "fresh2", "smoke-ext", results=None, reuse=None)
    teacher = ext_store.find(cfg["teacher"], "teacher")
    import shutil

    shutil.copytree(teacher.folder, fresh.root / "smoke-ext" / "teacher" / teacher.id)
    with pytest.raises(KeyboardInterrupt):
        pipeline.run_students([cfg], fresh, device="cpu", progress=False)
    # the teacher is queried on the student's own CutMix batch (tests/test_train.py checks it is that very tensor)
    assert seen["cached"] is None and seen["teacher"] is not None and "cutmix" in seen["augment"]


def test_paper_chapters_never_see_extension_runs(ext_store):
    from kdlib.book.rows import collect
    from kdlib.book.fill import missing_runs

    rows = collect(ext_store, extensions=True)
    only_ext = [r for r in rows if set(r["experiments"]) <= set(EXTENSIONS)]
    assert only_ext and {r["temperature"] for r in only_ext if r["kind"] == "student"} >= {1.0, 2.0, 4.0, 8.0}
    main = collect(ext_store)
    assert main and not {r["id"] for r in main} & {r["id"] for r in only_ext}
    assert all(r["temperature"] in (None, 20.0) and r["teacher_calibration"] == "none" for r in main)
    assert not any(set(g["experiments"].split(",")) <= set(EXTENSIONS) for g in missing_runs(ext_store))


def _outputs(path):
    import nbformat

    nb = nbformat.read(path, 4)
    errors = [o for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", []) if o["output_type"] == "error"]
    return "\n".join(json.dumps(o, ensure_ascii=False) for c in nb.cells if c.cell_type == "code"
                     for o in c.get("outputs", [])), errors


def test_the_extensions_chapter_answers_each_question_or_says_how_to_fill_it(ext_store, tmp_path):
    from kdlib.book.notebooks import execute_chapter

    out = execute_chapter("extensions", "smoke-ext", runs=ext_store.root, output=tmp_path / "ext.ipynb")
    text, errors = _outputs(out)
    assert not errors
    # a temperature figure and the 5 x 5 heatmap; the summary has a line per question and student model
    assert text.count("image/png") == 2
    for needle in ("penalty, alone", "T=1 minus T=20", "teacher only − student only", "label-smoothing teacher",
                   "fitted scale", "ECE after", "standardised: gain", "best T: chosen", "Advice from these runs",
                   "random weights", "− random-weight teacher's student"):
        assert needle in text, needle
    assert all(f"{e} " in text or f'"{e}"' in text or f">{e}<" in text for e in EXTENSIONS)
    # seed 1 of smoke-ext is planned but was not run here: every section names what is missing and the command
    assert text.count("are missing") == len(EXTENSIONS) and "python -m kdlib grid --profile smoke-ext --only E7" in text
    # a profile that plans none of them says so, and which command builds them
    out = execute_chapter("extensions", "smoke", runs=ext_store.root, output=tmp_path / "ext-smoke.ipynb")
    text, errors = _outputs(out)
    assert not errors and "runs only the paper's experiments" in text and "make book PROFILE=smoke-ext" in text


def test_accuracy_matched_teachers_stop_at_the_plain_teachers_heldout_accuracy(tmp_path):
    """E11 at smoke size with 3-epoch teachers: the target is the plain teacher's accuracy on the even-index
    half of the test split, recomputed here from its predictions; the history ends where the record says."""
    def longer(g):
        g["profiles"]["smoke-ext"]["recipes"] = {**g["profiles"]["smoke"]["recipes"],
                                                 "teacher": {**g["profiles"]["smoke"]["recipes"]["teacher"],
                                                             "epochs": 3}}
    path = grid_with(tmp_path, longer)
    root = tmp_path / "runs"
    run_grid("smoke-ext", runs=root, device="cpu", progress=False, only=["E11"], seeds=[0], results=None,
             grid_path=path, names=["students-main-resnet18-flipcrop-mixup-at-none-to-none-a0.5-T20"])
    grid = load_grid(path)
    store = RunStore(root, "smoke-ext", results=None, reuse=None)
    task = next(t for t in plan("smoke-ext", grid) if t.name == "teacher-main-resnet18-flipcrop-mixup-at-none")
    cfg = task_configs(task, grid, seeds=[0])[0]
    plain = store.find(cfg["stop_at_accuracy_of"], "teacher")
    assert plain is not None and plain.config["augment"] == "none"
    pred = plain.read_predictions()
    even = pred["test_indices"] % 2 == 0
    target = (pred["test_probs"][even].argmax(1) == pred["test_labels"][even]).mean()
    run = store.run(cfg)
    match = run.read_json("metrics.json")["accuracy_match"]
    assert match["target"] == pytest.approx(target) and match["n_heldout"] == even.sum()
    assert match["stopped_at_epoch"] == len(run.read_history()) <= 3
    assert match["reached"] == (match["heldout_accuracy"] >= match["target"])
    assert match["reached"] or match["stopped_at_epoch"] == 3
    # its students were distilled from it
    students = [r for r in store.runs("student") if r.config["teacher"] == run.id]
    assert {r.config["model"]["name"] for r in students} == {"lenet", "alexnet"}


def test_extension_selections_pair_by_seed_and_refuse_ambiguity():
    from kdlib.book.extensions import by_seed, contrast, penalty, students

    def row(seed, teacher, acc, **kw):
        base = {"id": f"{teacher}{seed}{kw}", "kind": "student", "model": "lenet", "alpha": 0.5, "teacher": "t",
                "dataset": "d", "seed": seed, "accuracy": acc, "augment": "none", "temperature": 20.0,
                "teacher_augment": teacher, "teacher_label_smoothing": 0.0, "teacher_calibration": "none",
                "teacher_matched": False}
        return {**base, **kw}

    rows = [row(0, "none", 0.70), row(1, "none", 0.72), row(2, "none", 0.71),
            row(0, "flipcrop(padding=4,flip=True,fill=black)+mixup(alpha=1.0)", 0.68),
            row(1, "flipcrop(padding=4,flip=True,fill=black)+mixup(alpha=1.0)", 0.69),
            row(0, "none", 0.60, temperature=1.0), row(1, "none", 0.61, temperature=1.0),
            row(0, "flipcrop(padding=4,flip=True,fill=black)+mixup(alpha=1.0)", 0.60, temperature=1.0),
            row(1, "flipcrop(padding=4,flip=True,fill=black)+mixup(alpha=1.0)", 0.62, temperature=1.0)]
    p20 = penalty(rows, "lenet", "flipcrop+mixup")
    assert p20["seeds"] == [0, 1] and p20["per_seed"] == pytest.approx([-0.02, -0.03])  # seed 2 has no pair
    p1 = penalty(rows, "lenet", "flipcrop+mixup", temperature=1.0)
    assert p1["per_seed"] == pytest.approx([0.0, 0.01])
    c = contrast(p1, p20)
    # hand: differences 0.02 and 0.04, mean 0.03, sd 0.01414, t(0.975, 1) = 12.706 -> half-width 0.127
    assert c["mean"] == pytest.approx(0.03) and c["high"] - c["mean"] == pytest.approx(12.7062 * 0.0141421 / 2 ** 0.5,
                                                                                        rel=1e-3)
    assert len(students(rows, "lenet", "none")) == 3  # T = 1 students are not T = 20 students
    with pytest.raises(ValueError, match="two runs of seed 0"):
        by_seed([rows[0], row(0, "none", 0.5, id="other")])
