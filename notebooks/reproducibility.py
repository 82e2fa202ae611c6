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

from kdlib.grid import load_grid, resolve_dataset
from kdlib.report import part_header
from kdlib.results import collect
from kdlib.runs import RunStore

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
