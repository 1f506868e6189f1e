"""Phase 1 of the MDF loss: train task-specific discriminators on one seed image.

>>> from mdfloss.train import train_loss
>>> train_loss("photo.png", "denoise.safetensors", task="denoise")   # doctest: +SKIP
"""

from .presets import PRESETS, TrainSettings, resolve_settings
from .trainer import train_loss

__all__ = ["PRESETS", "TrainSettings", "resolve_settings", "train_loss"]
