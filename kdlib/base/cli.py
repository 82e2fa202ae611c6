"""What every ``kdlib`` subcommand shares: help that shows each option's default, and one-line errors
with the nearest valid name for a mistyped profile, experiment or device."""
from __future__ import annotations

import argparse
import os
import re
import sys
from typing import NoReturn

from .hints import did_you_mean

__all__ = ["ArgumentParser", "CliError", "check_device", "DEVICES", "default_profile", "DEFAULT_PROFILE"]


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

    def __init__(self, *args: object, **kwargs: object) -> None:
        kwargs.setdefault("formatter_class", _Formatter)
        super().__init__(*args, **kwargs)

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"error: {self.prog}: {message} (see {self.prog} --help)\n")


def default_profile() -> str:
    """``$PROFILE`` or quick."""
    return os.environ.get("PROFILE") or DEFAULT_PROFILE


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
    near = f"; did you mean {hint!r}?" if hint else did_you_mean(str(device), ["auto", "cpu", "cuda", "mps"], 0.5)
    raise CliError(f"unknown device {device!r}{near} Devices: {', '.join(DEVICES)}")


def fail(err: Exception, code: int = 2) -> int:
    print(f"error: {err}", file=sys.stderr)
    return code
