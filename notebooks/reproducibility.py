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
# # Reproducibility: hardware, timings and benchmarks
#
# What produced the numbers of this book: the machine, the package versions, the commit, and
# how long each part of the grid took, read from every run's `provenance.json`. The benchmark
# section shows the latest `python -m kdlib bench` results found in the run store
# (`runs/bench/*.json`); `make bench` refreshes them.

# %% tags=["parameters", "hide-input"]
profile = "quick"
runs = None
part = "II"

# %% tags=["hide-input"]
import json
from pathlib import Path

import pandas as pd
from IPython.display import Markdown, display

from kdlib.runs.plan import load_grid, resolve_dataset
from kdlib.book.report import part_header
from kdlib.book.rows import collect
from kdlib.runs.store import RunStore

store = RunStore(runs, profile)
display(Markdown(part_header(part, profile, collect(store, include_failed=True),
                             resolve_dataset(load_grid(), profile, "main")["name"])))
rows = []
for run in store.runs():
    prov = run.read_json("provenance.json")
    cfg = run.config
    rows.append({"kind": cfg["kind"], "model": cfg["model"]["name"], "train s": prov["wall_seconds"]["train"],
                 "total s": prov["wall_seconds"]["total"], "device": prov["device_name"],
                 "torch": prov["versions"]["torch"], "commit": (prov["git_commit"] or "?")[:10],
                 "dirty": prov["git_dirty"], "record": run.record})
df = pd.DataFrame(rows)
if len(df):
    display(Markdown(f"{len(df)} runs of profile `{profile}`; devices {sorted(df.device.unique())}, torch "
                     f"{sorted(df.torch.unique())}, commits {sorted(df.commit.unique())}."))
    display(df.groupby(["device", "kind", "model"])[["train s", "total s"]].agg(["count", "sum", "mean"]).round(1))
else:
    display(Markdown(f"No finished runs in `{store.root / profile}` yet: `python -m kdlib grid --profile {profile}`."))

# %% [markdown]
# Students trained in lockstep share their group's wall time, so a group's seconds appear once
# per student in the table above.
#
# **Commits.** A run's `provenance.json` names the git commit of the copy it ran from and whether
# that copy had uncommitted changes (*dirty*). For the committed records of GPU machines the copy
# was not a clone of this repository, so the commit it names can differ from the code that ran:
# `results/README.md` says, for every batch of records, which commit's code produced them (for the
# second H200 slice: the working tree of `3f6a2f6`, whose copy's git metadata said `5a440f2`).
#
# ## Compute spent, and what the missing runs will cost
#
# Wall time per device, each lockstep group of students counted once, and an estimate for the runs
# still missing that a command can make: each missing teacher at the mean teacher task measured on
# that device, each missing student group at the mean group of the same models.

# %% tags=["hide-input"]
from myst_nb import glue

from kdlib.book.compute import estimate_missing, spent
from kdlib.book.fill import fill_plan

cost = spent(store)
table = [{"device": dev, "kind": kind, "tasks": v["tasks"], "minutes": v["seconds"] / 60}
         for dev, kinds in cost["by_device"].items() for kind, v in kinds.items()]
if table:
    display(pd.DataFrame(table).style.format({"minutes": "{:.1f}"}).hide(axis="index"))
    total = sum(r["minutes"] for r in table)
    main_device = max(cost["by_device"], key=lambda d: sum(v["seconds"] for v in cost["by_device"][d].values()))
    todo = estimate_missing(fill_plan(store, load_grid()), cost, main_device)
    glue_text = (f"{total:.0f} minutes of wall time in all; the {todo['tasks']} missing tasks (teachers and student "
                 f"groups of the paper's experiments that a command can make) would take about "
                 f"{todo['minutes']:.0f} more minutes on {main_device}"
                 + (f" ({todo['unknown']} of them with no measured task of their kind)" if todo["unknown"] else "")
                 + ", at the measured times.")
    display(Markdown(glue_text))
else:
    glue_text = "No finished run records its wall time yet."
    display(Markdown(glue_text))
glue("compute", glue_text, display=False)
#
# ## Benchmarks

# %% tags=["hide-input"]
bench_files = sorted(Path(store.root, "bench").glob("bench-*.json"))
if store.results is not None:  # benchmarks kept with the records (GPU machines)
    bench_files += sorted(Path(store.results, profile, "bench").glob("bench-*.json"))
if not bench_files:
    display(Markdown("No benchmark in the run store yet: run `make bench` (about 2 minutes on a 2-core CPU)."))
