"""The command line of the benchmarks: ``python -m kdlib bench``; printing the figures."""
from __future__ import annotations

import json
import os
import platform
import sys
from pathlib import Path

import torch

from ..base.io import atomic_write_text
from ..base.paths import TEST_FIXTURES
from .bench import bench_distillation, bench_levers, bench_loader, bench_training

__all__ = ["main"]


def _print_pipeline(r):
    print(f"\nPipeline epoch (kdlib.train.loop.fit), device {r['device']}, {r['images']:,} images, {r['epochs']} epochs")
    print(f"{'group':<24}{'engine':<8}{'epoch s':>9}{'first s':>9}{'vs plain':>10}{'loss rel diff':>15}")
    for label, g in r["groups"].items():
        plain = g["engines"].get("plain", {}).get("epoch_seconds")
        for engine, row in g["engines"].items():
            if "error" in row:
                print(f"{label:<24}{engine:<8} failed: {row['error']}")
                continue
            used = "" if row["engine_used"] == engine else f" (ran as {row['engine_used']})"
            ratio = f"{plain / row['epoch_seconds']:.2f}x" if plain else "-"
            print(f"{label:<24}{engine:<8}{row['epoch_seconds']:>9.3f}{row['first_epoch_seconds']:>9.3f}{ratio:>10}"
                  f"{row.get('max_rel_loss_diff', 0.0):>15.1e}{used}")


def _print_levers(r):
    mp = r["measured_peak"]
    print(f"\nSpeed levers: device {r['device']}, batch {r['batch_size']}; measured peak {mp['flop_per_s'] / 1e12:.1f} "
          f"TFLOP/s ({mp['dtype']} {mp['n']}^3 matmul)" +
          (f", datasheet {r['peak_flops'] / 1e12:.0f}" if r["peak_flops"] else ""))
    print(f"{'model':<10}{'lever':<10}{'images/s':>12}{'vs plain':>10}{'MFU sheet':>11}{'MFU meas.':>11}")
    for case, v in r["models"].items():
        base = v["variants"]["plain"]["images_per_s"]
        for label, row in v["variants"].items():
            if "error" in row:
                print(f"{case:<10}{label:<10} failed: {row['error']}")
                continue
            sheet = f"{row['mfu_datasheet']:.1%}" if row.get("mfu_datasheet") else "-"
            print(f"{case:<10}{label:<10}{row['images_per_s']:>12,.0f}{row['images_per_s'] / base:>10.2f}{sheet:>11}"
                  f"{row['mfu_measured']:>11.1%}")
    for k, v in r["stacked"].items():
        if "error" in v:
            print(f"{k} LeNets in one vmap step: failed: {v['error']}")
            continue
        print(f"{k} LeNets in one vmap step: {v['stacked_model_images_per_s']:,.0f} model-images/s against "
              f"{v['sequential_model_images_per_s']:,.0f} one after another ({v['speedup']:.2f}x)")
    if "pipeline" in r:
        _print_pipeline(r["pipeline"])


def _print_training(r):
    print(f"\nTraining step: device {r['device']}, batch {r['batch_size']}, {r['image_size']}x{r['image_size']}")
    print(f"{'model':<16}{'variant':<18}{'images/s':>11}{'GFLOP/s':>10}{'vs fp32':>9}{'MFU':>7}")
    for case, v in r["models"].items():
        base = v["variants"]["fp32"]["images_per_s"]
        for label, row in v["variants"].items():
            mfu = f"{row['mfu']:.1%}" if row["mfu"] else "-"
            print(f"{case:<16}{label:<18}{row['images_per_s']:>11,.0f}{row['flop_per_s'] / 1e9:>10,.1f}"
                  f"{row['images_per_s'] / base:>9.2f}{mfu:>7}")
        print(f"{'':<16}training FLOPs/image: {v['train_flop_per_image'] / 1e9:.3f} G")


