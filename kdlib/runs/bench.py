"""Benchmarks that print figures: ``python -m kdlib bench``.

Levers (``--only levers``): the measured bf16 matmul peak beside the datasheet's, and for each
model's plain training step with its MFU against both peaks; K LeNets in one ``vmap`` step; and the
pipeline's own epoch with each engine of :func:`kdlib.train.loop.fit` (plain, static, CUDA graphs), with the
loss-curve difference.

Loader: images/s of :class:`~kdlib.data.loader.DeviceLoader` with each regime against torchvision's
``DataLoader`` with per-sample ``RandomCrop(32, padding=4)``, ``RandomHorizontalFlip``,
``ToTensor`` and ``Normalize`` at its best ``num_workers``, measured in one process and
reported as ratios. Results are printed as a table and written as JSON.
"""
from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import torch

from ..blocks.distill import soft_cross_entropy
from ..data.datasets import load_dataset
from ..data.loader import DeviceLoader
from ..data.registry import NORMALIZATION

__all__ = ["bench_loader", "bench_training", "bench_distillation", "bench_levers", "bench_pipeline", "PEAK_FLOPS"]


# dense bf16 peaks (FLOP/s) for MFU; H100 SXM from NVIDIA's datasheet
PEAK_FLOPS = {"H100": 989.4e12, "H200": 989.4e12}


BENCH_SPECS = ["none", "flipcrop", "flipcrop+cutout", "flipcrop+mixup", "flipcrop+cutmix"]


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


def bench_loader(dataset: str = "cifar10", root: Path | str | None = None, device: str | torch.device = "cpu", batch_size: int = 512,
                 epochs: int = 1, subset: int | None = None, workers: tuple[int, ...] = (0, 1, 2)) -> dict:
    ds = load_dataset(dataset, "train", root=root, subset=subset)
    mean, std = NORMALIZATION[ds.name]
    device = torch.device(device)
    results = {"dataset": ds.name, "n_images": len(ds), "device": str(device), "batch_size": batch_size,
               "device_loader": {}, "torchvision": {}}
    for spec in BENCH_SPECS:
        results["device_loader"][spec] = _time_device_loader(ds.images, ds.labels, spec, device, batch_size, epochs,
                                                             mean, std)
    for w in workers:
        results["torchvision"][w] = _time_torchvision(ds.images, ds.labels, batch_size, w, epochs, mean, std)
    best_w = max(results["torchvision"], key=results["torchvision"].get)
    best = results["torchvision"][best_w]
    results["torchvision_best_workers"] = best_w
    results["ratio_vs_torchvision"] = {k: v / best for k, v in results["device_loader"].items()}
    return results


def _step_flops(model, x, y) -> int:
    """FLOPs of one training step (forward + backward) counted by torch.utils.flop_counter."""
    from torch.utils.flop_counter import FlopCounterMode

    counter = FlopCounterMode(display=False)
    with counter:
        torch.nn.functional.cross_entropy(model(x), y).backward()
    model.zero_grad(set_to_none=True)
    return counter.get_total_flops()


