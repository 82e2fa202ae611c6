# ---
# jupyter:
#   jupytext:
#     formats: py:percent
#     notebook_metadata_filter: -jupytext.text_representation.jupytext_version,-jupytext.text_representation.format_version
#     text_representation:
#       extension: .py
#       format_name: percent
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # Audit of the paper
#
# Inconsistencies inside the paper's own tables, found by arithmetic on the transcribed values
# (`book/paper_tables.yaml`), and what its public code does differently from what it describes.

# %% tags=["parameters", "hide-input"]
profile = "quick"
runs = None

# %% tags=["hide-input"]
import math

import pandas as pd
from IPython.display import Markdown, display
from myst_nb import glue

from kdlib.book.rows import PAPER_REGIMES, paper_tables

t = paper_tables()

# %% [markdown]
# ## Table 9: precision and F1 swapped between the Mixup and CutMix teachers
#
# On a balanced test set macro recall equals accuracy, and macro precision and F1 stay close to
# them. The Mixup row prints precision 0.954 and F1 0.953 beside accuracy 0.867; the CutMix row
# prints 0.869 and 0.868 beside 0.954: each row carries the other's precision and F1.

# %% tags=["hide-input"]
rows = []
for r in PAPER_REGIMES:
    acc, prec, rec, f1 = t["table9"]["teacher"][r]["cifar10"]
    rows.append({"teacher": r, "accuracy": acc, "precision": prec, "recall": rec, "F1": f1,
                 "|precision - accuracy|": round(abs(prec - acc), 3), "|F1 - accuracy|": round(abs(f1 - acc), 3)})
table9 = pd.DataFrame(rows)
swap = abs(t["table9"]["teacher"]["mixup"]["cifar10"][1] - t["table9"]["teacher"]["cutmix"]["cifar10"][0])
glue("t9_swap_gap", f"{swap:.3f}", display=False)
table9.style.format(precision=3).hide(axis="index")

# %% [markdown]
# Mixup's printed precision differs from CutMix's printed accuracy by {glue:text}`t9_swap_gap`.
#
# ## Tables 6–9: impossible F1 scores (macro F1 can never exceed (precision + recall) / 2)
#
# Each class's F1 is the harmonic mean of its precision and recall, which never exceeds their
# arithmetic mean; averaging over classes keeps the inequality, so macro F1 ≤ (macro P + macro R)/2
# for any classifier. Allowing for the printed rounding (±0.0005 on each value), these rows of the
# paper break it (`kdlib.book.audit.f1_bound_violations`):

# %% tags=["hide-input"]
from kdlib.book.audit import f1_bound_violations, recall_accuracy_violations

bad_f1 = pd.DataFrame(f1_bound_violations(t))
glue("n_f1_bad", str(len(bad_f1)), display=False)
mix = bad_f1[(bad_f1.table == "table9") & (bad_f1.regime == "mixup")].iloc[0]
glue("mixup_f1", f"{mix['F1']:.3f}", display=False)
glue("mixup_bound", f"{mix['bound (P+R)/2']:.3f}", display=False)
bad_f1.style.format(precision=3).hide(axis="index")

# %% [markdown]
# {glue:text}`n_f1_bad` rows are impossible as printed: the Mixup teacher's F1 of
# {glue:text}`mixup_f1` (Table 9) exceeds its bound of {glue:text}`mixup_bound` (consistent with
# the precision/F1 swap above), and the flip+crop and Cutout teachers' CINIC-10 rows of Table 9 do too.
#
# The lower side has no such bound: macro F1 may fall far below both averages when some classes
# have a small precision and others a small recall. So Table 6's F1 of 0.474 for the LeNet student
# of the flip+crop teacher (precision 0.632, recall 0.631) is not impossible, only implausible next
# to its neighbours (every other row has F1 within 0.02 of accuracy); a typo or the public code's
# per-batch averaging of weighted F1 may explain it.
#
# ## Tables 6–9: macro recall must equal accuracy on a balanced test set
#
# CIFAR-10's test set and CINIC-10's ImageNet part hold the same number of images per class, so
# macro recall equals accuracy exactly. Rows where they differ beyond rounding:

