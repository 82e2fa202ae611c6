"""Verdict logic on constructed cases, confidence intervals against scipy, and the paper's tables."""
import math

import numpy as np
import pytest
from scipy import stats

from kdlib.book.names import REGIME_NAMES
from kdlib.book.claims import claim_summary, claims, combine_verdicts, preconditions
from kdlib.book.stats import fmt_ci, holm, mean_ci, paired_difference, verdict
from kdlib.book.rows import paper_tables, regime_key


def test_mean_ci_matches_scipy_t_interval():
    x = [0.71, 0.74, 0.69, 0.73]
    m, h, n = mean_ci(x)
    lo, hi = stats.t.interval(0.95, len(x) - 1, loc=np.mean(x), scale=stats.sem(x))
    assert (m, n) == (pytest.approx(np.mean(x)), 4)
    assert m - h == pytest.approx(lo) and m + h == pytest.approx(hi)
    assert mean_ci([0.5])[1] == math.inf and mean_ci([])[2] == 0


@pytest.mark.parametrize("a,b,direction,expected", [
    ({0: 0.80, 1: 0.82, 2: 0.81}, {0: 0.70, 1: 0.71, 2: 0.72}, +1, "reproduced"),
    ({0: 0.80, 1: 0.82, 2: 0.81}, {0: 0.70, 1: 0.71, 2: 0.72}, -1, "contradicted"),
    ({0: 0.80, 1: 0.70, 2: 0.75}, {0: 0.72, 1: 0.78, 2: 0.74}, +1, "inconclusive"),
    ({0: 0.80}, {0: 0.70}, +1, "inconclusive"),  # one seed: the interval is unbounded
    ({0: 0.80}, {1: 0.70}, +1, "not tested"),  # no common seed
])
def test_verdicts_on_constructed_cases(a, b, direction, expected):
    assert verdict(paired_difference(a, b), direction) == expected


def test_paired_difference_uses_seed_pairs_not_pooled_groups():
    # large between-seed spread, constant within-seed gap: paired test sees the gap clearly
    a = {0: 0.50, 1: 0.70, 2: 0.90}
    b = {0: 0.49, 1: 0.69, 2: 0.89}
    d = paired_difference(a, b)
    assert d["mean"] == pytest.approx(0.01) and d["low"] == pytest.approx(0.01) and d["high"] == pytest.approx(0.01)
    assert verdict(d, +1) == "reproduced"


def rows_for(acc_teacher, acc_lenet, alone=None, seeds=(0, 1, 2)):
    rows = []
    for seed in seeds:
        for r, acc in acc_teacher.items():
            rows.append({"kind": "teacher", "model": "resnet18", "dataset": "d", "regime": r, "seed": seed,
                         "accuracy": acc + 0.001 * seed, "class_separability": math.nan,
                         "discrimination": math.nan, "kl_to_human": math.nan})
        for r, acc in acc_lenet.items():
            rows.append({"kind": "student", "model": "lenet", "alpha": 0.5, "regime": "none",
                         "teacher_model": "resnet18", "teacher_regime": r, "dataset": "d", "seed": seed,
                         "accuracy": acc - 0.002 * seed})
        for r, acc in (alone or {}).items():
            rows.append({"kind": "student", "model": "lenet", "alpha": 0.0, "regime": r, "teacher_model": None,
                         "teacher_regime": None, "dataset": "d", "seed": seed, "accuracy": acc + 0.003 * seed})
    return rows


