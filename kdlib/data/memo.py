"""One decoded split per process: the memo every run of a grid shares."""
from __future__ import annotations

from typing import TYPE_CHECKING

from .datasets import load_dataset

if TYPE_CHECKING:  # names for annotations only
    from .registry import Dataset


__all__ = ["split_of", "clear_data_memo"]


_DATA_MEMO: dict = {}


def split_of(spec: dict, split: str, subset_key: str = "subset") -> Dataset:
    """The split of a run config's dataset spec, loaded once per process (``subset_key``: the
    spec's per-class count for this split, ``subset`` or ``test_subset``)."""
    key = (spec["name"], split, spec.get(subset_key), spec.get("subset_seed", 0), spec.get("root"))
    if key not in _DATA_MEMO:
        _DATA_MEMO[key] = load_dataset(spec["name"], split, root=spec.get("root"), subset=spec.get(subset_key),
                                       seed=spec.get("subset_seed", 0))
    return _DATA_MEMO[key]


def clear_data_memo() -> None:
    _DATA_MEMO.clear()
