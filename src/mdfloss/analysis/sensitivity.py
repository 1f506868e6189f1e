r"""Loss sensitivity at matched PSNR: which distortions does a loss penalise most?

Every image is distorted by each probe of :mod:`.probes` at each target PSNR, and by JPEG at a
few qualities; every loss is evaluated on every (distorted, reference) pair. Since all probes at
one level have the same MSE, a loss that only measured the error energy (L2) would give them all
the same value; what a loss adds on top of the MSE is its preference.

The ratio table compares distortions per unit of MSE against a brightness shift:

.. math::

    r_\ell(d) = \operatorname{median}_{\text{images}}
        \frac{\ell(d) / \mathrm{MSE}(d)}{\ell(b_{L}) / \mathrm{MSE}(b_{L})}

with :math:`b_L` the brightness shift at the reference level ``L`` (30 dB by default) and ``d``
any probe at ``L`` or any JPEG quality (whose MSE differs, hence "per unit of MSE"). The L2
loss gives 1 everywhere; a ratio above 1 means the loss penalises ``d`` more than an equally
strong change of brightness.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from .._files import read_rgb
from .probes import (
    JPEG,
    BrightnessShift,
    jpeg_compress,
    match_psnr,
    matched_probes,
    mean_squared_error,
    psnr_from_mse,
)

DEFAULT_LEVELS = (20.0, 25.0, 30.0, 35.0, 40.0)
DEFAULT_JPEG_QUALITIES = (10, 30, 50, 70, 90)
FITS = ("resize", "crop")
MIN_SIDE = 11
"""The MDF discriminators' receptive field and the SSIM window."""
REFERENCE_DISTORTION = BrightnessShift.name

Loss = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


def condition_name(distortion: str, parameter: float) -> str:
    """Column name in the ratio table: the probe name, or ``jpeg q10`` for JPEG at quality 10."""
    return f"{JPEG} q{int(parameter)}" if distortion == JPEG else distortion


@dataclass(frozen=True)
class Sample:
    """One distorted version of a reference image.

    ``target_psnr`` is NaN for JPEG, whose ``parameter`` is the quality.
    """

    image_name: str
    distortion: str
    target_psnr: float
    achieved_psnr: float
    mse: float
    parameter: float
    matched: bool
    image: torch.Tensor


@dataclass(frozen=True)
class Measurement:
    """One loss value: a row of the CSV."""

    loss: str
    image: str
    distortion: str
    target_psnr: float
    achieved_psnr: float
    mse: float
    value: float
    parameter: float
    matched: bool

    @property
    def condition(self) -> str:
        return condition_name(self.distortion, self.parameter)


@dataclass(frozen=True)
class Ratio:
    """Median, minimum and maximum of a per-image ratio, over ``count`` images."""

    median: float
    low: float
    high: float
    count: int


def load_image(path: str | Path, size: int, fit: str = "resize") -> torch.Tensor:
    """An RGB image as a (3, S, S) float64 tensor in [0, 1], S = min(size, shorter side after fitting).

    ``fit="resize"``: Lanczos-downscale so the shorter side is ``size`` (never upscale), then
    centre-crop the longer side; ``fit="crop"``: centre-crop ``size`` x ``size`` at native resolution.
    """
    from PIL import Image

    if fit not in FITS:
        raise ValueError(f"fit: expected one of {FITS}, got {fit!r}")
    picture = Image.fromarray(read_rgb(path))
    width, height = picture.size
    if fit == "resize" and min(width, height) > size:
        scale = size / min(width, height)
        width, height = max(size, round(width * scale)), max(size, round(height * scale))
        picture = picture.resize((width, height), Image.Resampling.LANCZOS)
    side = min(size, width, height)
    if side < MIN_SIDE:
        raise ValueError(
            f"images: expected images of at least {MIN_SIDE} x {MIN_SIDE} px, got {width} x {height} in {path}"
        )
    left, top = (width - side) // 2, (height - side) // 2
    picture = picture.crop((left, top, left + side, top + side))
    pixels = torch.from_numpy(np.asarray(picture, dtype=np.float64) / 255.0)
    return pixels.permute(2, 0, 1).contiguous()


def distort(
    name: str,
    image: torch.Tensor,
    levels: Sequence[float] = DEFAULT_LEVELS,
    jpeg_qualities: Sequence[int] = DEFAULT_JPEG_QUALITIES,
    seed: int = 0,
) -> list[Sample]:
    """Every probe at every level, then JPEG at every quality, for one (C, H, W) image in [0, 1]."""
    samples = []
    for probe in matched_probes(seed):
        for level in levels:
            result = match_psnr(image, probe, level)
            samples.append(Sample(name, probe.name, float(level), result.psnr, result.mse, result.strength,
                                  result.matched, result.image))
    for quality in jpeg_qualities:
        compressed = jpeg_compress(image, quality)
        error = mean_squared_error(compressed, image)
        samples.append(Sample(name, JPEG, math.nan, psnr_from_mse(error), error, float(quality), True, compressed))
    return samples


def measure_losses(
    losses: dict[str, Loss], reference: torch.Tensor, samples: Sequence[Sample], device: str | torch.device = "cpu"
) -> list[Measurement]:
    """Every loss on every (sample, reference) pair, one pair at a time, without autograd.

    ``reference`` is the (C, H, W) image the ``samples`` were made from; each loss gets
    (1, C, H, W) float32 tensors on ``device``.
    """
    measurements = []
    with torch.inference_mode():
        target = reference[None].to(device=device, dtype=torch.float32)
        predictions = [sample.image[None].to(device=device, dtype=torch.float32) for sample in samples]
        for label, loss in losses.items():
            for sample, prediction in zip(samples, predictions):
                value = float(loss(prediction, target))
                measurements.append(Measurement(
                    label, sample.image_name, sample.distortion, sample.target_psnr, sample.achieved_psnr,
                    sample.mse, value, sample.parameter, sample.matched,
                ))
    return measurements


def per_unit_mse_ratios(measurements: Iterable[Measurement], level: float) -> dict[str, dict[str, Ratio]]:
    """``{loss: {condition: Ratio}}``: (value / MSE) over that of the brightness shift at ``level``.

    Conditions are the probes at ``level`` and every JPEG quality; images whose brightness value
    is 0 or not finite are left out.
    """
    per_unit: dict[tuple[str, str], float] = {}
    rows = list(measurements)
    for row in rows:
        if row.distortion == REFERENCE_DISTORTION and row.target_psnr == level and row.mse > 0:
            per_unit[row.loss, row.image] = row.value / row.mse
    collected: dict[str, dict[str, list[float]]] = {}
    for row in rows:
        if row.distortion != JPEG and row.target_psnr != level:
            continue
        reference = per_unit.get((row.loss, row.image))
        if reference is None or not math.isfinite(reference) or reference == 0 or row.mse <= 0:
            continue
        ratio = (row.value / row.mse) / reference
        if math.isfinite(ratio):
            collected.setdefault(row.loss, {}).setdefault(row.condition, []).append(ratio)
    return {
        loss: {
            condition: Ratio(statistics.median(values), min(values), max(values), len(values))
            for condition, values in conditions.items()
        }
        for loss, conditions in collected.items()
    }
