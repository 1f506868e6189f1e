r"""Synthetic seed images for the seed ablation (paper, Fig. 7): images with chosen statistics.

All return float64 RGB images (3, H, W) in [0, 1], made from a ``torch.Generator`` only.

* :func:`pink_noise`: Gaussian noise whose power spectrum falls as :math:`1/f^2`, like natural
  images: :math:`\hat x(u, v) = \hat w(u, v) / f`, :math:`f = \sqrt{u^2 + v^2}` cycles per image,
  :math:`w` white, the DC term removed; each channel (independent) is then mapped linearly onto
  [0, 1], which keeps the spectrum's shape.
* :func:`contrast_rings`: concentric rings, sharp-edged (a square wave of radius with period
  ``period`` px, anti-aliased by 4x4 supersampling), whose contrast grows linearly from 0 at the
  centre to 1 at the far corner: :math:`x(r) = \tfrac12 + \tfrac12 \tfrac{r}{R} \operatorname{sgn}
  \sin(2\pi r / p)`. Every orientation and every contrast has an edge somewhere.
* :func:`pyramid_permutation`: a photo's Laplacian pyramid (:func:`laplacian_pyramid`) with the
  pixel positions of every level shuffled (all channels together), then summed back: each level
  keeps its values, hence its histogram and energy, and the image its spectrum's coarse shape,
  while the spatial structure (autocorrelation within a level, alignment across levels) is gone.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from ..functional import gaussian_window

KINDS = ("pink-noise", "contrast-rings", "pyramid-permutation")
RING_PERIOD = 16
SUPERSAMPLING = 4
PYRAMID_SMALLEST = 8
"""The coarsest level of :func:`laplacian_pyramid` keeps at least this many pixels on its short side."""


def pink_noise(height: int, width: int, generator: torch.Generator) -> torch.Tensor:
    """(3, H, W) noise with a 1/f^2 power spectrum, each channel stretched to [0, 1]."""
    white = torch.randn(3, height, width, generator=generator, dtype=torch.float64)
    u = torch.fft.fftfreq(height, dtype=torch.float64)[:, None] * height
    v = torch.fft.fftfreq(width, dtype=torch.float64)[None, :] * width
    frequency = torch.sqrt(u.square() + v.square())
    amplitude = torch.where(frequency > 0, 1 / frequency.clamp(min=1e-12), torch.zeros_like(frequency))
    noise = torch.fft.ifft2(torch.fft.fft2(white) * amplitude).real
    low = noise.amin(dim=(1, 2), keepdim=True)
    high = noise.amax(dim=(1, 2), keepdim=True)
    return (noise - low) / (high - low)


def contrast_rings(height: int, width: int, period: float = RING_PERIOD) -> torch.Tensor:
    """(3, H, W) grey rings of period ``period`` px around the centre, contrast rising with the radius."""
    if not period > 0:
        raise ValueError(f"period: expected a positive ring period in px, got {period!r}")
    s = SUPERSAMPLING
    rows = (torch.arange(height * s, dtype=torch.float64) + 0.5) / s - height / 2
    cols = (torch.arange(width * s, dtype=torch.float64) + 0.5) / s - width / 2
    radius = torch.sqrt(rows[:, None].square() + cols[None, :].square())
    contrast = radius / math.hypot(height / 2, width / 2)
    fine = 0.5 + 0.5 * contrast * torch.sign(torch.sin(2 * math.pi * radius / period))
    grey = F.avg_pool2d(fine[None, None], s)[0]
    return grey.expand(3, -1, -1).clone()


def _blur_down(x: torch.Tensor) -> torch.Tensor:
    """Gaussian blur (sigma 1, 5 taps, reflect padding) then every second pixel: (C, H, W) -> (C, ~H/2, ~W/2)."""
    kernel = gaussian_window(1.0, 5, x.dtype, x.device)
    c = x.shape[0]
    blurred = F.conv2d(F.pad(x[None], (2, 2, 0, 0), mode="reflect"), kernel.view(1, 1, 1, 5).expand(c, 1, 1, 5), groups=c)
    blurred = F.conv2d(F.pad(blurred, (0, 0, 2, 2), mode="reflect"), kernel.view(1, 1, 5, 1).expand(c, 1, 5, 1), groups=c)
    return blurred[0, :, ::2, ::2]


def _up(x: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    return F.interpolate(x[None], size=size, mode="bilinear", align_corners=False)[0]


def laplacian_pyramid(image: torch.Tensor) -> list[torch.Tensor]:
    """Band-pass levels, finest first, then the low-pass residual: ``image == collapse(levels)`` exactly.

    ``L_i = G_i - up(G_{i+1})`` with ``G_0 = image`` and ``G_{i+1}`` the blurred, halved ``G_i``;
    as many levels as keep the residual's short side at :data:`PYRAMID_SMALLEST` px or more.
    """
    levels, current = [], image
    while min(current.shape[-2:]) // 2 >= PYRAMID_SMALLEST:
        smaller = _blur_down(current)
        levels.append(current - _up(smaller, tuple(current.shape[-2:])))
        current = smaller
    return [*levels, current]


def collapse(levels: list[torch.Tensor]) -> torch.Tensor:
    """The image of a :func:`laplacian_pyramid`: ``G_i = L_i + up(G_{i+1})`` from the residual up."""
    image = levels[-1]
    for level in reversed(levels[:-1]):
        image = level + _up(image, tuple(level.shape[-2:]))
    return image


def permute_levels(levels: list[torch.Tensor], generator: torch.Generator) -> list[torch.Tensor]:
    """Each level with its pixel positions shuffled (one permutation for all of a level's channels)."""
    shuffled = []
    for level in levels:
        c, h, w = level.shape
        order = torch.randperm(h * w, generator=generator)
        shuffled.append(level.reshape(c, h * w)[:, order].reshape(c, h, w))
    return shuffled


def pyramid_permutation(photo: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """``photo`` (3, H, W) in [0, 1] with every Laplacian level permuted, clamped to [0, 1]."""
    return collapse(permute_levels(laplacian_pyramid(photo.double()), generator)).clamp(0, 1)


def synthesize(kind: str, height: int, width: int, generator: torch.Generator,
               like: torch.Tensor | None = None) -> torch.Tensor:
    """The synthetic seed ``kind`` (one of :data:`KINDS`): (3, H, W) float64 in [0, 1].

    ``pyramid-permutation`` needs ``like``, a photo (3, h, w) at least (H, W), centre-cropped to it.
    """
    if kind not in KINDS:
        raise ValueError(f"kind: expected one of {KINDS}, got {kind!r}")
    if min(height, width) < 2 * PYRAMID_SMALLEST:
        raise ValueError(f"size: expected at least {2 * PYRAMID_SMALLEST} px on each side, got {width}x{height}")
    if (like is not None) != (kind == "pyramid-permutation"):
        raise ValueError(f"like: a photo is needed for pyramid-permutation and only for it (kind {kind!r})")
    if kind == "pink-noise":
        return pink_noise(height, width, generator)
    if kind == "contrast-rings":
        return contrast_rings(height, width)
    h, w = like.shape[-2:]
    if h < height or w < width:
        raise ValueError(f"like: expected a photo of at least {width}x{height} px, got {w}x{h}")
    top, left = (h - height) // 2, (w - width) // 2
    return pyramid_permutation(like[:, top:top + height, left:left + width], generator)