def _time_steps(model, x, y, steps, amp, device):
    from ..train.steps import autocast_for

    opt = torch.optim.SGD(model.parameters(), lr=1e-3, momentum=0.9)
    ctx = autocast_for(device) if amp else None
    if amp and device.type == "cpu":
        ctx = torch.autocast("cpu", dtype=torch.bfloat16)

    def step():
        if ctx is None:
            loss = torch.nn.functional.cross_entropy(model(x), y)
        else:
            with ctx:
                loss = torch.nn.functional.cross_entropy(model(x), y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    return x.shape[0] / _seconds_per_call(step, steps, device)


def _seconds_per_call(fn, n: int, device, warmup: int = 2) -> float:
    """Mean seconds of ``fn()`` over ``n`` calls after ``warmup`` (cudnn autotune, compile, graph capture)."""
    for _ in range(warmup):
        fn()
    _sync(device)
    t = time.perf_counter()
    for _ in range(n):
        fn()
    _sync(device)
    return (time.perf_counter() - t) / n


MODEL_CASES = {  # name -> (model name, kwargs); 'quick' widths are the quick profile's
    "resnet18": ("resnet18", {}),
    "resnet18-quick": ("resnet18", {"width": 8}),
    "lenet": ("lenet", {}),
    "alexnet": ("alexnet", {}),
}


def bench_training(device: str | torch.device = "cpu", batch_size: int = 128, steps: int = 5, image_size: int = 32, channels: int = 3,
                   cases: list[str] | None = None, compile_on_cuda: bool = True) -> dict:
    """Images/s and FLOP/s of a training step, fp32 vs bf16 autocast, with and without channels_last."""
    from ..blocks.models import build_model

    device = torch.device(device)
    out = {}
    peak = next((v for k, v in PEAK_FLOPS.items() if device.type == "cuda" and k in torch.cuda.get_device_name()),
                None)
    for case in cases or MODEL_CASES:
        name, kwargs = MODEL_CASES[case]
        torch.manual_seed(0)
        model = build_model(name, in_channels=channels, image_size=image_size, **kwargs).to(device)
        x = torch.randn(batch_size, channels, image_size, image_size, device=device)
        y = torch.randint(0, 10, (batch_size,), device=device)
        flops = _step_flops(model, x, y) / batch_size
        rows = {}
        variants = [("fp32", False, False), ("bf16", True, False), ("fp32+cl", False, True), ("bf16+cl", True, True)]
        if device.type == "cuda" and compile_on_cuda:
            variants.append(("bf16+cl+compile", True, True))
        for label, amp, cl in variants:
            m = model.to(memory_format=torch.channels_last if cl else torch.contiguous_format)
            xx = x.contiguous(memory_format=torch.channels_last if cl else torch.contiguous_format)
            if label.endswith("compile"):
                m = torch.compile(m)
            ips = _time_steps(m, xx, y, steps, amp, device)
            rows[label] = {"images_per_s": ips, "flop_per_s": ips * flops,
                           "mfu": ips * flops / peak if peak else None}
        out[case] = {"train_flop_per_image": flops, "variants": rows}
    return {"device": str(device), "batch_size": batch_size, "image_size": image_size, "peak_flops": peak,
            "models": out}


def bench_distillation(device: str | torch.device = "cpu", batch_size: int = 128, steps: int = 5, n_students: tuple[int, ...] = (1, 2, 4),
                       teacher_width: int = 8, image_size: int = 32, channels: int = 3) -> dict:
    """Student images/s with the teacher online, with cached logits, and N students in lockstep."""
    from ..blocks.models import build_model
    from ..data.loader import DeviceLoader
    from ..train.loop import fit, teacher_logits_on
    from ..train.recipe import Learner, Recipe

    device = torch.device(device)
    n = batch_size * steps
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, size=(n, image_size, image_size, channels), dtype=np.uint8)
    labels = np.arange(n) % 10
    mean, std = (0.5,) * channels, (0.25,) * channels
    torch.manual_seed(0)
    teacher = build_model("resnet18", width=teacher_width, in_channels=channels, image_size=image_size).to(device)
    teacher.eval()

    def loader(shuffle=True):
        return DeviceLoader(images, labels, batch_size, "none", mean=mean, std=std, device=device, num_classes=10,
                            shuffle=shuffle)

    cached = teacher_logits_on(teacher, loader(shuffle=False))
    # the cached and the online path give the same targets
    batch = next(iter(loader()))
    with torch.no_grad():
        online = teacher(batch.x).float()
    max_diff = float((cached[batch.index] - online).abs().max())

    def students(k):
        return [Learner(f"s{i}", build_model("lenet", in_channels=channels, image_size=image_size),
                        Recipe(epochs=1, batch_size=batch_size, lr=0.01), alpha=0.5) for i in range(k)]

    def timed(k, use_cache):
        group = students(k)
        fit(group, loader(), teacher=teacher, progress=False)  # warm-up epoch
        group = students(k)
        _sync(device)
        t = time.perf_counter()
        fit(group, loader(), teacher=None if use_cache else teacher, cached_teacher_logits=cached if use_cache else None,
            progress=False)
        _sync(device)
        return k * n / (time.perf_counter() - t)

    result = {"teacher": f"resnet18 width {teacher_width}", "student": "lenet", "images": n,
              "cached_vs_online_max_abs_diff": max_diff, "online": {}, "cached": {}}
    for k in n_students:
        result["online"][k] = timed(k, False)
        result["cached"][k] = timed(k, True)
    return result


