r"""Per-image quality metrics of the benchmark (higher is better except MDSI and LPIPS).

Inputs are (N, 3, H, W) in [0, 1]. The benchmark measures the network's output after clamping
to [0, 1] and rounding to 8 bits, i.e. exactly the PNG it saves, and drops ``crop_border``
pixels on every side first (the scale factor for super-resolution, as is customary).

* ``psnr``: :math:`10 \log_{10}(1 / \mathrm{MSE})` over the RGB values;
* ``psnr_y``: the same on the luma of ITU-R BT.601 in studio range, as MATLAB's ``rgb2ycbcr``:
  :math:`Y = (16 + 65.481 R + 128.553 G + 24.966 B) / 255`;
* ``ssim``: SSIM (Gaussian window 11, sigma 1.5) on RGB, averaged over channels (pytorch_msssim);
* ``ms_ssim``: 5-scale MS-SSIM on RGB (pytorch_msssim; the window narrows below 161 px, see
  :func:`mdfloss.functional.ms_ssim_window`);
* ``haarpsi``, ``dss``, ``mdsi``: HaarPSI, DSS and MDSI (:mod:`mdfloss.metrics.haarpsi`, ``dss``,
  ``mdsi``), perceptual metrics that need no learned weights; MDSI is lower-is-better. They
  compare structure locally and so, like PSNR, punish misaligned or hallucinated detail that a
  person may accept (PIPAL, Jinjin et al. 2020): read them beside LPIPS when it is available;
* ``lpips``: LPIPS with the VGG trunk (:class:`mdfloss.losses.perceptual.LPIPSVGGLoss`), lower is
  better, only when its ImageNet and head weights are available.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch

from .._checks import check_int
from ..functional import MS_SSIM_MIN_SIDE, ms_ssim_value, ssim_value
from .dss import dss, pooled_count
from .haarpsi import MIN_SIZE as HAARPSI_MIN_SIZE
from .haarpsi import haarpsi
from .mdsi import mdsi

METRICS = ("psnr", "psnr_y", "ssim", "ms_ssim", "haarpsi", "dss", "mdsi", "lpips")
HIGHER_IS_BETTER = {"psnr": True, "psnr_y": True, "ssim": True, "ms_ssim": True, "haarpsi": True, "dss": True,
                    "mdsi": False, "lpips": False}
LABELS = {"psnr": "PSNR [dB]", "psnr_y": "PSNR-Y [dB]", "ssim": "SSIM", "ms_ssim": "MS-SSIM", "haarpsi": "HaarPSI",
          "dss": "DSS", "mdsi": "MDSI", "lpips": "LPIPS"}
_Y_WEIGHTS = (65.481, 128.553, 24.966)
DSS_PERCENTILE = 0.05
"""DSS pools its worst 5 % of 8x8 blocks: images of fewer than 10 blocks get NaN, as MS-SSIM below 33 px."""


def quantize(x: torch.Tensor) -> torch.Tensor:
    """Clamp to [0, 1] and round to the nearest of 256 levels, as saving an 8-bit PNG does."""
    return x.clamp(0, 1).mul(255).round().div(255)


def crop_border(x: torch.Tensor, border: int) -> torch.Tensor:
    return x[..., border : x.shape[-2] - border, border : x.shape[-1] - border] if border else x


def rgb_to_y(x: torch.Tensor) -> torch.Tensor:
    """BT.601 studio-range luma in [16/255, 235/255]: (N, 3, H, W) -> (N, 1, H, W)."""
    weights = x.new_tensor(_Y_WEIGHTS).view(1, 3, 1, 1)
    return (16 + (x * weights).sum(dim=1, keepdim=True)) / 255


def psnr(prediction: torch.Tensor, target: torch.Tensor, data_range: float = 1.0) -> torch.Tensor:
    """Per-image PSNR in dB: (N,); infinite for identical images."""
    mse = (prediction - target).double().square().flatten(1).mean(dim=1)
    return 10 * torch.log10(data_range**2 / mse)


def psnr_y(prediction: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """PSNR of the BT.601 luma: (N,)."""
    return psnr(rgb_to_y(prediction), rgb_to_y(target))


def ssim(prediction: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Per-image SSIM averaged over channels (window 11, sigma 1.5), the SSIM loss's definition: (N,)."""
    return ssim_value(prediction, target, 1.0)


def ms_ssim(prediction: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Per-image 5-scale MS-SSIM: (N,)."""
    return ms_ssim_value(prediction, target, 1.0)


class ImageMetrics:
    """Computes every metric of one restored image against its reference.

    ``lpips`` is a callable returning per-image distances (N,), or None when unavailable.
    """

    def __init__(self, *, crop: int = 0, lpips: Callable[[torch.Tensor, torch.Tensor], torch.Tensor] | None = None) -> None:
        self.crop = check_int("eval.crop_border", crop, minimum=0)
        self.lpips = lpips

    @torch.no_grad()
    def __call__(self, prediction: torch.Tensor, target: torch.Tensor) -> dict[str, float | None]:
        """(1, 3, H, W) pair -> {metric: value}; ``prediction`` is quantized first."""
        if prediction.shape != target.shape or prediction.shape[0] != 1:
            raise ValueError(
                f"prediction and target: expected one image each of the same shape, got {tuple(prediction.shape)} "
                f"and {tuple(target.shape)}"
            )
        p = crop_border(quantize(prediction.float()), self.crop)
        t = crop_border(target.float(), self.crop)
        values: dict[str, float | None] = {
            "psnr": float(psnr(p, t)[0]),
            "psnr_y": float(psnr_y(p, t)[0]),
            "ssim": float(ssim(p, t)[0]),
            "ms_ssim": float(ms_ssim(p, t)[0]) if min(p.shape[-2:]) >= MS_SSIM_MIN_SIDE else math.nan,
            "haarpsi": float(haarpsi(p, t, reduction="none")[0]) if min(p.shape[-2:]) >= HAARPSI_MIN_SIZE else math.nan,
            "dss": float(dss(p, t, reduction="none")[0]) if pooled_count(*p.shape[-2:], DSS_PERCENTILE) else math.nan,
            "mdsi": float(mdsi(p, t, reduction="none")[0]),
            "lpips": float(self.lpips(p, t).reshape(-1)[0]) if self.lpips is not None else None,
        }
        return values
