r"""Image distortions set to a target PSNR (the paper's appendix 6, Fig. 16 and 17).

.. math::

    \mathrm{PSNR}(y, x) = 10 \log_{10} \frac{1}{\mathrm{MSE}(y, x)}, \qquad
    \mathrm{MSE}(y, x) = \frac{1}{CHW} \sum (y - x)^2

for images ``(C, H, W)`` in ``[0, 1]`` (float64 here, so the PSNR is exact). Each probe maps an
image and a strength :math:`s \ge 0` to a distorted image in ``[0, 1]``; :math:`s = 0` leaves
the image unchanged and the MSE never decreases as :math:`s` grows:

* ``noise``: :math:`\mathrm{clamp}(x + s\,n)`, ``n`` a standard-normal realisation drawn from
  a fixed seed (the same for every strength); ``s`` is the standard deviation;
* ``blur``: :math:`x * G_s`, a Gaussian of standard deviation ``s`` px, truncated at
  :math:`4s`, reflect boundaries (every frequency's gain :math:`e^{-s^2\omega^2/2}` falls as ``s``
  grows, so the MSE rises);
* ``grating``: :math:`\mathrm{clamp}(x + s \sin(2\pi (u\cos\theta + v\sin\theta) / P))`, the
  same in every channel (default P = 8 px, :math:`\theta` = 45 degrees); ``s`` is the amplitude;
* ``contrast``: :math:`x - s(x - m)`, ``m`` the mean of each channel, ``s`` in [0, 1];
  no clamping is needed, so :math:`\mathrm{MSE} = s^2\,\overline{(x - m)^2}` exactly;
* ``brightness``: :math:`\mathrm{clamp}(x \pm s)`, shifted towards the side with more headroom
  (up when the image mean is below 0.5).

:func:`match_psnr` starts from the strength that is exact without clamping (:math:`s_0 =
\sqrt{\mathrm{MSE}_t / \overline{d^2}}`, ``d`` the unit-strength change; 1 px for blur), doubles
it until the target MSE is bracketed, then narrows the bracket until the PSNR is within
``tolerance`` of the target: each step interpolates linearly in (log s, log MSE) and falls back
to bisection whenever the bracket did not halve. A target the probe cannot reach (a flat image
cannot be blurred to 20 dB) returns the strongest distortion with ``matched=False``.

JPEG cannot reach an arbitrary PSNR: :func:`jpeg_compress` encodes at a given quality (Pillow,
4:2:0 chroma subsampling) and the caller measures the PSNR.
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from dataclasses import dataclass

import numpy as np
import torch

from .._checks import check_int
from ..functional import gaussian_window, jpeg_roundtrip_uint8

MATCH_TOLERANCE_DB = 0.05
"""An achieved PSNR further than this from its target is flagged as not matched."""

SEARCH_TOLERANCE_DB = 0.005
MAX_SEARCH_STEPS = 100
BLUR_TRUNCATION = 4.0


def mean_squared_error(distorted: torch.Tensor, reference: torch.Tensor) -> float:
    """Mean of (distorted - reference)^2 over every element, in float64."""
    return float((distorted.double() - reference.double()).square().mean())


def psnr_from_mse(mse: float) -> float:
    """10 log10(1 / MSE) for images in [0, 1]; +inf for MSE 0."""
    return math.inf if mse <= 0 else -10.0 * math.log10(mse)


def mse_from_psnr(psnr: float) -> float:
    return 10.0 ** (-psnr / 10.0)


def _check_image(image: object) -> torch.Tensor:
    if not isinstance(image, torch.Tensor) or not image.is_floating_point() or image.ndim != 3:
        if isinstance(image, torch.Tensor):
            got = f"shape {tuple(image.shape)}, dtype {image.dtype}"
        else:
            got = type(image).__name__
        raise TypeError(f"image: expected a floating-point (C, H, W) tensor in [0, 1], got {got}")
    return image.double()


class Probe(ABC):
    """A distortion with one strength parameter whose MSE never decreases as it grows."""

    name: str
    parameter: str
    max_strength_value = 1.0

    @abstractmethod
    def distort(self, image: torch.Tensor, strength: float) -> torch.Tensor:
        """(C, H, W) float64 in [0, 1] -> the same shape in [0, 1]."""

    @abstractmethod
    def first_guess(self, image: torch.Tensor, target_mse: float) -> float:
        """A strength near the one giving ``target_mse`` (exact when nothing is clamped)."""

    def max_strength(self, image: torch.Tensor) -> float:
        return self.max_strength_value


def _unclamped_strength(target_mse: float, unit_change: torch.Tensor, fallback: float) -> float:
    """s with mean((s d)^2) = target_mse for the unit-strength change d; ``fallback`` if d = 0."""
    energy = float(unit_change.square().mean())
    return math.sqrt(target_mse / energy) if energy > 0 else fallback


class AdditivePattern(Probe):
    """clamp(x + s p) for a fixed unit pattern p (:meth:`pattern`); s = its scale."""

    max_strength_value = 4.0

    @abstractmethod
    def pattern(self, image: torch.Tensor) -> torch.Tensor:
        """The unit-strength change, broadcastable to ``image``, float64 on its device."""

    def first_guess(self, image: torch.Tensor, target_mse: float) -> float:
        return _unclamped_strength(target_mse, self.pattern(image), self.max_strength_value)

    def distort(self, image: torch.Tensor, strength: float) -> torch.Tensor:
        return (image + strength * self.pattern(image)).clamp(0.0, 1.0)


class GaussianNoise(AdditivePattern):
    """clamp(x + s n), n ~ N(0, 1) from ``torch.Generator().manual_seed(seed)``; s = sigma."""

    name = "noise"
    parameter = "sigma"

    def __init__(self, seed: int = 0) -> None:
        self.seed = seed

    def pattern(self, image: torch.Tensor) -> torch.Tensor:
        generator = torch.Generator().manual_seed(self.seed)
        return torch.randn(image.shape, generator=generator, dtype=torch.float64).to(image.device)


class GaussianBlur(Probe):
    """x * G_s: Gaussian of sigma s px, truncated at 4 s, reflect boundaries; separable matmuls."""

    name = "blur"
    parameter = "sigma_px"

    def max_strength(self, image: torch.Tensor) -> float:
        return float(max(image.shape[-2:]))

    def first_guess(self, image: torch.Tensor, target_mse: float) -> float:
        return 1.0

    def distort(self, image: torch.Tensor, strength: float) -> torch.Tensor:
        if strength <= 0:
            return image.clone()
        rows = blur_matrix(image.shape[-2], strength, image.device)
        columns = blur_matrix(image.shape[-1], strength, image.device)
        return (rows @ image @ columns.T).clamp(0.0, 1.0)


def blur_matrix(length: int, sigma: float, device: torch.device | str = "cpu") -> torch.Tensor:
    """(length, length) matrix of a 1-D Gaussian blur with reflect boundaries (``d c b | a b c d | c b a``).

    Taps reaching past the signal are folded back as often as needed, so any sigma works.
    """
    radius = math.ceil(BLUR_TRUNCATION * sigma)
    taps = torch.arange(-radius, radius + 1, device=device)
    kernel = gaussian_window(sigma, 2 * radius + 1, torch.float64, device)
    positions = torch.arange(length, device=device)[:, None] + taps[None, :]
    if length > 1:
        period = 2 * (length - 1)
        positions = positions.remainder(period)
        positions = torch.where(positions > length - 1, period - positions, positions)
    else:
        positions = torch.zeros_like(positions)
    matrix = torch.zeros(length, length, dtype=torch.float64, device=device)
    return matrix.scatter_add_(1, positions, kernel.expand(length, -1).contiguous())


class SinusoidalGrating(AdditivePattern):
    """clamp(x + s sin(2 pi (u cos t + v sin t) / period)) in every channel; s = amplitude."""

    name = "grating"
    parameter = "amplitude"

    def __init__(self, period: float = 8.0, angle_degrees: float = 45.0) -> None:
        if not period > 0:
            raise ValueError(f"period: expected a positive period in px, got {period!r}")
        self.period = float(period)
        self.angle = math.radians(angle_degrees)

    def pattern(self, image: torch.Tensor) -> torch.Tensor:
        """sin(2 pi (u cos t + v sin t) / period) at column u, row v: (H, W)."""
        height, width = image.shape[-2:]
        v = torch.arange(height, dtype=torch.float64, device=image.device)[:, None]
        u = torch.arange(width, dtype=torch.float64, device=image.device)[None, :]
        phase = 2 * math.pi * (u * math.cos(self.angle) + v * math.sin(self.angle)) / self.period
        return torch.sin(phase)


class ContrastReduction(Probe):
    """x - s (x - m), m the per-channel mean; s in [0, 1] (1 = flat image). Never clamps."""

    name = "contrast"
    parameter = "reduction"

    @staticmethod
    def deviation(image: torch.Tensor) -> torch.Tensor:
        return image - image.mean(dim=(-2, -1), keepdim=True)

    def first_guess(self, image: torch.Tensor, target_mse: float) -> float:
        return _unclamped_strength(target_mse, self.deviation(image), self.max_strength_value)

    def distort(self, image: torch.Tensor, strength: float) -> torch.Tensor:
        return image - strength * self.deviation(image)


class BrightnessShift(Probe):
    """clamp(x + s) if the image mean is below 0.5, else clamp(x - s); s = |shift|."""

    name = "brightness"
    parameter = "shift"

    @staticmethod
    def direction(image: torch.Tensor) -> float:
        return 1.0 if float(image.mean()) < 0.5 else -1.0

    def first_guess(self, image: torch.Tensor, target_mse: float) -> float:
        return math.sqrt(target_mse)

    def distort(self, image: torch.Tensor, strength: float) -> torch.Tensor:
        return (image + self.direction(image) * strength).clamp(0.0, 1.0)


def matched_probes(seed: int = 0) -> list[Probe]:
    """The five probes of the paper's Fig. 16, in plotting order."""
    return [GaussianNoise(seed), GaussianBlur(), SinusoidalGrating(), ContrastReduction(), BrightnessShift()]


