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
# # Conclusion
#
# What the runs of both parts show, written from the data at build time: per part, the teachers'
# and the students' accuracies by teacher regime, how sure the claims are (the seeds behind each
# and their intervals), and how many seeds would settle each open claim. A claim's headline verdict
# needs every one of its comparisons on at least three seeds (see *Which of the paper's claims
# hold?*); the words "harmless" and "lose" below appear only where every number they summarise
# agrees with them (a student within one point of the plain teacher's student, or more than one
# point below it).

# %% tags=["parameters", "hide-input"]
profile = "paper"  # Part I's profile
profile2 = "quick"  # Part II's profile
runs = None

# %% tags=["hide-input"]
import math

import pandas as pd
from IPython.display import Markdown, display
from myst_nb import glue

from kdlib.book.findings import certainty_sentence, mixed_penalty, seeds_to_settle, student_sentences, teacher_sentence
from kdlib.runs.plan import load_grid, resolve_dataset
from kdlib.book.names import DATASET_NAMES, MODEL_NAMES, PARTS, REGIME_NAMES
from kdlib.book.claims import MIN_SEEDS, claim_summary, claims, preconditions, seeds_needed
from kdlib.book.rows import collect
from kdlib.runs.store import RunStore

grid = load_grid()
parts = {}
for part, prof in (("I", profile), ("II", profile2)):
    store = RunStore(runs, prof)
    rows = collect(store, grid)
    main = resolve_dataset(grid, prof, "main")["name"]
    mnist = resolve_dataset(grid, prof, "mnist")["name"]
    res = claims(rows, main, mnist)
    parts[part] = {"profile": prof, "rows": rows, "dataset": main, "results": res, "summary": claim_summary(res),
                   "pre": preconditions(rows, main, mnist), "seeds": sorted({r["seed"] for r in rows})}


def ci(d):
    if not d["n"]:
        return "not measured"
    if d["n"] < 2:
        return f"{d['mean']:+.3f} (1 seed, no interval)"
    return f"{d['mean']:+.3f} [{d['low']:+.3f}, {d['high']:+.3f}] over {d['n']} seeds"


lines = []
for part, P in parts.items():
    name = DATASET_NAMES.get(P["dataset"], P["dataset"])
    lines.append(f"### {PARTS[part]} ({name}, profile `{P['profile']}`, seeds {P['seeds'] or 'none yet'})")
    if not P["rows"]:
        lines += ["No run is finished.", ""]
        continue
    lines.append(teacher_sentence(P["rows"], P["dataset"]))
    lines += student_sentences(P["rows"], P["dataset"])
    pen = []
    for model in ("lenet", "alexnet"):
        for r, d in mixed_penalty(P["rows"], P["dataset"], model).items():
            if d["n"]:
                pen.append(f"{MODEL_NAMES[model]} ← {REGIME_NAMES[r]} {ci(d)}")
    if pen:
        lines.append("The mixed-sample teachers' students against the plain teacher's, paired by seed (mean "
                     "[95% interval]): " + "; ".join(pen) + ".")
    lines.append(certainty_sentence(P["summary"], MIN_SEEDS))
    failed_pre = [v["statement"] for v in P["pre"].values() if v["holds"] is False]
    if failed_pre:
        lines.append("Preconditions that fail here, so the claims resting on them get no verdict: "
                     + "; ".join(failed_pre) + ".")
    lines.append("")
text = "\n\n".join(lines)
glue("conclusion_text", Markdown(text), display=False)
display(Markdown(text))

# %% [markdown]
# ## Claim by claim
#
# The headline verdict of each claim in both parts (the Holm-adjusted verdict where every comparison
# has three seeds or more; otherwise the seeds and the leaning of the point estimates), with the
# seeds it rests on and the seeds that would settle it if the means and spreads stayed as measured
# (a rough guide: the spread of two seeds is itself uncertain; "?" where a comparison has one seed,
# "> 50" where an effect this small against its spread would never be decided).

# %% tags=["hide-input"]
def settle_text(x):
    if x is None:
        return "?"
    if x is math.inf:
        return "> 50"
    return str(int(x))


settle = {part: seeds_to_settle(P["results"], MIN_SEEDS) for part, P in parts.items()}
both = []
for cid in parts["I"]["summary"]:
    row = {"claim": cid, "statement": parts["I"]["summary"][cid]["statement"]}
    for part in ("I", "II"):
        s = parts[part]["summary"].get(cid)
        if s is None:
            row.update({f"Part {part}": "-", f"Part {part} seeds": "-", f"Part {part}: seeds to settle": "-"})
            continue
        row[f"Part {part}"] = s["headline"]
        row[f"Part {part} seeds"] = s["seeds"]
        row[f"Part {part}: seeds to settle"] = (settle_text(settle[part][cid]) if cid in settle[part] else
                                                 "settled" if s["measured"] and s["headline"] == s["verdict_holm"]
                                                 else "-")
    both.append(row)
pd.DataFrame(both).style.hide(axis="index")

# %% [markdown]
# ## Every undecided comparison
#
# For every comparison measured on two seeds or more whose Holm-adjusted verdict is still
# inconclusive: the seeds a paired 95% interval would need to exclude zero if its mean and spread
# stayed as measured (never fewer than the three a headline verdict needs).

# %% tags=["hide-input"]
need = []
for part, P in parts.items():
    for r in P["results"]:
        if r.get("verdict_holm", r["verdict"]) == "inconclusive" and r["n"] >= 2 and not r.get("supplementary"):
            n = seeds_needed(r["per_seed"])
            need.append({"part": part, "claim": r["claim"], "comparison": r["comparison"], "seeds now": r["n"],
                         "mean difference": f"{r['mean']:+.3f}",
                         "seeds needed": "-" if n is None else n if isinstance(n, str) else max(MIN_SEEDS, n)})
if need:
    display(pd.DataFrame(need).style.hide(axis="index"))
else:
    display(Markdown("No comparison is measured on two seeds or more and undecided."))