def _print_distillation(r):
    print(f"\nDistillation: {r['student']} students of a {r['teacher']} teacher, {r['images']} images per epoch")
    print(f"{'students':<10}{'online img/s':>14}{'cached img/s':>14}{'cached/online':>15}")
    for k in r["online"]:
        print(f"{k:<10}{r['online'][k]:>14,.0f}{r['cached'][k]:>14,.0f}{r['cached'][k] / r['online'][k]:>15.2f}")
    one = r["online"][min(r["online"])]
    print(f"lockstep: {max(r['online'])} students reach {r['online'][max(r['online'])] / one:.2f}x the student "
          f"images/s of one (one teacher forward serves them all)")
    print(f"cached vs online teacher logits: max |diff| = {r['cached_vs_online_max_abs_diff']:.2e}")


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


def _default_dataset(root=None) -> tuple[str, str | None]:
    """(dataset, root) for ``--dataset auto``: CIFAR-10 when it is in the data root, else Fashion-MNIST
    (Debian's copy), else the tiny Fashion-MNIST committed with the tests (any checkout can run the benchmark)."""
    from ..data.datasets import dataset_available

    for name in ("cifar10", "fashion-mnist"):
        if dataset_available(name, "train", root):
            return name, root
    fixture = TEST_FIXTURES
    if dataset_available("fashion-mnist", "train", fixture):
        return "fashion-mnist", str(fixture)
    return "cifar10", root  # not found: load_dataset's error lists every place looked and the fix


def main(argv: list[str] | None = None) -> int:
    from ..base.cli import ArgumentParser, check_device

    p = ArgumentParser(prog="kdlib bench", description=__doc__.splitlines()[0])
    p.add_argument("--dataset", default="auto",
                   help="dataset of the loader benchmark; auto: CIFAR-10 when present, else Fashion-MNIST "
                        "(Debian's, else the test fixture)")
    p.add_argument("--root", default=None, help="data root (None: $KDLIB_DATA or ./data, then system folders)")
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu",
                   help="cpu, cuda, cuda:N or mps")
    p.add_argument("--batch-size", type=int, default=512, help="images per batch")
    p.add_argument("--epochs", type=int, default=1, help="passes over the split per loader measurement")
    p.add_argument("--subset", type=int, default=None, help="images per class (None: the whole split)")
    p.add_argument("--out", default=None, help="JSON output (None: <runs>/bench/bench-<device>.json)")
    p.add_argument("--only", nargs="*", choices=["loader", "training", "distillation", "levers"],
                   default=["loader", "training", "distillation"], help="the benchmarks to run")
    p.add_argument("--steps", type=int, default=5, help="timed steps per training variant")
    args = p.parse_args(argv)
    try:
        check_device(args.device)
        if args.batch_size < 1 or args.epochs < 1 or args.steps < 1 or (args.subset is not None and args.subset < 1):
            raise ValueError("--batch-size, --epochs, --steps and --subset must be positive integers")
        if args.dataset == "auto":
            args.dataset, args.root = _default_dataset(args.root)
        return _run(args)
    except (ValueError, OSError, RuntimeError) as err:  # DataError is a ValueError: one line, with its fix
        print(f"error: {err}".splitlines()[0], file=sys.stderr)
        return 2


def _run(args):
    report = {"host": {"cpus": os.cpu_count(), "platform": platform.platform(), "torch": torch.__version__,
                       "device_name": torch.cuda.get_device_name() if args.device.startswith("cuda")
                       else (platform.processor() or platform.machine())}}
    if "loader" in args.only:
        report["loader"] = bench_loader(args.dataset, args.root, args.device, args.batch_size, args.epochs, args.subset)
        _print_loader(report["loader"])
    if "training" in args.only:
        report["training"] = bench_training(args.device, min(args.batch_size, 128), args.steps)
        _print_training(report["training"])
    if "distillation" in args.only:
        report["distillation"] = bench_distillation(args.device, min(args.batch_size, 128), args.steps)
        _print_distillation(report["distillation"])
    if "levers" in args.only:
        report["levers"] = bench_levers(args.device, args.batch_size, max(args.steps, 5))
        _print_levers(report["levers"])
    out = Path(args.out or Path(os.environ.get("KDLIB_RUNS", "runs")) / "bench" / f"bench-{args.device}.json")
    atomic_write_text(out, json.dumps(report, indent=2, default=str), fix="pass --out to a disk with room")
    print(f"wrote {out}")
    return 0