JPEG = "jpeg"
PARAMETER_NAMES = {probe.name: probe.parameter for probe in matched_probes()} | {JPEG: "quality"}
"""What the ``parameter`` of each distortion is."""


@dataclass(frozen=True)
class Distorted:
    """One distorted image and how far it is from its reference."""

    image: torch.Tensor
    strength: float
    mse: float
    psnr: float
    matched: bool


def match_psnr(
    image: torch.Tensor, probe: Probe, target_psnr: float, tolerance: float = SEARCH_TOLERANCE_DB
) -> Distorted:
    """The distortion of ``image`` by ``probe`` whose PSNR is closest to ``target_psnr`` (dB).

    ``matched`` is True when the achieved PSNR is within :data:`MATCH_TOLERANCE_DB` of the target.
    """
    image = _check_image(image)
    if not math.isfinite(target_psnr) or target_psnr <= 0:
        raise ValueError(f"target_psnr: expected a positive PSNR in dB, got {target_psnr!r}")
    target_mse = mse_from_psnr(target_psnr)
    ceiling = probe.max_strength(image)

    def distorted_at(strength: float) -> Distorted:
        distorted = probe.distort(image, strength)
        error = mean_squared_error(distorted, image)
        psnr = psnr_from_mse(error)
        return Distorted(distorted, strength, error, psnr, abs(psnr - target_psnr) <= MATCH_TOLERANCE_DB)

    lower = distorted_at(0.0)
    upper = distorted_at(min(max(probe.first_guess(image, target_mse), 1e-12), ceiling))
    while upper.mse < target_mse and upper.strength < ceiling and not _close(upper, target_psnr, tolerance):
        lower, upper = upper, distorted_at(min(2.0 * upper.strength, ceiling))
    if upper.mse < target_mse:
        return upper
    best = upper
    previous_width = math.inf
    for _ in range(MAX_SEARCH_STEPS):
        if _close(best, target_psnr, tolerance):
            break
        width = upper.strength - lower.strength
        candidate = _log_log_interpolation(lower, upper, target_mse)
        if width > 0.5 * previous_width or not lower.strength < candidate < upper.strength:
            candidate = 0.5 * (lower.strength + upper.strength)
        previous_width = width
        middle = distorted_at(candidate)
        if middle.mse < target_mse:
            lower = middle
        else:
            upper = middle
        if abs(middle.psnr - target_psnr) < abs(best.psnr - target_psnr):
            best = middle
    return best