# %% tags=["hide-input"]
bad_rec = pd.DataFrame(recall_accuracy_violations(t))
glue("n_rec_bad", str(len(bad_rec)), display=False)
bad_rec.style.format(precision=3).hide(axis="index")

# %% [markdown]
# Table 9's CutMix teacher on CINIC-10 prints accuracy 0.710 and recall 0.720, and that row
# appears nowhere else in the text: Table 2 gives the same teacher 0.716.
#
# ## Table 1 against §5: the CutMix teacher is the worse calibrated one
#
# §5 concludes that the interpolative techniques (Mixup, CutMix) give better-calibrated teachers.
# Table 1's own ECE column says so for Mixup only:

# %% tags=["hide-input"]
ece = {r: t["table1"]["teacher"][r]["ece"] for r in PAPER_REGIMES}
glue("t1_ece_none", f"{ece['none']:.3f}", display=False)
glue("t1_ece_mixup", f"{ece['mixup']:.3f}", display=False)
glue("t1_ece_cutmix", f"{ece['cutmix']:.3f}", display=False)
pd.DataFrame([{"teacher": r, "ECE (Table 1)": ece[r], "against the plain teacher": round(ece[r] - ece["none"], 3)}
              for r in PAPER_REGIMES]).style.format(precision=3).hide(axis="index")

# %% [markdown]
# The CutMix teacher's ECE of {glue:text}`t1_ece_cutmix` is *above* the plain teacher's
# {glue:text}`t1_ece_none` (a lower ECE is better calibrated); only the Mixup teacher's
# ({glue:text}`t1_ece_mixup`) is below it. The paper's claim C9 rests on its reliability diagrams
# (Figs. 5, 7), which its own table contradicts for CutMix; our test of C9 is in each part's results.
#
# ## Tables 2 and 9 give different CINIC-10 numbers

# %% tags=["hide-input"]
cinic = pd.DataFrame([{"teacher": r, "Table 2 accuracy": t["table2"]["teacher"][r],
                       "Table 9 accuracy": t["table9"]["teacher"][r]["cinic"][0],
                       "difference": round(t["table2"]["teacher"][r] - t["table9"]["teacher"][r]["cinic"][0], 3)}
                      for r in PAPER_REGIMES])
glue("cinic_n_diff", str(int((cinic.difference != 0).sum())), display=False)
cinic.style.format(precision=3).hide(axis="index")

# %% [markdown]
# {glue:text}`cinic_n_diff` of the five teachers get a different CINIC-10 accuracy in the two tables.
#
# ## Table 5 was computed on 10-d outputs
#
# The paper defines D = (cohesion − adhesion)/√d on penultimate features (d = 512 for ResNet-18).

# %% tags=["hide-input"]
t5 = pd.DataFrame([{"teacher": r, **t["table5"]["teacher"][r],
                    "cohesion - adhesion": round(v["cohesion"] - v["adhesion"], 3),
                    "D x sqrt(10)": round(v["discrimination"] * math.sqrt(10), 3),
                    "D x sqrt(512)": round(v["discrimination"] * math.sqrt(512), 3)}
                   for r, v in t["table5"]["teacher"].items()])
t5.style.format(precision=3).hide(axis="index")

# %% [markdown]
# D·√10 matches cohesion − adhesion to rounding for four teachers (the Mixup row is off by 0.029,
# probably a transcription slip), and D·√512 never does: the table was computed with d = 10, on
# the logits or probabilities, not the 512-d features. Our Table 5 (each part's chapter "Explaining the dichotomy") reports both.
#
# ## What the text says against what the tables and the code do
#
# | where | the paper says | what holds |
# | --- | --- | --- |
# | §3.4, class discrimination | "cohesion and adhesion ... as *inter*- and *intra*-class similarities, respectively" | the reverse: cohesion is the intra-class similarity, adhesion the inter-class one (as its own next sentence and formula use them) |
# | §3.4, cohesion formula | $C = \frac{1}{N_C(N_C-1)}\sum_{i<j} S(d_i, d_j)$ | a sum over the $N_C(N_C-1)/2$ pairs $i<j$ divided by $N_C(N_C-1)$ is at most 1/2; Table 5 prints cohesion 0.917 (CutMix), so the table used the mean over pairs (what kdlib's `class_discrimination` computes) |
# | §3.2, the KD loss | $\alpha\tau^2 D_{KL}(f_S^\tau, f_T^\tau)$, i.e. KL(student ‖ teacher) | Hinton's loss and the paper's own code use KL(teacher ‖ student) (`KLDivLoss(log_softmax(s/T), softmax(t/T))`) |
# | §3.4, KL to human labels | "nothing but the cross-entropy loss between the model predictions and human labels" | KL(p_f ‖ p_h) as written is not a cross-entropy; KL(h ‖ f) = H(h, f) − H(h) differs from the cross-entropy by the humans' entropy, constant per image; and KL(f ‖ h) is infinite wherever humans give a class zero mass (80.6% of CIFAR-10H's entries), so we report KL(human ‖ model) |
# | §4.4, "no matter the set up, data augmentation techniques hurt the performance of the student models" | — | Table 7's Mixup-trained LeNet student on CINIC-10 (0.457) beats the plain one (0.456); and on MNIST (Table 3) the most accurate LeNet student is the Mixup teacher's (0.9886 vs 0.9868) |

# %% tags=["hide-input"]
t3 = t["table3"]["lenet"]
t7 = t["table7"]["lenet"]
glue("t3_best", max(t3, key=lambda r: t3[r]["accuracy"]), display=False)
glue("t7_mixup_cinic", f"{t7['mixup']['cinic'][0]:.3f}", display=False)
glue("t7_none_cinic", f"{t7['none']['cinic'][0]:.3f}", display=False)

# %% [markdown]
# Read from the transcribed tables: the most accurate MNIST LeNet student is the
# {glue:text}`t3_best` teacher's; Table 7's Mixup student reaches {glue:text}`t7_mixup_cinic` on
# CINIC-10 against {glue:text}`t7_none_cinic` for the plain one.
#
# ## What the public code does differently
#
# From the paper's repository (`hmassa48/Distilling-with-VRM`; our conventions are in the README and the Methods chapter):
#
# | where | what the code does | what we do |
# | --- | --- | --- |
# | KD loss | `KLDivLoss()` with `reduction='mean'` divides by batch × classes: the soft term is 10× smaller than Hinton's `batchmean` | `batchmean`, α on the soft term, T² kept |
# | CutMix | gated on `cutmix_prob < 1.0`, so with 0.5 it mixes *every* batch | a coin per batch with p = 0.5 |
# | GPU checkpoint loading | the CUDA branch never calls `load_state_dict`: a teacher loaded on GPU stays random | `torch.load(weights_only=True)` + strict `load_state_dict` |
# | AlexNet | a later commit hard-codes the MNIST FC input (2304), which crashes on 32×32 | FC input sized from `image_size` |
# | Cutout / no-augmentation teacher | one transform object for train and test: Cutout also at test time | augmentation only in the training stream |
# | precision / recall / F1 | sklearn `average="weighted"` per batch, then averaged | macro, over the whole test set |
# | ECE | 10 bins | 15 bins (10 also stored) |
# | KL to CIFAR-10H | class-averaged, with human-argmax and predicted-argmax denominators | per image KL(human ‖ model); class-averaged with ground-truth denominators, labelled |
# | seeding | `torch.manual_seed(2)` only; mixup λ, CutMix box and Cutout from unseeded numpy | every random draw from seeded `torch.Generator`s, state checkpointed |
# | checkpoint selection | best epoch on the test set | last epoch |
# | flip+crop padding | `RandomCrop(32, padding=4)` before `Normalize`: the border is black | black, as torchvision (`fill=black`, the default: the border is −mean/std once normalised; tested equal to torchvision's transforms), except the `paper` profile, whose committed CIFAR-10 seeds were trained with the dataset mean (`flipcrop_fill: mean`, written into their configs as `fill=mean`) and keep it until they are re-run |
# | test loss (NLL) | cross-entropy as computed by PyTorch | the true class's probability floored at 1e-12 (a mistake costs at most 27.6 nats) |
# | students and augmentation | the student's augmentation sits in `if False:`; teacher and student see the same clean batch | the same, for E2; E4/E5 augment students on purpose, and the teacher then runs on the augmented batch |
