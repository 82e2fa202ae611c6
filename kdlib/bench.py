"""Benchmarks that print figures: ``python -m kdlib bench``.

Loader: images/s of :class:`~kdlib.loader.DeviceLoader` with each regime against torchvision's
``DataLoader`` with per-sample ``RandomCrop(32, padding=4)``, ``RandomHorizontalFlip``,
``ToTensor`` and ``Normalize`` at its best ``num_workers``, measured in one process and
reported as ratios. Results are printed as a table and written as JSON.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from .data import NORMALIZATION, load_dataset
from .loader import DeviceLoader

__all__ = ["bench_loader", "main"]

REGIMES = ["none", "flipcrop", "flipcrop+cutout", "flipcrop+mixup", "flipcrop+cutmix"]


def _sync(device):
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _time_device_loader(images, labels, spec, device, batch_size, epochs, mean, std):
    loader = DeviceLoader(images, labels, batch_size, spec, mean=mean, std=std, device=device)
    for _ in loader:  # warm-up epoch (allocations, kernels)
        break
    _sync(device)
    t = time.perf_counter()
    n = 0
    checksum = 0.0
    for _ in range(epochs):
        for b in loader:
            n += b.x.shape[0]
            checksum += float(b.x[0, 0, 0, 0])  # consume the batch as a training step would
    _sync(device)
    return n / (time.perf_counter() - t)


def _time_torchvision(images, labels, batch_size, workers, epochs, mean, std, max_batches=None):
    from PIL import Image
    from torch.utils.data import DataLoader, Dataset
    from torchvision import transforms as T

    tf = T.Compose([T.RandomCrop(images.shape[1], padding=4), T.RandomHorizontalFlip(), T.ToTensor(),
                    T.Normalize(mean, std)])

    class PILSet(Dataset):
        def __len__(self):
            return len(labels)

        def __getitem__(self, i):
            arr = images[i]
            img = Image.fromarray(arr[..., 0] if arr.shape[-1] == 1 else arr)
            return tf(img), int(labels[i])

    dl = DataLoader(PILSet(), batch_size=batch_size, shuffle=True, num_workers=workers,
                    persistent_workers=workers > 0, drop_last=False)
    it = iter(dl)
    next(it)  # start the workers
    t = time.perf_counter()
    n = 0
    for _ in range(epochs):
        for k, (x, _) in enumerate(dl):
            n += x.shape[0]
            if max_batches and k + 1 >= max_batches:
                break
    return n / (time.perf_counter() - t)


def bench_loader(dataset="cifar10", root=None, device="cpu", batch_size=512, epochs=1, subset=None,
                 workers=(0, 1, 2)) -> dict:
    ds = load_dataset(dataset, "train", root=root, subset=subset)
    mean, std = NORMALIZATION[ds.name]
    device = torch.device(device)
    results = {"dataset": ds.name, "n_images": len(ds), "device": str(device), "batch_size": batch_size,
               "device_loader": {}, "torchvision": {}}
    for spec in REGIMES:
        results["device_loader"][spec] = _time_device_loader(ds.images, ds.labels, spec, device, batch_size, epochs,
                                                             mean, std)
    for w in workers:
        results["torchvision"][w] = _time_torchvision(ds.images, ds.labels, batch_size, w, epochs, mean, std)
    best_w = max(results["torchvision"], key=results["torchvision"].get)
    best = results["torchvision"][best_w]
    results["torchvision_best_workers"] = best_w
    results["ratio_vs_torchvision"] = {k: v / best for k, v in results["device_loader"].items()}
    return results


def _print_loader(r):
    print(f"Loader benchmark: {r['dataset']} train, {r['n_images']} images, batch {r['batch_size']}, "
          f"device {r['device']}")
    print(f"{'loader':<38}{'images/s':>12}{'ratio':>9}")
    best = r["torchvision"][r["torchvision_best_workers"]]
    for w, v in r["torchvision"].items():
        print(f"{f'torchvision DataLoader, {w} workers':<38}{v:>12,.0f}{v / best:>9.2f}")
    for spec, v in r["device_loader"].items():
        print(f"{'DeviceLoader ' + spec:<38}{v:>12,.0f}{v / best:>9.2f}")
    print(f"ratios are against torchvision's best ({r['torchvision_best_workers']} workers)")


def main(argv=None):
    p = argparse.ArgumentParser(prog="python -m kdlib bench", description=__doc__.splitlines()[0])
    p.add_argument("--dataset", default="cifar10")
    p.add_argument("--root", default=None, help="data root (default: $KDLIB_DATA or ./data)")
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    p.add_argument("--batch-size", type=int, default=512)
    p.add_argument("--epochs", type=int, default=1)
    p.add_argument("--subset", type=int, default=None, help="images per class (default: the whole split)")
    p.add_argument("--out", default=None, help="JSON output (default: runs/bench/loader-<device>.json)")
    args = p.parse_args(argv)
    r = bench_loader(args.dataset, args.root, args.device, args.batch_size, args.epochs, args.subset)
    r["host"] = {"cpus": os.cpu_count(), "platform": platform.platform(), "torch": torch.__version__,
                 "device_name": torch.cuda.get_device_name() if args.device.startswith("cuda") else platform.processor()}
    _print_loader(r)
    out = Path(args.out or Path(os.environ.get("KDLIB_RUNS", "runs")) / "bench" / f"loader-{args.device}.json")
    out.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=out.parent, suffix=".tmp")
    with os.fdopen(fd, "w") as f:
        json.dump(r, f, indent=2, default=str)
    os.replace(tmp, out)
    print(f"wrote {out}")
    return r
