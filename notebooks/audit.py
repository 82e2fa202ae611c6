# ---
# jupyter:
#   jupytext:
#     formats: py:percent
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

from kdlib.results import REGIMES, paper_tables

t = paper_tables()

# %% [markdown]
# ## Table 9: precision and F1 swapped between the Mixup and CutMix teachers
#
# On a balanced test set macro recall equals accuracy, and macro precision and F1 stay close to
# them. The Mixup row prints precision 0.954 and F1 0.953 beside accuracy 0.867; the CutMix row
# prints 0.869 and 0.868 beside 0.954: each row carries the other's precision and F1.

# %% tags=["hide-input"]
rows = []
for r in REGIMES:
    acc, prec, rec, f1 = t["table9"]["teacher"][r]["cifar10"]
    rows.append({"teacher": r, "accuracy": acc, "precision": prec, "recall": rec, "F1": f1,
                 "|precision - accuracy|": round(abs(prec - acc), 3), "|F1 - accuracy|": round(abs(f1 - acc), 3)})
table9 = pd.DataFrame(rows)
swap = abs(t["table9"]["teacher"]["mixup"]["cifar10"][1] - t["table9"]["teacher"]["cutmix"]["cifar10"][0])
glue("t9_swap_gap", f"{swap:.3f}", display=False)
table9.style.hide(axis="index")

# %% [markdown]
# Mixup's printed precision differs from CutMix's printed accuracy by {glue:text}`t9_swap_gap`.
#
# ## Table 6: an F1 of 0.474 beside an accuracy of 0.631

# %% tags=["hide-input"]
acc, prec, rec, f1 = t["table6"]["lenet"]["flipcrop"]["cifar10"]
harmonic = 2 * prec * rec / (prec + rec)
glue("t6_f1", f"{f1:.3f}", display=False)
glue("t6_hm", f"{harmonic:.3f}", display=False)

# %% [markdown]
# For the LeNet student of the flip+crop teacher the paper prints precision and recall of about
# 0.63 and F1 {glue:text}`t6_f1`. Macro F1 averages per-class harmonic means and cannot fall that
# far below both averages on a 10-class balanced set; the harmonic mean of the printed macro
# precision and recall is {glue:text}`t6_hm`. A typo or a per-batch average (the public code
# averaged weighted F1 over batches) are the likely causes.
#
# ## Tables 2 and 9 give different CINIC-10 numbers

# %% tags=["hide-input"]
cinic = pd.DataFrame([{"teacher": r, "Table 2 accuracy": t["table2"]["teacher"][r],
                       "Table 9 accuracy": t["table9"]["teacher"][r]["cinic"][0],
                       "difference": round(t["table2"]["teacher"][r] - t["table9"]["teacher"][r]["cinic"][0], 3)}
                      for r in REGIMES])
glue("cinic_n_diff", str(int((cinic.difference != 0).sum())), display=False)
cinic.style.hide(axis="index")

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
t5.style.hide(axis="index")

# %% [markdown]
# D·√10 matches cohesion − adhesion to rounding for four teachers (the Mixup row is off by 0.029,
# probably a transcription slip), and D·√512 never does: the table was computed with d = 10, on
# the logits or probabilities, not the 512-d features. Our Table 5 (previous chapter) reports both.
#
# ## What the public code does differently
#
# From the paper's repository (`hmassa48/Distilling-with-VRM`, see `../shared/notes/kd-conventions.md`):
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
# | students and augmentation | the student's augmentation sits in `if False:`; teacher and student see the same clean batch | the same, for E2; E4/E5 augment students on purpose, and the teacher then runs on the augmented batch |
