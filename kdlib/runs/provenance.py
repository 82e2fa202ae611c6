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


def _env(*names: str) -> dict:
    """The environment variables of these names that are set, by name."""
    return {k: os.environ[k] for k in names if k in os.environ}


def _cpu_model() -> str:
    """The processor's model name from /proc/cpuinfo (platform.processor() is empty on Linux)."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as f:
            model = next((line.split(":", 1)[1].strip() for line in f if line.startswith("model name")), None)
    except OSError:
        model = None
    return model or platform.processor() or platform.machine()


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
        # what a CPU result depends on beyond the thread count, recorded, never asserted: the processor, the SIMD
        # kernels torch chose for it, and the overrides of OpenBLAS's and torch's kernel choice
        "cpu": {"model": _cpu_model(), "capability": torch.backends.cpu.get_cpu_capability(),
                **_env("OPENBLAS_CORETYPE", "ATEN_CPU_CAPABILITY")},
        "threads": {"torch": torch.get_num_threads(), "interop": torch.get_num_interop_threads(),
                    **_env("OMP_NUM_THREADS", "MKL_NUM_THREADS")},
        "host": platform.node(),
        "datasets": datasets,
        "wall_seconds": wall_seconds,
        "time": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }
