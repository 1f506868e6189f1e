"""The seed image of phase 1 and its Lanczos pyramid.

Scale ``k`` (1 = coarsest, ``K`` = finest) is the seed downsampled by ``rho ** (K - k)``::

    size_k = (floor(H / rho ** (K - k)), floor(W / rho ** (K - k)))

each made with Pillow's Lanczos filter from the original image (not from the previous scale),
in float32 so that 16-bit seeds keep their precision. A discriminator needs at least
``RECEPTIVE_FIELD`` = 11 px, so ``K`` scales need a short side of ``11 * rho ** (K - 1)`` px.

How image modes are read (Pillow):

- 8-bit RGB: as is. Grayscale (``L``, ``1``, 16-bit ``I;16``/``I``): repeated to 3 channels.
- 16-bit grayscale: divided by 65535, full precision. 16-bit RGB PNGs: Pillow reduces them to
  8 bits; a warning says so.
- Palette images: converted to RGB. CMYK, YCbCr, LAB: converted to RGB by Pillow.
- Alpha (``RGBA``, ``LA``, ``PA``, palette transparency): dropped when every pixel is opaque,
  refused otherwise (the discriminators would learn whatever background it was flattened on).
- Floating-point (``F``) images are refused. EXIF orientation is applied.
"""

from __future__ import annotations

import hashlib
import io
import math
import os
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from .._checks import check_int
from .._files import existing_file
from ..discriminator import RECEPTIVE_FIELD

RHO = 2
"""Downsampling factor between consecutive scales (paper: rho = 2)."""

COARSEST_ADVISED = 25
"""Smallest advised short side of the coarsest scale, SinGAN's ``min_size``. Critics trained on
smaller images came to dominate the loss: the 11x20 px scale gave 98% of an 8-scale fast-preset
denoise loss, which then failed to restore images (docs/sensitivity.md)."""


class CoarseScaleWarning(UserWarning):
    """The coarsest scale of a training run is smaller than :data:`COARSEST_ADVISED`."""

_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


@dataclass(frozen=True)
class SeedImage:
    """A seed image as float32 RGB in [0, 1], shape (3, H, W), with what identifies it."""

    pixels: torch.Tensor
    name: str
    sha256: str
    mode: str

    @property
    def size(self) -> tuple[int, int]:
        """(width, height) in pixels, as Pillow and the metadata write it."""
        return int(self.pixels.shape[-1]), int(self.pixels.shape[-2])

    def describe(self) -> dict[str, Any]:
        """The ``seed_image`` entry of a weight file's metadata."""
        return {"name": self.name, "sha256": self.sha256, "size": list(self.size), "mode": self.mode}


def load_seed(path: str | os.PathLike[str]) -> SeedImage:
    """Read an image file as a :class:`SeedImage` (see the module docstring for image modes)."""
    from PIL import Image, ImageOps, UnidentifiedImageError

    path = existing_file(path, "seed", "an image file")
    data = path.read_bytes()
    try:
        with Image.open(io.BytesIO(data)) as opened:
            opened.load()
            image = ImageOps.exif_transpose(opened)
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError) as error:
        raise ValueError(f"seed: cannot read {path} as an image ({type(error).__name__}: {error})") from None
    if _is_16_bit_color_png(data):
        warnings.warn(
            f"seed: {path} is a 16-bit RGB PNG; Pillow reads it reduced to 8 bits per channel",
            stacklevel=2,
        )
    pixels = _to_rgb_array(image, path)
    tensor = torch.from_numpy(np.ascontiguousarray(pixels.transpose(2, 0, 1)))
    return SeedImage(tensor, path.name, hashlib.sha256(data).hexdigest(), image.mode)


def _to_rgb_array(image: Any, path: Path) -> np.ndarray:
    """(H, W, 3) float32 in [0, 1] from a Pillow image of any supported mode."""
    mode = image.mode
    if mode == "F":
        raise ValueError(f"seed: {path} is a floating-point image (mode F); save it as 8- or 16-bit RGB")
    if mode == "P":
        image = image.convert("RGBA" if "transparency" in image.info else "RGB")
    elif mode == "PA":
        image = image.convert("RGBA")
    if image.mode in ("RGBA", "LA", "La", "RGBa"):
        alpha = np.asarray(image.getchannel("A"))
        if alpha.min() < 255:
            raise ValueError(
                f"seed: {path} has transparent pixels (alpha channel, {int((alpha < 255).sum())} px not opaque); "
                "flatten it onto a background of your choice first, since the discriminators would learn that "
                "background"
            )
        image = image.convert("RGB" if image.mode in ("RGBA", "RGBa") else "L")
    if image.mode in ("I;16", "I;16B", "I;16L", "I;16N", "I"):
        gray = np.asarray(image, dtype=np.float64)
        if gray.min() < 0 or gray.max() > 65535:
            raise ValueError(f"seed: {path} is a 32-bit integer image with values outside 0..65535")
        return np.repeat((gray / 65535.0).astype(np.float32)[..., None], 3, axis=2)
    if image.mode in ("L", "1"):
        gray = np.asarray(image.convert("L"), dtype=np.float32) / 255.0
        return np.repeat(gray[..., None], 3, axis=2)
    if image.mode != "RGB":
        image = image.convert("RGB")
    return np.asarray(image, dtype=np.float32) / 255.0


def _is_16_bit_color_png(data: bytes) -> bool:
    """True for a PNG whose IHDR says 16 bits per sample and colour type RGB or RGBA."""
    if not data.startswith(_PNG_SIGNATURE) or len(data) < 26:
        return False
    bit_depth, colour_type = data[24], data[25]
    return bit_depth == 16 and colour_type in (2, 6)


def minimum_short_side(scales: int, rho: int = RHO) -> int:
    """Short side needed for ``scales`` scales: ``11 * rho ** (scales - 1)``."""
    return RECEPTIVE_FIELD * rho ** (scales - 1)


def largest_scale_count(short_side: int, rho: int = RHO, coarsest: int = RECEPTIVE_FIELD) -> int:
    """The most scales whose coarsest short side stays at least ``coarsest`` px (0 if none)."""
    if short_side < coarsest:
        return 0
    return int(math.floor(math.log(short_side / coarsest, rho) + 1e-9)) + 1


def pyramid_sizes(height: int, width: int, scales: int, rho: int = RHO) -> list[tuple[int, int]]:
    """(H_k, W_k) for k = 1..scales, coarsest first: floor division by ``rho ** (scales - k)``."""
    return [(height // rho ** (scales - k), width // rho ** (scales - k)) for k in range(1, scales + 1)]


def default_scale_count(seed: SeedImage, most: int, rho: int = RHO) -> int:
    """The scales to train when the user names none: as many as ``most`` (the paper's 8), but no more
    than keep the coarsest short side at :data:`COARSEST_ADVISED` px; on a seed too small for even one
    such scale, as many as keep it at the receptive field (11 px). 0 when not even one fits."""
    short = min(seed.size)
    return min(most, largest_scale_count(short, rho, COARSEST_ADVISED) or largest_scale_count(short, rho))


def warn_if_coarsest_is_small(seed: SeedImage, scales: int, rho: int = RHO) -> None:
    """Emit a :class:`CoarseScaleWarning` when the coarsest scale's short side is under 25 px."""
    width, height = seed.size
    coarsest = pyramid_sizes(height, width, scales, rho)[0]
    if min(coarsest) >= COARSEST_ADVISED:
        return
    advised = largest_scale_count(min(width, height), rho, COARSEST_ADVISED)
    advice = f"--scales {advised} keeps it at {COARSEST_ADVISED} px or more" if advised else "use a larger image"
    warnings.warn(
        f"seed: with {scales} scales the coarsest scale of {seed.name} is {coarsest[0]}x{coarsest[1]} px, under "
        f"{COARSEST_ADVISED} px; critics trained that small came to dominate the loss in our measurements "
        f"(docs/sensitivity.md): {advice}.",
        CoarseScaleWarning, stacklevel=3,
    )


def check_seed_size(seed: SeedImage, scales: int, rho: int = RHO, hint: str = "") -> None:
    """Raise ValueError unless the coarsest scale of ``seed`` is at least 11 px on its short side."""
    check_int("scales", scales, minimum=1)
    width, height = seed.size
    short = min(width, height)
    needed = minimum_short_side(scales, rho)
    if short >= needed:
        return
    largest = largest_scale_count(short, rho)
    advice = f"use --scales {largest} or less" if largest else "use a larger image"
    raise ValueError(
        f"seed: {seed.name} is {width}x{height} px, too small for {scales} scales: the coarsest scale, "
        f"downsampled by {rho}^{scales - 1}, must still be at least {RECEPTIVE_FIELD} px (the discriminator's "
        f"receptive field), so the short side must be at least {needed} px. The largest number of scales this "
        f"image allows is {largest}; {advice}{hint}."
    )


def lanczos_resize(pixels: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """(3, H, W) float in [0, 1] -> (3, h, w) with Pillow's Lanczos filter per channel in float32.

    Lanczos rings, so the result is clamped back to [0, 1].
    """
    from PIL import Image

    height, width = size
    if tuple(pixels.shape[-2:]) == (height, width):
        return pixels.clone()
    channels = []
    for channel in pixels.detach().to("cpu", torch.float32).numpy():
        resized = Image.fromarray(channel, mode="F").resize((width, height), Image.Resampling.LANCZOS)
        channels.append(np.asarray(resized, dtype=np.float32))
    return torch.from_numpy(np.stack(channels)).clamp_(0.0, 1.0)


def shrink_to_max_side(seed: SeedImage, max_side: int | None) -> SeedImage:
    """The seed with its long side reduced to ``max_side`` px (Lanczos, aspect kept), if larger."""
    if max_side is None:
        return seed
    check_int("max_side", max_side, minimum=RECEPTIVE_FIELD)
    width, height = seed.size
    if max(width, height) <= max_side:
        return seed
    factor = max_side / max(width, height)
    size = (max(1, round(height * factor)), max(1, round(width * factor)))
    return SeedImage(lanczos_resize(seed.pixels, size), seed.name, seed.sha256, seed.mode)


def seed_pyramid(seed: SeedImage, scales: int, rho: int = RHO) -> list[torch.Tensor]:
    """The seed at every scale, coarsest first: ``scales`` tensors (3, H_k, W_k) in [0, 1]."""
    check_seed_size(seed, scales, rho)
    height, width = seed.pixels.shape[-2:]
    return [lanczos_resize(seed.pixels, size) for size in pyramid_sizes(height, width, scales, rho)]
