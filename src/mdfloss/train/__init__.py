"""Phase 1 of the MDF loss: train task-specific discriminators on one seed image.

* :mod:`.seed`: the seed image, its pyramid and the choice of the number of scales;
* :mod:`.distortions`: the task distortions (registry and ``module:function`` plugins);
* :mod:`.generator`, :mod:`.trainer`: the per-scale generator and the WGAN-GP training loop;
* :mod:`.presets`: the settings (``fast``, ``paper``); :mod:`.checkpoint`, :mod:`.outputs`: the
  resumable checkpoint, the log and the sample strips;
* :mod:`.command`: the ``mdfloss train`` command.

>>> from mdfloss.train import train_loss
>>> train_loss("photo.png", "denoise.safetensors", task="denoise")   # doctest: +SKIP
"""

from .presets import PRESETS, TrainSettings, resolve_settings
from .trainer import train_loss

__all__ = ["PRESETS", "TrainSettings", "resolve_settings", "train_loss"]
