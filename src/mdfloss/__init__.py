"""mdfloss: the Multi-Scale Discriminative Feature (MDF) loss.

>>> from mdfloss import MDFLoss
>>> crit = MDFLoss.from_file("my-loss.safetensors")   # or MDFLoss.pretrained("denoise")
>>> loss = crit(prediction, target)                   # (N, 3, H, W) in [0, 1], lower is better
>>> mdfloss.disable_checks()       # in a GPU training loop: skip the per-call NaN/range checks (host syncs)

``import mdfloss`` loads the primitives and the core only; ``mdfloss.train_loss`` (phase 1,
:mod:`mdfloss.train`) is imported on first use.
"""

from ._checks import checks_enabled, disable_checks, enable_checks
from ._version import __version__
from .discriminator import DiscriminatorPyramid, PatchDiscriminator
from .loss import MDFLoss, mdf_loss, pretrained_names
from .official import UnsafePickleError
from .weights import WeightFileError, load_pyramid, read_metadata, save_pyramid

__all__ = [
    "DiscriminatorPyramid",
    "MDFLoss",
    "PatchDiscriminator",
    "UnsafePickleError",
    "WeightFileError",
    "__version__",
    "checks_enabled",
    "disable_checks",
    "enable_checks",
    "load_pyramid",
    "mdf_loss",
    "pretrained_names",
    "read_metadata",
    "save_pyramid",
    "train_loss",
]


def __getattr__(name: str) -> object:
    """``train_loss`` on first use, so that ``import mdfloss`` does not load the trainer."""
    if name == "train_loss":
        from .train import train_loss

        return train_loss
    raise AttributeError(f"module 'mdfloss' has no attribute {name!r}")