for path in bench_files:
    b = json.loads(path.read_text())
    display(Markdown(f"### `{path.name}`: {b['host']['device_name']}, {b['host']['cpus']} CPUs, "
                     f"torch {b['host']['torch']}"))
    if "loader" in b:
        lo = b["loader"]
        best = lo["torchvision"][str(lo["torchvision_best_workers"])]
        table = [{"loader": f"torchvision DataLoader, {w} workers", "images/s": v, "ratio": v / best}
                 for w, v in lo["torchvision"].items()]
        table += [{"loader": f"DeviceLoader {k}", "images/s": v, "ratio": v / best}
                  for k, v in lo["device_loader"].items()]
        display(pd.DataFrame(table).style.format({"images/s": "{:,.0f}", "ratio": "{:.2f}"}).hide(axis="index"))
    if "training" in b:
        tr = b["training"]
        table = [{"model": m, "variant": k, "images/s": r["images_per_s"], "GFLOP/s": r["flop_per_s"] / 1e9,
                  "MFU": r["mfu"]} for m, v in tr["models"].items() for k, r in v["variants"].items()]
        display(pd.DataFrame(table).style.format({"images/s": "{:,.0f}", "GFLOP/s": "{:,.1f}", "MFU": "{:.1%}"},
                                                 na_rep="-").hide(axis="index"))
    if "distillation" in b:
        di = b["distillation"]
        table = [{"students": k, "teacher online img/s": di["online"][k], "cached logits img/s": di["cached"][k]}
                 for k in di["online"]]
        display(pd.DataFrame(table).style.format("{:,.0f}", subset=["teacher online img/s", "cached logits img/s"])
                .hide(axis="index"))
        display(Markdown(f"Cached and online teacher logits differ by at most "
                         f"{di['cached_vs_online_max_abs_diff']:.1e}."))
    if "levers" in b:
        lv = b["levers"]
        mp = lv["measured_peak"]
        # benchmarks made before the graphed step moved into fit's pipeline epoch also timed it per model
        graphed = any("max_abs_loss_diff" in r for v in lv["models"].values() for r in v["variants"].values())
        display(Markdown(f"Speed levers (`kdlib.train.fast`) at batch {lv['batch_size']}: MFU against the datasheet peak "
                         + (f"({lv['peak_flops'] / 1e12:.0f} TFLOP/s) " if lv.get("peak_flops") else "")
                         + f"and against the peak a {mp['n']}³ {mp['dtype'].replace('torch.', '')} matrix product "
                         f"reached in the same run ({mp['flop_per_s'] / 1e12:.1f} TFLOP/s)"
                         + ("; the loss difference is the largest gap between the lever's loss curve and the plain "
                            "step's over 5 steps." if graphed else ".")))
        table = [{"model": m, "lever": k, "images/s": r.get("images_per_s"),
                  "vs plain": (r["images_per_s"] / v["variants"]["plain"]["images_per_s"]) if "images_per_s" in r else None,
                  "MFU (datasheet)": r.get("mfu_datasheet"), "MFU (measured peak)": r.get("mfu_measured"),
                  "loss difference": r.get("max_abs_loss_diff"), "error": r.get("error", "")}
                 for m, v in lv["models"].items() for k, r in v["variants"].items()]
        table = [{k: v for k, v in row.items() if (k != "error" or any(r["error"] for r in table))
                  and (k != "loss difference" or graphed)} for row in table]
        display(pd.DataFrame(table).style.format({"images/s": "{:,.0f}", "vs plain": "{:.2f}", "MFU (datasheet)": "{:.1%}",
                                                  "MFU (measured peak)": "{:.1%}", "loss difference": "{:.1e}"},
                                                 na_rep="-").hide(axis="index"))
        table = [{"LeNets in one step": k, "stacked (vmap) model-images/s": r.get("stacked_model_images_per_s"),
                  "one after another": r.get("sequential_model_images_per_s"), "speed-up": r.get("speedup"),
                  "error": r.get("error", "")} for k, r in lv["stacked"].items()]
        table = [{k: v for k, v in row.items() if k != "error" or any(r["error"] for r in table)} for row in table]
        display(pd.DataFrame(table).style.format({"stacked (vmap) model-images/s": "{:,.0f}",
                                                  "one after another": "{:,.0f}", "speed-up": "{:.2f}"},
                                                 na_rep="-").hide(axis="index"))
        if "pipeline" in lv:  # the grid's own epoch (kdlib.train.loop.fit) with each engine
            pl = lv["pipeline"]
            display(Markdown(f"The pipeline's epoch (`kdlib.train.loop.fit` as the grid calls it) over {pl['images']:,} "
                             f"images with each engine: `plain` (torch.optim, model by model), `static` (the "
                             f"group's step on fixed device buffers), `graphs` (that step as CUDA graphs). Epoch "
                             f"seconds are the median after the first epoch, which pays for autotuning and capture; "
                             f"the loss difference is relative, against the plain engine's curve."))
            table = [{"group": g, "batch": v["batch_size"], "engine": e, "epoch s": r.get("epoch_seconds"),
                      "first epoch s": r.get("first_epoch_seconds"),
                      "speed-up": (v["engines"]["plain"]["epoch_seconds"] / r["epoch_seconds"])
                      if "epoch_seconds" in r and "epoch_seconds" in v["engines"].get("plain", {}) else None,
                      "loss difference": r.get("max_rel_loss_diff"), "error": r.get("error", "")}
                     for g, v in pl["groups"].items() for e, r in v["engines"].items()]
            table = [{k: v for k, v in row.items() if k != "error" or any(r["error"] for r in table)} for row in table]
            display(pd.DataFrame(table).style.format({"epoch s": "{:.3f}", "first epoch s": "{:.3f}",
                                                      "speed-up": "{:.2f}", "loss difference": "{:.1e}"},
                                                     na_rep="-").hide(axis="index"))

