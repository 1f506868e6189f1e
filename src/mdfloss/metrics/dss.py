r"""DSS: the DCT subband similarity index (Balanov et al. 2015).

Reference: A. Balanov, A. Schwartz, Y. Moshe and N. Peleg, "Image quality assessment based on
DCT subband similarity", *2015 IEEE International Conference on Image Processing (ICIP)*,
pp. 2105-2109, DOI `10.1109/ICIP.2015.7351172 <https://doi.org/10.1109/ICIP.2015.7351172>`_.
Written from the paper and the conventions of the authors' MATLAB code (``dss_index.m``, Y.
Moshe, SIPL Technion).

Definition. Images are scaled to [0, 255]; colour images are reduced to their luminance
:math:`Y = 0.299R + 0.587G + 0.114B`, grey images are used as they are. The image is cropped to
a multiple of 8 (bottom/right) and cut into 8 x 8 blocks; the orthonormal 2-D DCT-II of every
block gives 64 subband images :math:`X_{mn}` (coefficient (m, n) of every block, size
H/8 x W/8). Local statistics use a 3 x 3 Gaussian window (sigma 1.5, zero padding):
:math:`\sigma^2_x, \sigma^2_y` (clamped at 0) and :math:`\sigma_{xy}`. Per subband

.. math::

    s_{mn} = \mathcal{P}\left[\frac{2\sigma_x\sigma_y + C_{mn}}{\sigma_x^2 + \sigma_y^2 + C_{mn}}\right]
    \cdot \begin{cases}
        \mathcal{P}\left[\dfrac{\sigma_{xy} + C_{00}}{\sigma_x\sigma_y + C_{00}}\right] & (m, n) = (0, 0)\ \text{(DC)}\\
        1 & \text{otherwise (AC)}
    \end{cases}

where :math:`\mathcal{P}` is the mean of the worst (smallest) :math:`k = \mathrm{round}(p \cdot n)`
of the n values of the map (p = 5 %, MATLAB rounding: halves up), and

.. math::

    \mathrm{DSS}(x, y) = \frac{\sum_{m,n} w_{mn}\, s_{mn}}{\sum_{m,n} w_{mn}}, \qquad
    w_{mn} = e^{-\left((m + \frac12)^2 + (n + \frac12)^2\right) / (2\sigma_w^2)}\ (m, n = 0..7),

with the weights below 0.01 set to 0 (17 of the 64 subbands are used).

Defaults: :math:`C_{00} = 1000` (DC), :math:`C_{mn} = 300` (AC), :math:`\sigma_w = 1.55`,
p = 0.05, 8 x 8 DCT, 3 x 3 Gaussian of sigma 1.5 (the paper's). **Higher is better**; at most 1,
exactly 1 for identical images. DSS is symmetric in ``x`` and ``y``.

Numerics: the local covariance is clamped to the Cauchy-Schwarz bound
:math:`|\sigma_{xy}| \le \sigma_x\sigma_y` that it satisfies exactly in real arithmetic
(rounding can break it where the variances are ~0; this is what makes identical inputs give
exactly 1). The DC statistics involve squares of values up to 8 * 255, so float32 inputs are
computed in float64 here (float16/bfloat16/float32 in, float32 out): in float32 the
cancellation in :math:`E[x^2] - E[x]^2` alone costs ~1e-4 relative on the DC term.

Differentiable almost everywhere (sorting for the pooling is differentiable in the values;
:math:`\sigma_x\sigma_y` is not differentiable where a local variance is 0, where the gradient
through it is taken as 0).

Against piq 0.8's ``dss``: piq rounds k with Python's ``round`` (halves to even: n = 10, 50,
90, ... blocks differ), adds ``eps`` to every normalised weight (a bias up to 17 * eps) and keeps
the subband scores in float32 even for float64 inputs; otherwise the definitions agree.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from mdfloss._checks import check_number
from mdfloss.functional import reduce
from mdfloss.metrics._colour import (
    check_arguments,
    gaussian_kernel,
    luma,
    no_autocast,
    round_half_away,
    safe_sqrt,
    to_255,
)

HIGHER_IS_BETTER = True
PERFECT_VALUE = 1.0
DCT_SIZE = 8
WEIGHT_THRESHOLD = 1e-2
C_DC, C_AC = 1000.0, 300.0
WINDOW_SIZE, WINDOW_SIGMA = 3, 1.5

__all__ = ["DCT_SIZE", "HIGHER_IS_BETTER", "PERFECT_VALUE", "dss", "pooled_count", "subband_weights"]


def dct_matrix(size: int, *, dtype: torch.dtype = torch.float64, device: torch.device | str = "cpu") -> torch.Tensor:
    """Orthonormal DCT-II matrix D (MATLAB's ``dctmtx``): a block B transforms to D B D^T."""
    k = torch.arange(size, dtype=torch.float64)[:, None]
    i = torch.arange(size, dtype=torch.float64)[None, :]
    d = torch.cos(math.pi * (2 * i + 1) * k / (2 * size)) * math.sqrt(2.0 / size)
    d[0] = math.sqrt(1.0 / size)
    return d.to(dtype=dtype, device=device)


def subband_weights(sigma_weight: float = 1.55) -> torch.Tensor:
    """(8, 8) float64 weights w_mn, 0 below the threshold (not normalised)."""
    t = (torch.arange(DCT_SIZE, dtype=torch.float64) + 0.5) ** 2
    w = torch.exp(-(t[:, None] + t[None, :]) / (2 * sigma_weight**2))
    return torch.where(w < WEIGHT_THRESHOLD, torch.zeros_like(w), w)


def pooled_count(height: int, width: int, percentile: float = 0.05) -> int:
    """How many worst values of each subband map are averaged (MATLAB ``round``)."""
    return round_half_away(percentile * (height // DCT_SIZE) * (width // DCT_SIZE))


def _worst_mean(values: torch.Tensor, k: int) -> torch.Tensor:
    """Mean of the k smallest values over the last dim."""
    return torch.topk(values, k, dim=-1, largest=False, sorted=False).values.mean(dim=-1)


def dss(
    x: torch.Tensor,
    y: torch.Tensor,
    data_range: float = 1.0,
    reduction: str = "mean",
    *,
    sigma_weight: float = 1.55,
    percentile: float = 0.05,
) -> torch.Tensor:
    """DSS between ``x`` and ``y`` (symmetric; the formula is in the module docstring).

    Args:
        x, y: (N, 3, H, W) RGB or (N, 1, H, W) grey floating tensors in [0, data_range]. H and
            W >= 8, and enough 8 x 8 blocks that round(percentile * blocks) >= 1 (at least 10
            blocks with the default 5 %, e.g. 40 x 16).
        data_range: the value of white (1.0 or 255.0, ...).
        reduction: ``"mean"`` | ``"sum"`` over the batch, or ``"none"`` for (N,) values.
        sigma_weight: spread of the Gaussian subband weighting (paper: 1.55).
        percentile: fraction in (0, 1] of the worst local scores pooled (paper: 0.05).

    Returns:
        A 0-D tensor (mean/sum) or (N,) tensor (none), at most 1 and 1 for identical images.
        float64 for float64 inputs, float32 otherwise (computed in float64). Higher is better.

    Raises:
        TypeError, ValueError: for a bad argument, naming it.
    """
    check_number("percentile", percentile, positive=True, maximum=1)
    check_arguments(
        x, y, data_range=data_range, reduction=reduction, positive={"sigma_weight": sigma_weight}, channels=(1, 3),
        min_size=DCT_SIZE, min_size_reason="one 8x8 DCT block",
    )
    h, w = x.shape[-2:]
    k = pooled_count(h, w, percentile)
    if k < 1:
        blocks = (h // DCT_SIZE) * (w // DCT_SIZE)
        raise ValueError(
            f"x: expected enough 8x8 DCT blocks to pool round({percentile:g} * blocks) >= 1 worst scores, "
            f"got {blocks} blocks from height {h} and width {w} (use at least {math.ceil(0.5 / percentile)} blocks, "
            "e.g. 40x16 px for the default percentile)"
        )
    out_dtype = torch.float64 if x.dtype == torch.float64 else torch.float32
    dtype = torch.float64
    device = x.device
    with no_autocast(device):
        n = x.shape[0]
        hb, wb = h // DCT_SIZE, w // DCT_SIZE
        weights = subband_weights(sigma_weight)
        used = weights.flatten().nonzero().flatten().to(device)  # DC (index 0) first
        d = dct_matrix(DCT_SIZE, dtype=dtype, device=device)

        def subbands(img: torch.Tensor) -> torch.Tensor:
            """(N, S, hb, wb): the used DCT coefficients of every 8x8 block of the luminance."""
            lum = luma(to_255(img, data_range, dtype))[:, 0, : hb * DCT_SIZE, : wb * DCT_SIZE]
            blocks = lum.reshape(n, hb, DCT_SIZE, wb, DCT_SIZE)
            # coefficient (u, v) of a block B: sum_ij D[u, i] B[i, j] D[v, j]
            coeff = torch.einsum("ui,nairj,vj->nuvar", d, blocks, d)
            return coeff.reshape(n, DCT_SIZE * DCT_SIZE, hb, wb)[:, used]

        # x and y in separate calls of the same shape: a batched GEMM may round equal blocks
        # differently at different batch positions, and identical images must give exactly 1
        sub = torch.cat([subbands(x), subbands(y)])  # (2N, S, hb, wb)
        s = sub.shape[1]
        g = gaussian_kernel(WINDOW_SIZE, WINDOW_SIGMA, dtype=torch.float64, device="cpu")
        g1 = (g.sum(dim=1) / g.sum()).tolist()  # the 3x3 Gaussian is separable: g = g1 g1^T

        def local_mean(t: torch.Tensor) -> torch.Tensor:
            # zero padding, explicit shifted sums: every pixel is computed the same way, so equal
            # inputs give bit-equal outputs wherever they sit in the batch (a conv need not)
            t = F.pad(t, (1, 1, 1, 1))
            t = g1[0] * t[..., :-2, :] + g1[1] * t[..., 1:-1, :] + g1[2] * t[..., 2:, :]
            return g1[0] * t[..., :-2] + g1[1] * t[..., 1:-1] + g1[2] * t[..., 2:]

        sx, sy = sub[:n], sub[n:]
        mu = local_mean(sub)
        mx, my = mu[:n], mu[n:]
        # x^2, y^2 and xy in one call, so that x == y gives bit-identical variance and covariance
        sq = local_mean(torch.cat([sub * sub, sx * sy]))
        vx = (sq[:n] - mx * mx).clamp_min(0)
        vy = (sq[n : 2 * n] - my * my).clamp_min(0)
        sd_xy = safe_sqrt(vx * vy)
        c = torch.full((s, 1, 1), C_AC, dtype=dtype, device=device)
        c[0] = C_DC
        left = (2 * sd_xy + c) / (vx + vy + c)
        sims = _worst_mean(left.flatten(2), k)  # (N, S)
        bound = sd_xy[:, 0]
        cov = sq[2 * n :, 0] - mx[:, 0] * my[:, 0]
        cov = torch.minimum(torch.maximum(cov, -bound), bound)  # Cauchy-Schwarz
        right = (cov + C_DC) / (bound + C_DC)
        dc = sims[:, 0] * _worst_mean(right.flatten(1), k)
        sims = torch.cat([dc[:, None], sims[:, 1:]], dim=1)
        w_used = weights.flatten()[used].to(device=device, dtype=dtype)
        # 1 - weighted loss rather than the weighted mean: exactly 1 when every s_mn is 1
        score = 1 - ((1 - sims) * w_used).sum(dim=1) / w_used.sum()
    return reduce(score.to(out_dtype), reduction)
