"""The conclusion's sentences (kdlib.book.findings) say what the numbers say, and no more."""
import math

from kdlib.book.findings import (cell_texts, certainty_sentence, seeds_to_settle, short_findings, student_sentences,
                                 teacher_sentence)


def rows(lenet, seeds=(0, 1), teachers=None):
    teachers = teachers or {"none": 0.84, "flipcrop": 0.90, "cutout": 0.91, "mixup": 0.90, "cutmix": 0.905}
    out = []
    for s in seeds:
        for r, a in teachers.items():
            out.append({"kind": "teacher", "model": "resnet18", "dataset": "d", "regime": r, "seed": s, "accuracy": a})
        for r, a in lenet.items():
            out.append({"kind": "student", "model": "lenet", "alpha": 0.5, "regime": "none", "teacher_model": "resnet18",
                        "teacher_regime": r, "dataset": "d", "seed": s, "accuracy": a})
    return out


def test_the_summary_words_appear_only_where_every_number_agrees():
    hurt = {"none": 0.671, "flipcrop": 0.671, "cutout": 0.674, "mixup": 0.648, "cutmix": 0.657}
    (text,) = student_sentences(rows(hurt), "d")
    assert "none 0.671, flip+crop 0.671, flip+crop + Cutout 0.674, flip+crop + Mixup 0.648" in text
    assert "within 1 point of the plain teacher's (0.0, +0.3)" in text
    assert "lose 2.3 and 1.4 points" in text and "(2 seeds)" in text
    # a Mixup student that gains: no word "lose"; a flip+crop student two points down: no word "within"
    mixed = {**hurt, "mixup": 0.680, "flipcrop": 0.651}
    (text,) = student_sentences(rows(mixed), "d")
    assert "lose" not in text and "within" not in text
    assert "flip+crop + Mixup +0.9" in text and "flip+crop -2.0" in text


def test_the_teachers_gain_and_each_mixers_own_part():
    text = teacher_sentence(rows({"none": 0.6}), "d")
    # 0.90 - 0.84 = +6.0 points; the mixers over flip+crop: 0.91 - 0.90 = +1.0, 0.0, +0.5
    assert "plain ResNet-18 reaches 0.840; flip+crop +6.0, flip+crop + Cutout +7.0" in text
    assert "Cutout +1.0, Mixup 0.0, CutMix +0.5 points (2 seeds)" in text


def test_certainty_and_seeds_to_settle():
    s = {"C1": {"measured": 4, "seeds_min": 2, "seeds_max": 2, "untested": 0},
         "C2": {"measured": 0, "seeds_min": 0, "seeds_max": 0, "untested": 4}}
    text = certainty_sentence(s, 3)
    assert text.startswith("1 of 2 claims are measured, on 2 seeds per comparison") and "t(1)" in text
    assert text.endswith("so no claim is decided.")
    assert certainty_sentence(s, 3, explain=False) == ("1 of 2 claims are measured, on 2 seeds per comparison; "
                                                        "none rests on 3 seeds everywhere, so no claim is decided.")
    res = [{"claim": "C1", "verdict": "reproduced", "verdict_holm": "inconclusive", "n": 2, "per_seed": [0.06, 0.05]},
           {"claim": "C1", "verdict": "inconclusive", "verdict_holm": "inconclusive", "n": 2, "per_seed": [0.01, -0.01]},
           {"claim": "C2", "verdict": "inconclusive", "verdict_holm": "inconclusive", "n": 1, "per_seed": [0.01]},
           {"claim": "C3", "verdict": "reproduced", "verdict_holm": "reproduced", "n": 4, "per_seed": [1, 2, 1, 2]}]
    got = seeds_to_settle(res, 3)
    # C1's second comparison has a zero mean: no number of seeds settles it; C2 has one seed (no spread known)
    assert got == {"C1": math.inf, "C2": None, "C3": 4}


def test_the_front_pages_cells_and_short_line():
    hurt = {"none": 0.671, "flipcrop": 0.671, "cutout": 0.674, "mixup": 0.648, "cutmix": 0.657}
    both = rows(hurt)
    # a third seed of the Mixup student only: its cell rests on 3 seeds, the mean of 0.648, 0.648 and 0.600
    extra = [{**r, "seed": 2, "accuracy": 0.600} for r in both if r["seed"] == 0 and r.get("teacher_regime") == "mixup"]
    cells = cell_texts(both + extra, "d")
    assert cells["teacher_none"] == "0.840 (2)" and cells["lenet_cutout"] == "0.674 (2)"
    assert cells["lenet_mixup"] == "0.632 (3)"
    assert cells["alexnet_none"] == "-"  # no AlexNet student in these rows
    line = short_findings(both, "d")
    # the student sentence's words without its list of accuracies; no AlexNet line without AlexNet students
    assert line == ("LeNet: the standard-augmentation teachers' students are within 1 point of the plain teacher's "
                    "(0.0, +0.3); the mixed-sample teachers' students lose 2.3 and 1.4 points "
                    "(flip+crop + Mixup, flip+crop + CutMix).")
    assert short_findings(rows({"mixup": 0.6}), "d") == "No student of the plain teacher is finished yet."
