r"""Numerical primitives shared by the losses, the metrics and the tools; none owns them.

* :func:`reduce`: per-sample values (N,) to ``"mean"``, ``"sum"`` or ``"none"``;
* :func:`float32_at_least`: half-precision tensors upcast to float32, others unchanged;
* :func:`gaussian_window`: the normalised 1-D Gaussian :math:`g_t \propto e^{-t^2 / 2\sigma^2}`;
* :func:`ssim_value` / :func:`ms_ssim_value`: per-sample SSIM (Wang et al. 2004) and 5-scale
  MS-SSIM (Wang et al. 2003), from ``pytorch_msssim``;
* :func:`jpeg_roundtrip_uint8`: an 8-bit image through libjpeg (Pillow) and back.

``pytorch_msssim`` and Pillow are imported only when called, so ``import mdfloss`` stays light.
"""

from __future__ import annotations

import functools
import io

import numpy as np
import torch

REDUCTIONS = ("mean", "sum", "none")

SSIM_WINDOW = 11
SSIM_SIGMA = 1.5
MS_SSIM_WEIGHTS = (0.0448, 0.2856, 0.3001, 0.2363, 0.1333)
MS_SSIM_MIN_WINDOW = 3
MS_SSIM_MIN_SIDE = 16 * (MS_SSIM_MIN_WINDOW - 1) + 1
"""5-scale MS-SSIM downsamples 4 times and needs the smallest window to fit: 33 px."""


def reduce(per_sample: torch.Tensor, reduction: str) -> torch.Tensor:
    """``"mean"`` -> (), ``"sum"`` -> (), ``"none"`` -> ``per_sample`` itself (N,)."""
    if reduction == "mean":
        return per_sample.mean()
    if reduction == "sum":
        return per_sample.sum()
    return per_sample


def float32_at_least(x: torch.Tensor) -> torch.Tensor:
    """float16 and bfloat16 as float32 (distances are summed over millions of values); others as they are."""
    return x.float() if x.dtype in (torch.float16, torch.bfloat16) else x


@functools.lru_cache(maxsize=64)
def gaussian_window(sigma: float, width: int, dtype: torch.dtype = torch.float64,
                    device: torch.device | str = "cpu") -> torch.Tensor:
    """Normalised 1-D Gaussian of ``width`` (odd) taps centred on the middle one: (width,).

    Computed in float64, then cast. Cached per (sigma, width, dtype, device), so a training
    loop builds it once; callers must not modify it.
    """
    taps = torch.arange(width, dtype=torch.float64) - width // 2
    window = torch.exp(-taps.square() / (2 * sigma**2))
    return (window / window.sum()).to(device=device, dtype=dtype)


def ssim_value(prediction: torch.Tensor, target: torch.Tensor, data_range: float,
               win_size: int = SSIM_WINDOW, win_sigma: float = SSIM_SIGMA) -> torch.Tensor:
    """Per-sample SSIM averaged over channels, from pytorch_msssim, in at least float32: (N,)."""
    from pytorch_msssim import ssim

    with torch.autocast(prediction.device.type, enabled=False):
        return ssim(float32_at_least(prediction), float32_at_least(target), data_range=data_range,
                    size_average=False, win_size=win_size, win_sigma=win_sigma)


def ms_ssim_window(side: int, win_size: int = SSIM_WINDOW) -> int:
    """Widest odd window <= ``win_size`` that 5-scale MS-SSIM accepts for ``side`` px: side > 16 (w - 1)."""
    fitting = min(win_size, (side - 1) // 16 + 1)
    if fitting % 2 == 0:
        fitting -= 1
    if fitting < MS_SSIM_MIN_WINDOW:
        raise ValueError(
            f"prediction: expected height and width of at least {MS_SSIM_MIN_SIDE} px for 5-scale MS-SSIM "
            f"(4 downsamplings of a {MS_SSIM_MIN_WINDOW}-px window), got a smallest side of {side} px; "
            "use ssim for smaller images"
        )
    return fitting


def ms_ssim_value(prediction: torch.Tensor, target: torch.Tensor, data_range: float,
                  win_size: int = SSIM_WINDOW, win_sigma: float = SSIM_SIGMA) -> torch.Tensor:
    """Per-sample 5-scale MS-SSIM from pytorch_msssim, with the window narrowed for small inputs: (N,)."""
    from pytorch_msssim import ms_ssim

    window = ms_ssim_window(min(prediction.shape[-2:]), win_size)
    with torch.autocast(prediction.device.type, enabled=False):
        return ms_ssim(
            float32_at_least(prediction), float32_at_least(target), data_range=data_range,
            size_average=False, win_size=window, win_sigma=win_sigma, weights=list(MS_SSIM_WEIGHTS),
        )


def jpeg_roundtrip_uint8(pixels: np.ndarray, quality: int) -> np.ndarray:
    """uint8 (H, W, 3) or (H, W) through Pillow's JPEG encoder (4:2:0 chroma) and decoder: same shape."""
    from PIL import Image

    encoded = io.BytesIO()
    Image.fromarray(pixels).save(encoded, format="JPEG", quality=int(quality))
    encoded.seek(0)
    with Image.open(encoded) as decoded:
        return np.asarray(decoded)