def _close(result: Distorted, target_psnr: float, tolerance: float) -> bool:
    return abs(result.psnr - target_psnr) <= tolerance


def _log_log_interpolation(lower: Distorted, upper: Distorted, target_mse: float) -> float:
    """The strength where the line through both points in (log s, log MSE) meets the target.

    From ``lower`` at strength 0 (MSE 0) it assumes MSE proportional to s^2.
    """
    if lower.strength <= 0 or lower.mse <= 0:
        return upper.strength * math.sqrt(target_mse / upper.mse)
    if upper.mse <= lower.mse:
        return math.nan
    fraction = math.log(target_mse / lower.mse) / math.log(upper.mse / lower.mse)
    return math.exp(math.log(lower.strength) + fraction * math.log(upper.strength / lower.strength))


def jpeg_compress(image: torch.Tensor, quality: int) -> torch.Tensor:
    """Encode ``image`` (rounded to 8 bits) as a JPEG of ``quality`` (1-95) and decode it: float64."""
    image = _check_image(image)
    check_int("quality", quality, minimum=1, maximum=95)
    pixels = (image.clamp(0, 1) * 255).round().to(torch.uint8).permute(1, 2, 0).cpu().numpy()
    decoded = jpeg_roundtrip_uint8(pixels[..., 0] if pixels.shape[-1] == 1 else pixels, quality)
    decoded = torch.from_numpy(decoded.astype(np.float64) / 255.0).reshape(pixels.shape)
    return decoded.permute(2, 0, 1).contiguous().to(image.device)
