"""Provenance of a run: versions, device, threads, git commit, datasets, wall times."""
from __future__ import annotations

import os
import platform
import subprocess
import sys
import time
from typing import TYPE_CHECKING

import numpy as np

from ..base.paths import REPO

if TYPE_CHECKING:  # names for annotations only
    import torch


__all__ = ["provenance"]


def _git(*args) -> str | None:
    try:
        return subprocess.run(["git", *args], capture_output=True, text=True, timeout=10,
                              cwd=REPO).stdout.strip() or None
    except (OSError, subprocess.SubprocessError):
        return None


def _cpu() -> dict:
    """What a CPU result depends on beyond the thread count: the processor, the SIMD kernels torch chose for it and
    OpenBLAS's core type (an env override). Recorded, never asserted: sums in another order round differently."""
    model = None
    try:
        with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as f:
            model = next((line.split(":", 1)[1].strip() for line in f if line.startswith("model name")), None)
    except OSError:
        pass
    try:
        import torch

        capability = torch.backends.cpu.get_cpu_capability()
    except (AttributeError, RuntimeError):  # pragma: no cover - older torch
        capability = None
    return {"model": model or platform.processor() or platform.machine(), "capability": capability,
            **{k: os.environ[k] for k in ("OPENBLAS_CORETYPE", "ATEN_CPU_CAPABILITY") if k in os.environ}}


def provenance(device: str | torch.device, datasets: list[dict], wall_seconds: dict) -> dict:
    import torch

    versions = {"python": sys.version.split()[0], "torch": torch.__version__, "numpy": np.__version__}
    try:
        import torchvision

        versions["torchvision"] = torchvision.__version__
    except ImportError:  # pragma: no cover
        pass
    device = str(device)
    name = torch.cuda.get_device_name(device) if device.startswith("cuda") else (platform.processor() or platform.machine())
    status = _git("status", "--porcelain")
    return {
        "git_commit": _git("rev-parse", "HEAD"),
        "git_dirty": bool(status) if status is not None else None,
        "versions": versions,
        "device": device,
        "device_name": name,
        "cpus": os.cpu_count(),
        "cpu": _cpu(),
        "threads": {"torch": torch.get_num_threads(), "interop": torch.get_num_interop_threads(),
                    **{k: os.environ[k] for k in ("OMP_NUM_THREADS", "MKL_NUM_THREADS") if k in os.environ}},
        "host": platform.node(),
        "datasets": datasets,
        "wall_seconds": wall_seconds,
        "time": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }
