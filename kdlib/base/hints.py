"""The one "did you mean" of kdlib: the nearest valid name to a mistyped one, as a clause of an error."""
from __future__ import annotations

import difflib
from collections.abc import Iterable

__all__ = ["nearest", "did_you_mean"]


def nearest(word: str, choices: Iterable[str], cutoff: float = 0.6) -> str | None:
    """The choice closest to ``word`` (difflib's ratio at least ``cutoff``), or None."""
    near = difflib.get_close_matches(str(word), [str(c) for c in choices], n=1, cutoff=cutoff)
    return near[0] if near else None


def did_you_mean(word: str, choices: Iterable[str], cutoff: float = 0.6) -> str:
    """``"; did you mean 'cutmix'?"`` for the nearest choice, or ``""`` when none is near."""
    near = nearest(word, choices, cutoff)
    return f"; did you mean {near!r}?" if near else ""
