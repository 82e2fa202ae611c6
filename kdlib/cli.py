"""What every ``kdlib`` subcommand shares: help that shows each option's default, and one-line errors
with the nearest valid name for a mistyped profile, experiment or device."""
from __future__ import annotations

import argparse
import difflib
import os
import re
import sys

__all__ = ["ArgumentParser", "CliError", "check_profile", "check_experiments", "check_device", "DEVICES",
           "default_profile", "DEFAULT_PROFILE"]

# the one default profile of the command line, the Snakefile and every notebook's parameters cell
DEFAULT_PROFILE = "quick"
DEVICES = ["auto", "cpu", "cuda", "cuda:N", "mps"]
_DEVICE_ALIASES = {"gpu": "cuda", "nvidia": "cuda", "cuda0": "cuda:0", "metal": "mps", "host": "cpu"}


class CliError(ValueError):
    """A bad command-line value: printed as one ``error: ...`` line, exit status 2."""


class _Formatter(argparse.ArgumentDefaultsHelpFormatter, argparse.RawDescriptionHelpFormatter):
    """Defaults shown after every option's help (``(default: ...)``); the description kept as written."""


class ArgumentParser(argparse.ArgumentParser):
    """argparse with defaults shown in ``--help`` and usage errors on one line (no usage block)."""

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("formatter_class", _Formatter)
        super().__init__(*args, **kwargs)

    def error(self, message):
        self.exit(2, f"error: {self.prog}: {message} (see {self.prog} --help)\n")


def default_profile() -> str:
    """``$PROFILE`` or quick."""
    return os.environ.get("PROFILE") or DEFAULT_PROFILE


def _nearest(word: str, choices) -> str:
    near = difflib.get_close_matches(word, list(choices), n=1, cutoff=0.5)
    return f"; did you mean {near[0]!r}?" if near else ""


def check_profile(profile: str, grid: dict | None = None) -> str:
    if grid is None:
        from .grid import load_grid

        grid = load_grid()
    profiles = sorted(grid.get("profiles") or {})
    if profile not in profiles:
        raise CliError(f"unknown profile {profile!r}{_nearest(profile, profiles)} Profiles in grid.yaml: "
                       f"{', '.join(profiles)}")
    return profile


def check_experiments(names, grid: dict | None = None):
    from .grid import load_grid

    known = sorted((grid or load_grid()).get("experiments") or {})
    for name in names or []:
        if name not in known:
            raise CliError(f"unknown experiment {name!r}{_nearest(name, known)} Experiments in grid.yaml: "
                           f"{', '.join(known)}")
    return names


def check_device(device: str) -> str:
    """auto, cpu, cuda, cuda:N or mps; a device that is not here is named with the fix."""
    if device in ("auto", "cpu"):
        return device  # always usable: no need to import torch to say so
    if device in ("cuda", "mps") or re.fullmatch(r"cuda:\d+", device or ""):
        import torch

        if device.startswith("cuda") and not torch.cuda.is_available():
            raise CliError(f"--device {device}: no CUDA GPU is visible to torch {torch.__version__} here; "
                           f"use --device auto or cpu")
        if device == "mps" and not (getattr(torch.backends, "mps", None) and torch.backends.mps.is_available()):
            raise CliError("--device mps: Apple's Metal backend is not available here; use --device auto or cpu")
        return device
    hint = _DEVICE_ALIASES.get(str(device).lower())
    near = f"; did you mean {hint!r}?" if hint else _nearest(str(device), ["auto", "cpu", "cuda", "mps"])
    raise CliError(f"unknown device {device!r}{near} Devices: {', '.join(DEVICES)}")


def fail(err: Exception, code: int = 2) -> int:
    print(f"error: {err}", file=sys.stderr)
    return code