def test_claims_on_a_constructed_store():
    teachers = {"none": 0.80, "flipcrop": 0.90, "cutout": 0.88, "mixup": 0.85, "cutmix": 0.83}
    lenet = {"none": 0.65, "flipcrop": 0.60, "cutout": 0.66, "mixup": 0.62, "cutmix": 0.61}
    results = claims(rows_for(teachers, lenet, alone={"none": 0.60}), "d")
    by = {(r["claim"], r["comparison"]): r for r in results}
    assert by[("C1", "teacher flip+crop − teacher none")]["verdict"] == "reproduced"
    assert by[("C2", "LeNet ← flip+crop − LeNet ← none")]["verdict"] == "reproduced"
    assert by[("C2", "LeNet ← flip+crop + Cutout − LeNet ← none")]["verdict"] == "contradicted"
    assert by[("C3", "AlexNet ← flip+crop + Mixup − AlexNet ← none")]["verdict"] == "not tested"
    assert by[("C2", "LeNet ← flip+crop − LeNet ← none")]["mean"] == pytest.approx(-0.05)
    summary = claim_summary(results)
    assert summary["C1"]["verdict"] == "reproduced" and summary["C3"]["verdict"] == "not tested"
    assert summary["C2"]["verdict"] == "mixed"  # three reproduced, one contradicted
    assert summary["C8"]["verdict"] == "not tested"  # no human labels
    assert summary["C2"]["agree"] == 3 and summary["C2"]["measured"] == 4


def test_a_failed_precondition_withholds_the_verdict():
    # the Cutout teacher is worse than the plain one: its students' comparison gets no verdict;
    # distillation (0.65) beats the student alone (0.60), so the other comparisons stand
    teachers = {"none": 0.80, "flipcrop": 0.90, "cutout": 0.70, "mixup": 0.85, "cutmix": 0.83}
    lenet = {"none": 0.65, "flipcrop": 0.60, "cutout": 0.61, "mixup": 0.62, "cutmix": 0.61}
    rows = rows_for(teachers, lenet, alone={"none": 0.60})
    pre = preconditions(rows, "d")
    assert pre["T:cutout"]["holds"] is False and pre["T:flipcrop"]["holds"] is True
    assert pre["K:lenet"]["holds"] is True and pre["G:lenet"]["holds"] is True
    assert pre["K:alexnet"]["holds"] is None and pre["S:alexnet"]["holds"] is None  # not measured
    by = {(r["claim"], r["comparison"]): r for r in claims(rows, "d")}
    gated = by[("C2", "LeNet ← flip+crop + Cutout − LeNet ← none")]
    assert gated["verdict"] == "precondition failed"
    assert gated["failed_preconditions"] == ["the flip+crop + Cutout teacher is at least as accurate as the plain teacher"]
    assert by[("C2", "LeNet ← flip+crop − LeNet ← none")]["verdict"] == "reproduced"
    # distillation that does not help withholds every student claim that rests on it
    rows = rows_for(teachers, lenet, alone={"none": 0.70})
    assert preconditions(rows, "d")["K:lenet"]["holds"] is False
    c2 = [r for r in claims(rows, "d") if r["claim"] == "C2"]
    assert {r["verdict"] for r in c2} == {"precondition failed"}
    assert claim_summary(c2)["C2"]["verdict"] == "precondition failed"


def test_difference_in_differences_on_known_answers():
    """C4: (LeNet[r] <- none - LeNet[r] alone) - (LeNet <- none - LeNet alone), per seed."""
    teachers = {"none": 0.80}
    rows = rows_for(teachers, {"none": 0.65}, alone={"none": 0.60, "mixup": 0.55, "cutmix": 0.50})
    for seed, (mix, cut) in enumerate([(0.62, 0.47), (0.63, 0.46), (0.625, 0.48)]):
        for r, acc in (("mixup", mix), ("cutmix", cut)):
            rows.append({"kind": "student", "model": "lenet", "alpha": 0.5, "regime": r, "teacher_model": "resnet18",
                         "teacher_regime": "none", "dataset": "d", "seed": seed, "accuracy": acc})
    by = {r["comparison"]: r for r in claims(rows, "d") if r["claim"] == "C4"}
    mix = by["(LeNet[flip+crop + Mixup] ← none − LeNet[flip+crop + Mixup] alone) − (LeNet ← none − LeNet alone)"]
    # hand-computed per seed: (mix_s - (0.55 + .003s)) - ((0.65 - .002s) - (0.60 + .003s))
    expected = [(m - (0.55 + 0.003 * s)) - ((0.65 - 0.002 * s) - (0.60 + 0.003 * s))
                for s, m in enumerate((0.62, 0.63, 0.625))]
    assert mix["per_seed"] == pytest.approx(expected)
    assert mix["mean"] == pytest.approx(np.mean(expected))
    # augmenting LeNet with Mixup costs 0.05 alone and nothing distilled: distillation is *not* inhibited
    assert mix["mean"] > 0 and mix["verdict"] == "contradicted"
    cut = by["(LeNet[flip+crop + CutMix] ← none − LeNet[flip+crop + CutMix] alone) − (LeNet ← none − LeNet alone)"]
    assert cut["mean"] == pytest.approx(np.mean([(c - (0.50 + 0.003 * s)) - ((0.65 - 0.002 * s) - (0.60 + 0.003 * s))
                                                  for s, c in enumerate((0.47, 0.46, 0.48))]))
    # per seed -0.080, -0.088, -0.066: the distilled CutMix student loses more than the one alone
    assert cut["mean"] < 0 and cut["verdict"] == "reproduced"


def test_holm_against_hand_computed_values():
    p = [0.01, 0.04, 0.03, math.nan, 0.005]
    # sorted: 0.005*4=0.02, 0.01*3=0.03, 0.03*2=0.06, 0.04*1=0.04 -> monotone: 0.06
    assert holm(p)[4] == pytest.approx(0.02) and holm(p)[0] == pytest.approx(0.03)
    assert holm(p)[2] == pytest.approx(0.06) and holm(p)[1] == pytest.approx(0.06)
    assert math.isnan(holm(p)[3])


def test_paired_p_value_matches_scipy():
    a = {0: 0.71, 1: 0.74, 2: 0.69, 3: 0.73}
    b = {0: 0.70, 1: 0.70, 2: 0.68, 3: 0.70}
    d = paired_difference(a, b)
    assert d["p"] == pytest.approx(stats.ttest_rel(list(a.values()), list(b.values())).pvalue)


@pytest.mark.parametrize("verdicts,expected", [
    (["reproduced", "reproduced"], "reproduced"),
    (["contradicted", "inconclusive"], "partly contradicted"),
    (["reproduced", "inconclusive", "not tested"], "partly reproduced"),
    (["reproduced", "contradicted"], "mixed"),
    (["inconclusive"], "inconclusive"),
    (["precondition failed", "not tested"], "precondition failed"),
    (["not tested"], "not tested"),
])
def test_claim_verdict_combination(verdicts, expected):
    assert combine_verdicts(verdicts) == expected


def test_holm_adjusted_verdict_can_be_weaker_than_the_raw_one():
    diffs = {"flipcrop": [0.02, 0.03, 0.025], "cutout": [0.01, 0.03, 0.02], "mixup": [0.01, 0.02, 0.015],
             "cutmix": [0.02, 0.04, 0.03]}
    rows = rows_for({"none": 0.80}, {})
    for r, d in diffs.items():
        for seed, x in enumerate(d):
            rows.append({"kind": "teacher", "model": "resnet18", "dataset": "d", "regime": r, "seed": seed,
                         "accuracy": 0.80 + 0.001 * seed + x})
    key = {f"teacher {name} − teacher none": r for r, name in REGIME_NAMES.items()}
    c1 = {key[r["comparison"]]: r for r in claims(rows, "d") if r["claim"] == "C1" and not r["supplementary"]}
    raw = {r: stats.ttest_1samp(d, 0).pvalue for r, d in diffs.items()}
    for r in diffs:
        assert c1[r]["p"] == pytest.approx(raw[r])
    # Holm by hand: 0.0131*4 = 0.052, then max(0.052, 0.0131*3), 0.035*2 = 0.070, then max(0.070, 0.074*1)
    order = sorted(diffs, key=raw.get)
    running, expected = 0.0, {}
    for k, r in enumerate(order):
        running = max(running, min(1.0, (4 - k) * raw[r]))
        expected[r] = running
    for r in diffs:
        assert c1[r]["p_holm"] == pytest.approx(expected[r])
    assert [c1[r]["verdict"] for r in ("flipcrop", "mixup", "cutmix")] == ["reproduced"] * 3
    assert c1["cutout"]["verdict"] == "inconclusive"
    assert {c1[r]["verdict_holm"] for r in diffs} == {"inconclusive"}
    summary = claim_summary(list(c1.values()))["C1"]
    assert summary["verdict"] == "partly reproduced" and summary["verdict_holm"] == "inconclusive"


