"""kdlib: the building blocks of kd-augment (models, mixers, distillation loss, metrics).

The names below load their module (and torch) on first use, so that commands which only plan or
launch notebooks (``python -m kdlib notebook`` under Snakemake) start without importing torch.
"""
__all__ = ["build_augmentation", "kd_loss", "build_model", "count_parameters"]
__version__ = "0.2.0"

_LAZY = {"build_augmentation": "blocks.augment", "kd_loss": "blocks.distill", "build_model": "blocks.models",
         "count_parameters": "blocks.models"}


def __getattr__(name):
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(f"{__name__}.{_LAZY[name]}"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