def measured_peak(device: str | torch.device, n: int | None = None, reps: int = 10) -> dict:
    """FLOP/s of a large bf16 matrix product on ``device`` (fp32 on a CPU): the peak this machine
    actually reaches, to set MFU against beside the datasheet's."""
    device = torch.device(device)
    n = n or (8192 if device.type == "cuda" else 512)
    dtype = torch.bfloat16 if device.type == "cuda" else torch.float32
    a = torch.randn(n, n, device=device, dtype=dtype)
    b = torch.randn(n, n, device=device, dtype=dtype)
    for _ in range(2):
        a @ b
    _sync(device)
    t = time.perf_counter()
    for _ in range(reps):
        a @ b
    _sync(device)
    return {"n": n, "dtype": str(dtype), "flop_per_s": 2 * n ** 3 * reps / (time.perf_counter() - t)}


def _plain_step(model: torch.nn.Module, opt: torch.optim.Optimizer, inputs: torch.Tensor, targets: torch.Tensor,
                device: torch.device) -> torch.Tensor:
    """The plain engine's step: autocast forward, soft cross-entropy in float32, backward, SGD."""
    from ..train.steps import autocast_for

    with autocast_for(device):
        logits = model(inputs)
    loss = soft_cross_entropy(logits.float(), targets)
    opt.zero_grad(set_to_none=True)
    loss.backward()
    opt.step()
    return loss.detach()


def _sgd(model: torch.nn.Module) -> torch.optim.Optimizer:
    return torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9, nesterov=True, weight_decay=5e-4)


def _lever_model(case: str, x: torch.Tensor, y: torch.Tensor, steps: int, device: torch.device,
                 memory_format: torch.memory_format, peak: float | None, measured: float) -> dict:
    """The plain step of one model: seconds per step, images/s and MFU against the datasheet and measured peak."""
    from ..blocks.models import build_model

    torch.manual_seed(0)
    model = build_model(case).to(device).to(memory_format=memory_format)
    flops = _step_flops(model, x, y.argmax(1)) / len(x)
    opt = _sgd(model)
    row = {"seconds_per_step": _seconds_per_call(lambda: _plain_step(model, opt, x, y, device), steps, device)}
    row["images_per_s"] = len(x) / row["seconds_per_step"]
    row["mfu_datasheet"] = row["images_per_s"] * flops / peak if peak else None
    row["mfu_measured"] = row["images_per_s"] * flops / measured
    return {"train_flop_per_image": flops, "variants": {"plain": row}}


def _lever_stacked(k: int, x: torch.Tensor, y: torch.Tensor, steps: int, device: torch.device) -> dict:
    """K LeNets in one ``vmap`` step against K plain steps on a shared batch (an error is a figure too)."""
    from ..blocks.models import build_model
    from ..train.fast import StackedModels
    from ..train.steps import autocast_for

    torch.manual_seed(0)
    models = [build_model("lenet").to(device) for _ in range(k)]
    opts = [_sgd(m) for m in models]

    def sequential() -> None:
        for m, o in zip(models, opts):
            _plain_step(m, o, x, y, device)

    seq = _seconds_per_call(sequential, steps, device)
    try:
        st = StackedModels(models, lr=0.01)
        with autocast_for(device):
            vm = _seconds_per_call(lambda: st.step(x, y), steps, device)
    except Exception as err:  # noqa: BLE001 - a lever that fails is a figure too
        return {"error": f"{type(err).__name__}: {str(err).splitlines()[0]}"}
    return {"sequential_model_images_per_s": k * len(x) / seq, "stacked_model_images_per_s": k * len(x) / vm,
            "speedup": seq / vm}


def bench_levers(device: str | torch.device = "cpu", batch_size: int = 512, steps: int = 20,
                 cases: tuple[str, ...] = ("lenet", "alexnet", "resnet18"), stacked: tuple[int, ...] = (1, 6),
                 pipeline_images: int | None = None) -> dict:
    """One line per speed lever of :mod:`kdlib.train.fast` against the plain step, with the equality check.

    plain: autocast bf16 (CUDA) + channels_last, soft cross-entropy, ``torch.optim.SGD`` (Nesterov,
    weight decay), the step of :func:`kdlib.train.loop.fit`'s plain engine, with its MFU; stacked: K LeNets
    in one ``vmap`` step against K plain steps, on a shared batch; pipeline: :func:`bench_pipeline`, the
    epoch of ``fit`` with each engine and its loss curve against the plain engine's.
    """
    device = torch.device(device)
    cl = torch.channels_last if device.type == "cuda" else torch.contiguous_format
    peak = next((v for k, v in PEAK_FLOPS.items() if device.type == "cuda" and k in torch.cuda.get_device_name()),
                None)
    result = {"device": str(device), "batch_size": batch_size, "steps": steps, "peak_flops": peak,
              "measured_peak": measured_peak(device), "models": {}, "stacked": {}}
    g = torch.Generator(device="cpu").manual_seed(0)
    x = torch.randn(batch_size, 3, 32, 32, generator=g).to(device).contiguous(memory_format=cl)
    y = torch.softmax(torch.randn(batch_size, 10, generator=g), 1).to(device)
    for case in cases:
        result["models"][case] = _lever_model(case, x, y, steps, device, cl, peak,
                                              result["measured_peak"]["flop_per_s"])
    for k in stacked:
        result["stacked"][k] = _lever_stacked(k, x.contiguous(), y, steps, device)
    result["pipeline"] = bench_pipeline(device, pipeline_images, teacher_batch=batch_size)
    return result


