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
# What the runs of both parts say about each claim of the paper, written from the data at build
# time: the verdicts, which way the point estimates lean, which preconditions failed, and how many
# seeds each undecided comparison would need.

# %% tags=["parameters", "hide-input"]
profile = "paper"  # Part I's profile
profile2 = "quick"  # Part II's profile
runs = None

# %% tags=["hide-input"]
import pandas as pd
from IPython.display import Markdown, display

from kdlib.grid import load_grid, resolve_dataset
from kdlib.report import DATASET_NAMES, PARTS
from kdlib.results import claim_summary, claims, collect, preconditions, seeds_needed
from kdlib.runs import RunStore

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




lines = []
for part, P in parts.items():
    name = DATASET_NAMES.get(P["dataset"], P["dataset"])
    n_seeds = len(P["seeds"])
    lines.append(f"### {PARTS[part]} ({name}, profile `{P['profile']}`, {n_seeds} seed{'s' if n_seeds != 1 else ''})")
    failed_pre = [v["statement"] for v in P["pre"].values() if v["holds"] is False]
    if failed_pre:
        lines.append("Preconditions that fail here, so the claims resting on them get no verdict: "
                     + "; ".join(failed_pre) + ".")
    for cid, s in P["summary"].items():
        lean = (f"; the point estimates lean the paper's way in {s['agree']} of {s['measured']} comparisons"
                if s["measured"] else "")
        holm = "" if s["verdict_holm"] == s["verdict"] else f" ({s['verdict_holm']} after Holm's adjustment)"
        lines.append(f"- **{cid}** ({s['source']}): {s['statement']} — **{s['verdict']}**{holm}{lean}.")
    lines.append("")
display(Markdown("\n".join(lines)))

# %% [markdown]
# ## What more seeds would settle
#
# For every comparison measured on two seeds or more and still undecided: the number of seeds a
# paired 95% interval would need to exclude zero if its mean and spread stayed as measured
# (a rough guide; the spread of two or three seeds is itself uncertain).

# %% tags=["hide-input"]
need = []
for part, P in parts.items():
    for r in P["results"]:
        if r["verdict"] == "inconclusive" and r["n"] >= 2:
            n = seeds_needed(r["per_seed"])
            need.append({"part": part, "claim": r["claim"], "comparison": r["comparison"], "seeds now": r["n"],
                         "mean difference": f"{r['mean']:+.3f}", "seeds needed": n if n is not None else "-"})
if need:
    display(pd.DataFrame(need).style.hide(axis="index"))
else:
    display(Markdown("No comparison is measured on two seeds or more and undecided."))

# %% [markdown]
# ## Where the parts agree
#
# A claim supported in both parts rests on two datasets and scales; one that holds only on the
# laptop profile says little about CIFAR-10 until Part I has the seeds.

# %% tags=["hide-input"]
both = []
for cid in parts["I"]["summary"]:
    a, b = parts["I"]["summary"][cid], parts["II"]["summary"].get(cid)
    if b is None:
        continue
    both.append({"claim": cid, "statement": a["statement"], "Part I": a["verdict"],
                 "Part I leaning": f"{a['agree']} of {a['measured']}" if a["measured"] else "-",
                 "Part II": b["verdict"], "Part II leaning": f"{b['agree']} of {b['measured']}" if b["measured"] else "-"})
pd.DataFrame(both).style.hide(axis="index")