def test_regime_keys_of_canonical_specs():
    assert regime_key("none") == "none"
    assert regime_key("flipcrop(padding=4,flip=True)") == "flipcrop"
    assert regime_key("flipcrop(padding=4,flip=True)+cutmix(beta=1.0,prob=0.5)") == "cutmix"
    assert regime_key("mixup(alpha=1.0)") == "mixup"


def test_paper_tables_are_complete_and_self_consistent():
    t = paper_tables()
    assert {f"table{i}" for i in range(1, 10)} <= set(t)
    for who in ("teacher", "lenet", "alexnet"):
        assert set(t["table1"][who]) == {"none", "flipcrop", "cutout", "mixup", "cutmix"}
    # recall equals accuracy on a balanced test set; Table 9 breaks it for precision/F1 of Mixup/CutMix only
    for r, row in t["table9"]["teacher"].items():
        acc, prec, rec, f1 = row["cifar10"]
        assert rec == pytest.approx(acc, abs=0.002)
    assert t["table9"]["teacher"]["mixup"]["cifar10"][1] == t["table9"]["teacher"]["cutmix"]["cifar10"][0]
    # Table 6's F1 0.474 beside accuracy 0.631 (flip+crop teacher's LeNet): an inconsistency kept as printed
    assert t["table6"]["lenet"]["flipcrop"]["cifar10"][3] == 0.474


def test_partial_store_lists_what_is_missing_and_strict_fails(tmp_path):
    import pytest as _pytest
    from conftest import FASHION
    if not (FASHION / "train-images-idx3-ubyte.gz").is_file():
        _pytest.skip("Fashion-MNIST not installed")
    import papermill

    from kdlib.runs.plan import load_grid, plan
    from kdlib.runs.execute import run_task
    from kdlib.book.notebooks import execute_chapter
    from kdlib.book.fill import missing_runs
    from kdlib.runs.store import RunStore

    store = RunStore(tmp_path / "runs", "smoke")
    run_task({"kind": "teacher", "profile": "smoke", "dataset": "main", "model": "resnet18", "regime": "none"},
             runs=store.root, device="cpu", progress=False)
    gaps = missing_runs(store)
    names = {g["task"] for g in gaps}
    assert "teacher-main-resnet18-none" not in names
    assert len(gaps) == len(plan("smoke", load_grid())) - 1
    assert all(g["command"].startswith("python -m kdlib grid --profile smoke --only ") for g in gaps)
    out = execute_chapter("results", "smoke", runs=store.root, output=tmp_path / "results.ipynb")
    text = out.read_text()
    assert "runs of" in text and "tasks are missing" in text and "students-main-noteacher-to-none" in text
    with _pytest.raises(papermill.PapermillExecutionError, match="unfinished runs"):
        from kdlib.book.notebooks import NOTEBOOKS, execute
        execute(NOTEBOOKS / "results.py", tmp_path / "strict.ipynb",
                {"profile": "smoke", "runs": str(store.root), "strict": True})


