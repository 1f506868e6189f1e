"""The three tasks' degradations, on uint8 RGB arrays (H, W, 3), returning float tensors in [0, 1].

* ``sisr``: bicubic downscaling by ``scale`` (PIL, antialiased Keys kernel a = -0.5 as MATLAB's
  ``imresize``), rounded to uint8 as stored LR images are. The HR image is first cropped to a
  multiple of ``scale`` (top-left anchored).
* ``denoise``: additive white Gaussian noise of sigma / 255, not clipped (as DnCNN). Training
  draws sigma ~ U[sigma_min, sigma_max] per patch; validation and test use fixed sigmas.
* ``jpeg``: PIL's JPEG codec (libjpeg, 4:2:0 chroma subsampling) at a quality factor.

Training degradations draw from the ``torch.Generator`` they are given; evaluation degradations
are deterministic: the noise of an image comes from a seed made of the image's name and the
condition, so every run, loss and process sees the same inputs.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from .._checks import check_int
from ..functional import jpeg_roundtrip_uint8

TASKS = ("sisr", "denoise", "jpeg")


@dataclass(frozen=True)
class Condition:
    """One evaluation setting of a task, e.g. ``sigma25`` or ``q7``; ``name`` labels the dataset."""

    name: str
    params: dict[str, Any] = field(default_factory=dict)


def to_tensor(image: np.ndarray) -> torch.Tensor:
    """uint8 (H, W, 3) -> float32 (3, H, W) in [0, 1]."""
    return torch.from_numpy(np.array(image, dtype=np.uint8)).permute(2, 0, 1).float().div_(255)


def mod_crop(image: np.ndarray, multiple: int) -> np.ndarray:
    """Crop the bottom/right so that height and width are multiples of ``multiple``."""
    h, w = image.shape[:2]
    return image[: h - h % multiple, : w - w % multiple]


def bicubic_downscale(image: np.ndarray, scale: int) -> np.ndarray:
    """uint8 (H, W, 3) with H, W multiples of ``scale`` -> uint8 (H / scale, W / scale, 3)."""
    from PIL import Image

    h, w = image.shape[:2]
    small = Image.fromarray(image).resize((w // scale, h // scale), Image.Resampling.BICUBIC)
    return np.asarray(small)


def stable_seed(*parts: object) -> int:
    """A seed that depends only on the parts' text (not on Python's hash randomisation)."""
    return zlib.crc32("|".join(str(p) for p in parts).encode())


class Degradation:
    """A task: how a training pair is made and which conditions evaluation uses."""

    task: str
    scale: int = 1

    def train_pair(self, patch: np.ndarray, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
        """uint8 HR patch -> (degraded input, target), float (3, h, w) and (3, H, W)."""
        raise NotImplementedError

    def eval_conditions(self, split: str) -> list[Condition]:
        """The settings of ``split`` ("val" or "test")."""
        raise NotImplementedError

    def eval_pair(self, image: np.ndarray, condition: Condition, image_name: str) -> tuple[torch.Tensor, torch.Tensor]:
        """Deterministic (input, target) of a whole image under ``condition``."""
        raise NotImplementedError

    def settings(self) -> dict[str, Any]:
        """What decides the degraded images (part of the evaluation cache's key)."""
        return dict(vars(self))


class SuperResolution(Degradation):
    task = "sisr"

    def __init__(self, scale: int = 4) -> None:
        self.scale = check_int("degradation.scale", scale, minimum=2)

    def train_pair(self, patch: np.ndarray, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
        return to_tensor(bicubic_downscale(patch, self.scale)), to_tensor(patch)

    def eval_conditions(self, split: str) -> list[Condition]:
        return [Condition(f"x{self.scale}", {"scale": self.scale})]

    def eval_pair(self, image: np.ndarray, condition: Condition, image_name: str) -> tuple[torch.Tensor, torch.Tensor]:
        image = mod_crop(image, self.scale)
        return to_tensor(bicubic_downscale(image, self.scale)), to_tensor(image)


class Denoising(Degradation):
    task = "denoise"

    def __init__(self, sigma_range: tuple[float, float] = (0.0, 55.0), val_sigma: float = 25.0,
                 test_sigmas: tuple[float, ...] = (15.0, 25.0, 50.0), seed: int = 0) -> None:
        low, high = (float(v) for v in sigma_range)
        if not 0 <= low <= high:
            raise ValueError(f"degradation.sigma_range: expected [low, high] with 0 <= low <= high, got {sigma_range!r}")
        for sigma in (val_sigma, *test_sigmas):
            if not sigma >= 0:
                raise ValueError(f"degradation: expected non-negative noise sigmas (0-255 scale), got {sigma!r}")
        self.sigma_range = (low, high)
        self.val_sigma = float(val_sigma)
        self.test_sigmas = tuple(float(s) for s in test_sigmas)
        self.seed = seed

    def train_pair(self, patch: np.ndarray, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
        low, high = self.sigma_range
        sigma = low + (high - low) * float(torch.rand((), generator=generator))
        clean = to_tensor(patch)
        return clean + sigma / 255 * torch.randn(clean.shape, generator=generator), clean

    def eval_conditions(self, split: str) -> list[Condition]:
        sigmas = (self.val_sigma,) if split == "val" else self.test_sigmas
        return [Condition(f"sigma{s:g}", {"sigma": s}) for s in sigmas]

    def eval_pair(self, image: np.ndarray, condition: Condition, image_name: str) -> tuple[torch.Tensor, torch.Tensor]:
        clean = to_tensor(image)
        generator = torch.Generator().manual_seed(stable_seed(self.seed, image_name, condition.name))
        noise = torch.randn(clean.shape, generator=generator)
        return clean + condition.params["sigma"] / 255 * noise, clean


class JPEGArtifacts(Degradation):
    task = "jpeg"

    def __init__(self, train_quality: int = 10, val_quality: int = 10, test_qualities: tuple[int, ...] = (10, 7)) -> None:
        for name, quality in (("train_quality", train_quality), ("val_quality", val_quality),
                              *(("test_qualities", q) for q in test_qualities)):
            check_int(f"degradation.{name}", quality, minimum=1, maximum=95)
        self.train_quality = train_quality
        self.val_quality = val_quality
        self.test_qualities = tuple(test_qualities)

    def train_pair(self, patch: np.ndarray, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
        return to_tensor(jpeg_roundtrip_uint8(patch, self.train_quality)), to_tensor(patch)

    def eval_conditions(self, split: str) -> list[Condition]:
        qualities = (self.val_quality,) if split == "val" else self.test_qualities
        return [Condition(f"q{q}", {"quality": q}) for q in qualities]

    def eval_pair(self, image: np.ndarray, condition: Condition, image_name: str) -> tuple[torch.Tensor, torch.Tensor]:
        return to_tensor(jpeg_roundtrip_uint8(image, condition.params["quality"])), to_tensor(image)


def build_degradation(task: str, options: dict[str, Any] | None = None) -> Degradation:
    """The degradation of ``task`` with the ``degradation:`` section of a config (a user's
    distortion is :func:`mdfloss.bench.plugins.make_degradation`'s)."""
    options = dict(options or {})
    builders = {"sisr": SuperResolution, "denoise": Denoising, "jpeg": JPEGArtifacts}
    if task not in builders:
        raise ValueError(f"task: expected one of {TASKS}, got {task!r}")
    for key in ("sigma_range", "test_sigmas", "test_qualities"):
        if key in options:
            options[key] = tuple(options[key])
    try:
        return builders[task](**options)
    except TypeError as error:
        raise ValueError(f"degradation options for task {task!r}: {error}") from None