def bench_pipeline(device: str | torch.device = "cpu", images: int | None = None, epochs: int = 3, teacher_batch: int = 512,
                   student_batch: int = 128) -> dict:
    """The pipeline's own epoch, :func:`kdlib.train.loop.fit` as the grid calls it, with each engine
    (plain; static; CUDA graphs on a GPU): a ResNet-18 teacher on a flip+crop stream at batch
    ``teacher_batch``, and the LeNet + AlexNet student group on a clean stream with cached teacher
    logits at ``student_batch``, over ``images`` synthetic 32x32 images (50,000, CIFAR-10's training
    split, on a GPU). Epoch seconds are the median of the epochs after the first (the first pays for
    cuDNN's autotuning and the graph capture); the loss curve is compared with the plain engine's (the
    batch-norm ResNet amplifies float rounding: ~1e-3 relative apart on a CPU is rounding, not a fault;
    tests/test_engines.py shows the same spread from a 1e-7 nudge of the plain path's weights)."""
    from ..blocks.models import build_model
    from ..data.loader import DeviceLoader
    from ..train.loop import fit
    from ..train.recipe import Learner, Recipe

    device = torch.device(device)
    if device.type != "cuda":  # the code paths at a size a CPU runs in seconds
        student_batch = min(student_batch, teacher_batch)
    images = images or (50_000 if device.type == "cuda" else 2 * teacher_batch + teacher_batch // 2)
    rng = np.random.default_rng(0)
    x = rng.integers(0, 256, size=(images, 32, 32, 3), dtype=np.uint8)
    y = np.arange(images) % 10
    mean, std = (0.49, 0.48, 0.45), (0.25, 0.24, 0.26)
    logits = torch.randn(images, 10, generator=torch.Generator().manual_seed(1)).to(device)
    engines = ["plain", "static"] + (["graphs"] if device.type == "cuda" else [])
    setups = {
        "resnet18 teacher": (["resnet18"], teacher_batch, "flipcrop", None),
        "lenet+alexnet students": (["lenet", "alexnet"], student_batch, "none", logits),
    }
    out = {"device": str(device), "images": images, "epochs": epochs, "groups": {}}
    for label, (names, batch, aug, cached) in setups.items():
        rows = {}
        for engine in engines:
            torch.manual_seed(0)
            learners = [Learner(n, build_model(n), Recipe(epochs=epochs, batch_size=batch, lr=0.01),
                                alpha=0.5 if cached is not None else 0.0) for n in names]
            ld = DeviceLoader(x, y, batch, aug, mean=mean, std=std, device=device, num_classes=10, order_seed=1,
                              aug_seed=2)
            try:
                fit(learners, ld, cached_teacher_logits=cached, progress=False, engine=engine, checkpoint_every=1e9)
            except Exception as err:  # noqa: BLE001 - an engine that fails is a figure too
                rows[engine] = {"error": f"{type(err).__name__}: {str(err).splitlines()[0] if str(err) else ''}"}
                continue
            secs = sorted(h["seconds"] for h in learners[0].history[1:]) or [learners[0].history[0]["seconds"]]
            rows[engine] = {"epoch_seconds": secs[len(secs) // 2], "first_epoch_seconds": learners[0].history[0]["seconds"],
                            "engine_used": learners[0].engine,
                            "losses": {lr.name: [h["loss"] for h in lr.history] for lr in learners}}
        base = rows.get("plain", {}).get("losses")
        for row in rows.values():
            if base and "losses" in row:
                row["max_rel_loss_diff"] = max(abs(a - b) / max(abs(a), 1e-12) for n in base
                                               for a, b in zip(base[n], row["losses"][n]))
        out["groups"][label] = {"batch_size": batch, "augment": aug, "engines": rows}
    return out