def test_live_explorer_hover_shows_the_point():
    import numpy as np
    import pytest as _pytest
    _pytest.importorskip("anywidget")
    from kdlib.book.explorer import live_explorer

    rng = np.random.default_rng(0)
    labels = np.arange(40) % 4
    images = rng.integers(0, 255, size=(40, 8, 8, 1), dtype=np.uint8)
    probs = np.full((40, 4), 0.25)
    probs[:, 0] = 0.7
    probs[:, 1:] = 0.1
    box = live_explorer({"m": {"probs": probs}}, images, labels, ["a", "b", "c", "d"],
                        {"m": rng.normal(size=(40, 5))}, hover=True)
    fig = box.children[2].children[0]
    info = box.children[2].children[1]

    class Points:
        point_inds = [0]

    trace = fig.data[1]
    for cb in trace._click_callbacks:  # what plotly calls when the point is clicked
        cb(trace, Points, None)
    i = int(trace.customdata[0])
    assert f"label: {['a', 'b', 'c', 'd'][labels[i]]}" in info.value and "a 0.70" in info.value


def _write_run(store, cfg, accuracy):
    """A finished run folder with the files collect() reads (metrics, history, provenance)."""
    run = store.run(cfg)
    store.prepare(run)
    emb = {"cohesion": 0.5, "adhesion": 0.0, "discrimination": 0.1, "dim": 8}
    run.write_json("metrics.json", {"test": {"accuracy": accuracy, "n": 2000, "precision": accuracy,
                                             "recall": accuracy, "f1": accuracy, "nll": 1.0, "ece": 0.1,
                                             "discrimination_embedding": emb, "discrimination_logits": emb}})
    run.write_history([{"epoch": 1, "loss": 2.0}, {"epoch": 2, "loss": 1.0}])
    run.write_json("provenance.json", {"device_name": "test"})
    # every artifact a finished run of its kind needs (a DONE without them is not a finished run)
    run.write_arrays("predictions.npz", test_probs=np.full((2, 10), 0.1, np.float32))
    run.write_arrays("checkpoint.pt", epoch=np.int64(2))  # a zip container, as torch.save writes
    if cfg["kind"] == "teacher":
        run.write_arrays("train_logits.npz", logits=np.zeros((2, 10), np.float32))
    run.mark_done()
    return run


def test_chapters_read_only_the_runs_of_the_current_plan(tmp_path):
    """A one-off T=4 student (the README's re-run example) sits in the store but never in a table."""
    from kdlib.runs.plan import load_grid, student_groups, teacher_configs
    from kdlib.book.rows import collect
    from kdlib.runs.store import RunStore

    grid = load_grid()
    store = RunStore(tmp_path, "smoke", results=None)
    acc = {"none": 0.80, "flipcrop": 0.85}
    for regime, a in acc.items():
        for seed in (0,):
            _write_run(store, teacher_configs(grid, "smoke", "main", "resnet18", regime, seeds=[seed])[0], a)
            _, group = student_groups(grid, "smoke", "main", "resnet18", regime, ["lenet"], "none", 20.0, 0.5,
                                      seeds=[seed])[0]
            _write_run(store, group[0], 0.70 if regime == "none" else 0.60)
    before = collect(store, grid)
    verdicts_before = [(r["comparison"], r["verdict"], r["mean"]) for r in claims(before, before[0]["dataset"])]
    _, t4 = student_groups(grid, "smoke", "main", "resnet18", "flipcrop", ["lenet"], "none", 4.0, 0.5, seeds=[0])[0]
    _write_run(store, t4[0], 0.99)
    assert len(store.runs("student")) == 3  # the T=4 run is in the store ...
    after = collect(store, grid)
    assert len(after) == len(before) == 4  # ... and not in the tables
    assert [(r["comparison"], r["verdict"], r["mean"]) for r in claims(after, after[0]["dataset"])] == verdicts_before
    assert len(collect(store, grid, plan_only=False)) == 5


