r"""The classic losses: L1, L2, SSIM, MS-SSIM and Zhao et al.'s MS-SSIM + L1 mix.

Every loss is lower-is-better, takes ``(prediction, target)`` of shape (N, C, H, W) with
values nominally in ``[0, data_range]`` (network outputs are not clamped, so the range is not
enforced), and returns () or, with ``reduction="none"``, (N,).

Definitions (per sample, averaged over C, H, W unless said otherwise):

* ``l1`` :math:`|\hat x - x|`, ``l2`` :math:`(\hat x - x)^2`, both on the raw values;
* ``ssim`` :math:`1 - \mathrm{SSIM}` (Wang et al. 2004: 11x11 Gaussian window, sigma 1.5,
  K = (0.01, 0.03), mean over channels), from ``pytorch_msssim``;
* ``msssim`` :math:`1 - \mathrm{MS\text{-}SSIM}` (Wang et al. 2003: 5 scales, weights
  0.0448, 0.2856, 0.3001, 0.2363, 0.1333), from ``pytorch_msssim``. Its 4 downsamplings
  need a side > 16 (w - 1) for a window of width w, i.e. > 160 px for w = 11. Smaller
  inputs keep the 5 scales and sigma = 1.5 and use the widest odd window that fits
  (96 px training patches: w = 5; 48 px: w = 3); below 33 px a ValueError says so;
* ``msssim+l1`` (Zhao et al., "Loss Functions for Image Restoration with Neural Networks",
  IEEE TCI 2017, eq. 9) :math:`\alpha (1 - \mathrm{MS\text{-}SSIM}) + (1 - \alpha)\,
  \overline{G_{\sigma_M} * |\hat x - x|} / \mathrm{data\_range}` with alpha = 0.84 and
  sigma_M = 8 (their coarsest Gaussian), the Gaussian truncated at 3 sigma (49 px, or the
  widest odd width that fits the input) and the mean taken over the valid positions, so the
  L1 term is the per-pixel L1 with borders down-weighted; the MS-SSIM term is ``msssim``.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from .._checks import check_int, check_number
from ..base import PairLoss
from ..functional import (
    MS_SSIM_MIN_SIDE,
    MS_SSIM_MIN_WINDOW,
    SSIM_SIGMA,
    SSIM_WINDOW,
    gaussian_window,
    ms_ssim_value,
    ssim_value,
)

ZHAO_ALPHA = 0.84
ZHAO_L1_SIGMA = 8.0


class L1Loss(PairLoss):
    r"""Mean absolute error :math:`\frac{1}{CHW}\sum |\hat x - x|` per sample."""

    def per_sample(self, prediction: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        return (prediction - target).abs().flatten(1).mean(dim=1)


class L2Loss(PairLoss):
    r"""Mean squared error :math:`\frac{1}{CHW}\sum (\hat x - x)^2` per sample."""

    def per_sample(self, prediction: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        return (prediction - target).square().flatten(1).mean(dim=1)


class SSIMLoss(PairLoss):
    r""":math:`1 - \mathrm{SSIM}(\hat x, x)` (pytorch_msssim; Gaussian window 11, sigma 1.5).

    Inputs need H, W >= ``win_size``. Half-precision inputs are computed in float32.
    """

    min_size_reason = "the SSIM window"

    def __init__(self, *, data_range: float = 1.0, reduction: str = "mean", win_size: int = SSIM_WINDOW,
                 win_sigma: float = SSIM_SIGMA) -> None:
        super().__init__(data_range=data_range, reduction=reduction)
        self.win_size = check_int("win_size", win_size, minimum=1, odd=True)
        self.win_sigma = float(win_sigma)
        self.min_size = win_size

    def per_sample(self, prediction: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        return 1 - ssim_value(prediction, target, self.data_range, self.win_size, self.win_sigma)


class MSSSIMLoss(PairLoss):
    r""":math:`1 - \mathrm{MS\text{-}SSIM}(\hat x, x)`, 5 scales; the window narrows below 161 px.

    H, W >= 33 px (see :func:`ms_ssim_window`). Half-precision inputs are computed in float32.
    """

    min_size = MS_SSIM_MIN_SIDE
    min_size_reason = "5-scale MS-SSIM with a 3-px window"

    def __init__(self, *, data_range: float = 1.0, reduction: str = "mean", win_size: int = SSIM_WINDOW,
                 win_sigma: float = SSIM_SIGMA) -> None:
        super().__init__(data_range=data_range, reduction=reduction)
        self.win_size = check_int("win_size", win_size, minimum=MS_SSIM_MIN_WINDOW, odd=True)
        self.win_sigma = float(win_sigma)

    def per_sample(self, prediction: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        return 1 - ms_ssim_value(prediction, target, self.data_range, self.win_size, self.win_sigma)


def gaussian_weighted_l1(prediction: torch.Tensor, target: torch.Tensor, sigma: float) -> torch.Tensor:
    r"""Mean over valid positions and channels of :math:`G_\sigma * |\hat x - x|`: (N,).

    The Gaussian is truncated at 3 sigma, or to the widest odd width that fits the input.
    """
    error = (prediction - target).abs()
    width = min(2 * math.ceil(3 * sigma) + 1, min(error.shape[-2:]))
    if width % 2 == 0:
        width -= 1
    channels = error.shape[1]
    window = gaussian_window(sigma, width, error.dtype, error.device)
    blurred = F.conv2d(error, window.view(1, 1, 1, -1).expand(channels, 1, 1, width), groups=channels)
    blurred = F.conv2d(blurred, window.view(1, 1, -1, 1).expand(channels, 1, width, 1), groups=channels)
    return blurred.flatten(1).mean(dim=1)


class MSSSIML1Loss(PairLoss):
    r"""Zhao et al.'s mix: :math:`\alpha(1-\mathrm{MS\text{-}SSIM}) + (1-\alpha)\,\overline{G_{\sigma_M} * |\hat x - x|}/R`.

    alpha = 0.84, sigma_M = 8 px, R = ``data_range``. H, W >= 33 px, as :class:`MSSSIMLoss`.
    """

    min_size = MSSSIMLoss.min_size
    min_size_reason = MSSSIMLoss.min_size_reason

    def __init__(self, *, data_range: float = 1.0, reduction: str = "mean", alpha: float = ZHAO_ALPHA,
                 l1_sigma: float = ZHAO_L1_SIGMA) -> None:
        super().__init__(data_range=data_range, reduction=reduction)
        self.alpha = check_number("alpha", alpha, minimum=0, maximum=1)
        self.l1_sigma = check_number("l1_sigma", l1_sigma, positive=True, hint=" (a Gaussian sigma in px)")

    def per_sample(self, prediction: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        structural = 1 - ms_ssim_value(prediction, target, self.data_range)
        pixel = gaussian_weighted_l1(prediction, target, self.l1_sigma) / self.data_range
        return self.alpha * structural + (1 - self.alpha) * pixel.to(structural.dtype)

    def extra_repr(self) -> str:
        return f"alpha={self.alpha:g}, l1_sigma={self.l1_sigma:g}, {super().extra_repr()}"
