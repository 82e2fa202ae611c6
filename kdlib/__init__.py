"""kdlib: the building blocks of kd-augment (models, mixers, distillation loss, metrics)."""
from .augment import build_augmentation
from .distill import kd_loss
from .models import build_model, count_parameters

__all__ = ["build_augmentation", "kd_loss", "build_model", "count_parameters"]
__version__ = "0.2.0"