def test_failed_runs_are_left_out_of_means_and_listed(tmp_path):
    from kdlib.runs.plan import load_grid, teacher_configs
    from kdlib.book.rows import collect
    from kdlib.runs.store import RunStore

    grid = load_grid()
    store = RunStore(tmp_path, "smoke", results=None)
    _write_run(store, teacher_configs(grid, "smoke", "main", "resnet18", "none", seeds=[0])[0], 0.80)
    _write_run(store, teacher_configs(grid, "smoke", "main", "resnet18", "flipcrop+cutout", seeds=[0])[0], 0.101)
    rows = collect(store, grid, include_failed=False)  # the rule of every real profile (quick, paper)
    assert [r["regime"] for r in rows] == ["none"]
    assert grid["profiles"]["quick"].get("failed_runs", "exclude") == "exclude"
    assert grid["profiles"]["paper"].get("failed_runs", "exclude") == "exclude"
    assert len(collect(store, grid)) == 2  # smoke keeps its (flagged) failures: it tests code paths
    everything = collect(store, grid, include_failed=True)
    failed = [r for r in everything if r["failed"]]
    assert len(failed) == 1 and "at chance" in failed[0]["failure"]


def test_an_alexnet_student_weaker_than_lenet_withholds_c3():
    teachers = {"none": 0.80, "flipcrop": 0.90, "cutout": 0.88, "mixup": 0.85, "cutmix": 0.83}
    rows = rows_for(teachers, {"none": 0.70}, alone={"none": 0.60})
    for seed in (0, 1, 2):
        for r, acc in (("none", 0.55), ("flipcrop", 0.50), ("mixup", 0.40)):
            rows.append({"kind": "student", "model": "alexnet", "alpha": 0.5, "regime": "none",
                         "teacher_model": "resnet18", "teacher_regime": r, "dataset": "d", "seed": seed,
                         "accuracy": acc + 0.01 * seed})
    pre = preconditions(rows, "d")
    assert pre["S:alexnet"]["holds"] is False  # 0.55 vs LeNet 0.70
    c3 = [r for r in claims(rows, "d") if r["claim"] == "C3" and r["n"]]
    assert c3 and {r["verdict"] for r in c3} == {"precondition failed"}
    assert all(any("premise of §4.2" in f for f in r["failed_preconditions"]) for r in c3)


def test_mnist_teachers_weaker_than_lenet_alone_withhold_c10():
    rows = []
    for seed in (0, 1):
        for r, acc, nll in (("none", 0.70, 0.5), ("mixup", 0.72, 0.7), ("cutmix", 0.71, 0.8)):
            rows.append({"kind": "teacher", "model": "alexnet", "dataset": "m", "regime": r, "seed": seed,
                         "accuracy": acc})
            rows.append({"kind": "student", "model": "lenet", "alpha": 0.5, "regime": "none", "teacher_model": "alexnet",
                         "teacher_regime": r, "dataset": "m", "seed": seed, "accuracy": 0.7, "nll": nll + 0.01 * seed})
        rows.append({"kind": "student", "model": "lenet", "alpha": 0.0, "regime": "none", "teacher_model": None,
                     "teacher_regime": None, "dataset": "m", "seed": seed, "accuracy": 0.75})
    pre = preconditions(rows, "d", "m")
    assert pre["G:mnist"]["holds"] is False and "0.7000 vs LeNet alone 0.7500" in pre["G:mnist"]["evidence"]
    c10 = [r for r in claims(rows, "d", "m") if r["claim"] == "C10"]
    assert len(c10) == 2 and {r["verdict"] for r in c10} == {"precondition failed"}
    for r in rows:  # a weak LeNet alone: the same comparisons are judged (NLL higher by 0.2 and 0.3: reproduced)
        if r["alpha"] == 0.0 if "alpha" in r else False:
            r["accuracy"] = 0.60
    assert preconditions(rows, "d", "m")["G:mnist"]["holds"] is True
    assert {r["verdict"] for r in claims(rows, "d", "m") if r["claim"] == "C10"} == {"reproduced"}


