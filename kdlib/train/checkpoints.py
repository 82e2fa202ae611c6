"""Checkpoints: atomic saves and loads that name what is wrong with a file."""
from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np
import torch

from ..base.io import atomic_path, disk_full
from ..data.loader import DeviceLoader
from .recipe import Learner

__all__ = ["atomic_torch_save"]


CHECKPOINT_FIX = ("point the run store elsewhere (--runs DIR or $KDLIB_RUNS) and run again: training resumes from "
                  "the last checkpoint")


def atomic_torch_save(obj: object, path: Path) -> None:
    """torch.save to a temporary name, then rename (:func:`kdlib.base.io.atomic_path`). A full disk is an
    OSError(ENOSPC) naming ``path`` and the fix (torch reports it as "enforce fail at inline_container.cc ...
    file write failed")."""
    with atomic_path(path, fix=CHECKPOINT_FIX) as tmp:
        try:
            torch.save(obj, tmp)
        except RuntimeError as err:
            if "inline_container" in str(err) or "file write failed" in str(err):
                raise disk_full(path, str(err), CHECKPOINT_FIX) from None
            raise


def load_checkpoint_file(path: Path, device: str | torch.device = "cpu", keys: tuple[str, ...] = ("model",)) -> dict:
    """``torch.load(path, weights_only=True)`` with errors that name the file, the cause and the fix.

    A checkpoint torch refuses under ``weights_only`` holds objects other than tensors: it was
    tampered with or written by another program. It is refused; torch's advice to load it with
    ``weights_only=False`` (which runs code from the file) is not passed on.
    """
    path = Path(path)
    fix = f"delete {path} (or its run folder) and train the run again"
    try:
        state = torch.load(path, map_location=device, weights_only=True)
    except FileNotFoundError:
        raise FileNotFoundError(f"checkpoint {path} is missing; train the run first") from None
    except PermissionError as err:
        raise PermissionError(f"cannot read checkpoint {path} ({err.strerror}); make it readable "
                              f"(chmod u+r) or {fix}") from None
    except pickle.UnpicklingError:
        raise ValueError(f"checkpoint {path} holds objects other than tensors and numbers: it was altered or "
                         f"written by another program, and is refused for safety. Fix: {fix}") from None
    except (RuntimeError, OSError, EOFError, ValueError, KeyError, AttributeError) as err:
        reason = " ".join(str(err).split())[:160]
        raise ValueError(f"checkpoint {path} is truncated or not a kdlib checkpoint ({type(err).__name__}: "
                         f"{reason}). Fix: {fix}") from None
    if not isinstance(state, dict) or any(k not in state for k in keys):
        raise ValueError(f"checkpoint {path} lacks {[k for k in keys if not isinstance(state, dict) or k not in state]}"
                         f"; it is not a kdlib checkpoint. Fix: {fix}")
    return state


def _rng_state():
    # tensors only, so that the checkpoint loads with torch.load(weights_only=True)
    state = {"torch": torch.get_rng_state(), "numpy": torch.from_numpy(np.random.get_state()[1].astype(np.int64))}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def _save_checkpoint(learner: Learner, opt, sched, loader: DeviceLoader, epoch: int):
    if learner.checkpoint is None:
        return
    atomic_torch_save({
        "model": learner.model.state_dict(), "optimizer": opt.state_dict(), "scheduler": sched.state_dict(),
        "epoch": epoch, "loader": loader.state_dict(), "rng": _rng_state(), "history": learner.history,
    }, learner.checkpoint)


def _load_checkpoint(learner: Learner, opt, sched, device):
    """Restore a learner from its checkpoint; returns the loader state saved with it (or None)."""
    if learner.checkpoint is None or not Path(learner.checkpoint).is_file():
        return None
    state = load_checkpoint_file(learner.checkpoint, device,
                                 keys=("model", "optimizer", "scheduler", "history", "epoch", "rng", "loader"))
    learner.model.load_state_dict(state["model"])
    opt.load_state_dict(state["optimizer"])
    sched.load_state_dict(state["scheduler"])
    learner.history = list(state["history"])
    learner.start_epoch = int(state["epoch"])
    torch.set_rng_state(state["rng"]["torch"].cpu())
    return state["loader"]