# %% [markdown]
# ## How far from converged are the teachers?
#
# The paper states no epoch count (its public code defaults to 218 epochs of a step schedule, see the
# methods chapter); this grid trains them for far
# fewer (its `teacher` recipe). Where a longer run was recorded (the sibling profile, `paper-long` or
# `quick-long`: the same recipe, 4× the epochs), it is compared here with the grid's teachers of the same
# regime. Only the sibling's own teachers count: its run store also reads the shorter runs it reuses.

# %% tags=["hide-input"]
from kdlib.book.names import REGIME_NAMES  # noqa: E402

long_rows = []
if store.results is not None and (Path(store.results) / f"{profile}-long").is_dir():
    profiles = load_grid()["profiles"]
    recipes = {p: profiles[p]["recipes"]["teacher"]["epochs"] for p in (profile, f"{profile}-long")}
    # collect() reads the runs a profile plans: the long profile's own teachers, not the shorter ones it reuses
    long_teachers = [r for r in collect(RunStore(store.root, f"{profile}-long", results=store.results))
                     if r["kind"] == "teacher" and r["model"] == "resnet18"]
    short = [r for r in collect(store) if r["kind"] == "teacher" and r["model"] == "resnet18"]
    order = list(REGIME_NAMES)
    for t in sorted(long_teachers, key=lambda r: (order.index(r["regime"]) if r["regime"] in order else len(order),
                                                  r["seed"])):
        same = sorted((r for r in short if r["regime"] == t["regime"]), key=lambda r: r["seed"])
        long_rows.append({"regime": REGIME_NAMES.get(t["regime"], t["regime"]), "seed": t["seed"],
                          "epochs": recipes[f"{profile}-long"], "accuracy": t["accuracy"],
                          f"grid's teachers ({recipes[profile]} epochs)":
                              ", ".join(f"{r['accuracy']:.4f} (seed {r['seed']})" for r in same),
                          "gain over their mean": t["accuracy"] - sum(r["accuracy"] for r in same) / len(same)
                          if same else None})
if long_rows:
    display(pd.DataFrame(long_rows).style.format({"accuracy": "{:.4f}", "gain over their mean": "{:+.4f}"},
                                                 na_rep="-").hide(axis="index"))
    by_regime: dict = {}
    for row in long_rows:
        if row["gain over their mean"] is not None:
            by_regime.setdefault(row["regime"], []).append(row["gain over their mean"])
    if by_regime:
        gains = {k: sum(v) / len(v) for k, v in by_regime.items()}
        display(Markdown(f"Training {long_rows[0]['epochs']} epochs instead of the grid's gains, per regime (mean over "
                         f"the long runs): " + ", ".join(f"{k} {100 * g:+.1f} points" for k, g in gains.items())
                         + ". The grid's teachers are "
                         + ("not converged where more than 1 point is left; the verdicts on teachers hold for this "
                            "training budget only." if max(gains.values()) > 0.01 else "close to converged.")))
else:
    display(Markdown(f"No longer-trained teacher is recorded for profile `{profile}` (`results/{profile}-long/`)."))