def test_the_headline_verdict_is_holms_and_needs_three_seeds_everywhere():
    from kdlib.book.claims import headline

    base = {"verdict": "reproduced", "verdict_holm": "partly reproduced", "agree": 4, "measured": 4, "untested": 0}
    # three seeds behind every comparison: the Holm-adjusted verdict, not the raw one
    assert headline({**base, "seeds_min": 3, "seeds_max": 5, "seeds": "3–5 seeds"}) == "partly reproduced"
    # fewer anywhere: never 'reproduced' or 'contradicted', only the seeds and the leaning
    two = {**base, "seeds_min": 2, "seeds_max": 2, "seeds": "2 seeds"}
    assert headline(two) == "2 seeds: leaning the paper's way (4 of 4)"
    assert headline({**two, "agree": 3}) == "2 seeds: leaning the paper's way in 3 of 4"
    assert headline({**two, "agree": 0, "verdict_holm": "contradicted"}) == "2 seeds: leaning against the paper (0 of 4 the paper's way)"
    # a comparison not run at all also keeps the verdict off the headline
    assert headline({**base, "seeds_min": 3, "seeds_max": 3, "seeds": "3 seeds, 1 comparison not run",
                     "untested": 1}).startswith("3 seeds, 1 comparison not run: leaning")
    assert headline({**base, "verdict_holm": "not tested", "measured": 0, "seeds_min": 0, "seeds_max": 0,
                     "seeds": "no seed"}) == "not tested"


def test_c1_shows_each_mixers_own_part_against_the_flipcrop_teacher_outside_its_verdict():
    teachers = {"none": 0.80, "flipcrop": 0.90, "cutout": 0.91, "mixup": 0.88, "cutmix": 0.90}
    rows = []
    for seed in range(3):
        for r, acc in teachers.items():
            rows.append({"kind": "teacher", "model": "resnet18", "dataset": "d", "regime": r, "seed": seed,
                         "accuracy": acc + 0.002 * seed * (r == "mixup")})
    c1 = [r for r in claims(rows, "d") if r["claim"] == "C1"]
    own = {r["comparison"]: r for r in c1 if r["supplementary"]}
    assert set(own) == {f"teacher flip+crop + {m} − teacher flip+crop" for m in ("Cutout", "Mixup", "CutMix")}
    # Mixup: 0.88 + 0.002 s - 0.90 for s = 0, 1, 2, mean -0.018 (by hand)
    assert own["teacher flip+crop + Mixup − teacher flip+crop"]["mean"] == pytest.approx(-0.018)
    # every comparison against the plain teacher is reproduced, and the mixers' parts take no part in it
    summary = claim_summary(c1)["C1"]
    assert summary["verdict"] == "reproduced" and summary["measured"] == 4


def test_the_no_teacher_table_restates_table_1b_and_ignores_other_teachers():
    """Part II's bug: the E3 students of the AlexNet teacher (same dataset) were averaged into the 'distilled
    from the plain teacher' cell. The reference cell must be exactly Table 1b's 'none' cell."""
    from kdlib.book.claims import reference_runs, table1_runs

    rows = []
    for seed, (resnet_student, alexnet_student) in enumerate([(0.76, 0.60), (0.77, 0.62)]):
        rows += [{"id": f"r{seed}", "kind": "student", "model": "lenet", "alpha": 0.5, "regime": "none",
                  "teacher_model": "resnet18", "teacher_regime": "none", "dataset": "d", "seed": seed,
                  "accuracy": resnet_student},
                 {"id": f"a{seed}", "kind": "student", "model": "lenet", "alpha": 0.5, "regime": "none",
                  "teacher_model": "alexnet", "teacher_regime": "none", "dataset": "d", "seed": seed,
                  "accuracy": alexnet_student},
                 {"id": f"z{seed}", "kind": "student", "model": "lenet", "alpha": 0.0, "regime": "none",
                  "teacher_model": None, "teacher_regime": None, "dataset": "d", "seed": seed, "accuracy": 0.7}]
    cell = next(c for c in reference_runs(rows, "d") if c["model"] == "lenet" and c["regime"] == "none")
    assert [r["id"] for r in cell["distilled"]] == [r["id"] for r in table1_runs(rows, "d")["lenet"]["none"]] \
        == ["r0", "r1"]
    assert fmt_ci(r["accuracy"] for r in cell["distilled"]).startswith("0.765")  # (0.76 + 0.77) / 2
    assert [r["id"] for r in cell["alone"]] == ["z0", "z1"]
