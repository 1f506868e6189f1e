r"""MDSI: the mean deviation similarity index (Nafchi et al. 2016).

Reference: H. Ziaei Nafchi, A. Shahkolaei, R. Hedjam and M. Cheriet, "Mean deviation similarity
index: efficient and reliable full-reference image quality evaluator", *IEEE Access* 4 (2016)
5579-5590, DOI `10.1109/ACCESS.2016.2604042 <https://doi.org/10.1109/ACCESS.2016.2604042>`_.
Written from the paper and the conventions of the authors' MATLAB code (``MDSI.m``).

**Direction: lower is better.** This module returns MDSI as originally defined: 0 for identical
images (exactly), growing with the distortion (typically < 0.6). ``HIGHER_IS_BETTER = False``.
Use ``mdsi(x, y)`` directly as a loss; for a higher-is-better score use ``1 - mdsi(x, y)``.

Definition. MDSI is defined for RGB images only. Images are scaled to [0, 255] and, when
:math:`f = \max(1, \mathrm{round}(\min(H, W) / 256)) > 1` (MATLAB rounding: halves up), averaged
over f x f windows and subsampled by f (``conv2(..., 'same')`` conventions, zero padding). They
go to the LHM space (L = 0.2989R + 0.587G + 0.114B, H = 0.30R + 0.04G - 0.35B,
M = 0.34R - 0.60G + 0.17B). With :math:`G_{ref}, G_{dist}, G_a` the Prewitt gradient magnitudes (3 x 3,
zero padding) of the reference's and the distorted image's L and of their mean:

.. math::

    \mathrm{GS} = S(G_{ref}, G_{dist}; C_1) + S(G_{ref}, G_a; C_2) - S(G_{dist}, G_a; C_2), \qquad
    S(a, b; C) = \frac{2ab + C}{a^2 + b^2 + C},

.. math::

    \mathrm{CS} = \frac{2(H_x H_y + M_x M_y) + C_3}{H_x^2 + H_y^2 + M_x^2 + M_y^2 + C_3}, \qquad
    \mathrm{GCS} = \alpha\, \mathrm{GS} + (1 - \alpha)\, \mathrm{CS}
    \quad \text{or (multiplication)} \quad \mathrm{GCS} = \mathrm{GS}^{\gamma}\, \mathrm{CS}^{\beta},

.. math::

    \mathrm{MDSI} = \left( \frac{1}{P}\sum_{p=1}^{P} \left| \mathrm{GCS}_p^{\,q}
        - \frac{1}{P}\sum_{p'=1}^{P} \mathrm{GCS}_{p'}^{\,q} \right|^{\rho} \right)^{o/\rho},

where GS and CS can be negative, so powers are principal complex powers and :math:`|\cdot|` is
the complex modulus. Defaults (the paper's): summation, :math:`C_1 = 140, C_2 = 55, C_3 = 550`,
:math:`\alpha = 0.6`, q = 0.25, :math:`\rho = 1`, o = 0.25; multiplication:
:math:`\gamma = 0.2, \beta = 0.1`.

MDSI is *not* symmetric: the fusion term :math:`S(G_{dist}, G_a) - S(G_{ref}, G_a)` changes
sign when the images are swapped (CS and :math:`S(G_x, G_y)` are symmetric). The fusion terms
have the roles of the authors' ``MDSI.m`` (the distorted image's gets the +; the formula as
usually transcribed from the paper has them the other way round): with ``x`` the distorted image
(the prediction) and ``y`` the reference (the target), as for every loss of this library,
:math:`\mathrm{GS} = S(G_x, G_y; C_1) + S(G_x, G_a; C_2) - S(G_y, G_a; C_2)`, and ``mdsi(x, y)``
equals the authors' ``MDSI(y, x)`` (reference first) and piq's ``mdsi(x, y)``.

Differentiable almost everywhere; at the non-smooth points (a zero gradient magnitude, GCS =
0, a pixel whose deviation is 0, and a total deviation of 0, i.e. a perfect match, where
:math:`t^{o}` has an infinite slope) autograd gets a 0 gradient instead of Inf/NaN.

Numerics: the deviation is computed about the first pixel's value before the mean is removed
(mathematically the same), so a constant GCS map gives exactly 0.

Against piq 0.8's ``mdsi``: piq computes f with Python's ``round`` (halves to even: sizes
640 - 767, 1152 - 1279, ... differ) and accepts grey images by copying the channel three times
(with a warning); this module refuses grey input, as MDSI defines no grey variant.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from mdfloss._checks import check_number
from mdfloss.functional import reduce
from mdfloss.metrics._colour import (
    LHM,
    check_arguments,
    colour_transform,
    no_autocast,
    round_half_away,
    safe_pow,
    safe_sqrt,
    similarity,
    to_255,
    working_dtype,
)

HIGHER_IS_BETTER = False
PERFECT_VALUE = 0.0
MIN_SIZE = 3  # the 3 x 3 Prewitt operator

__all__ = ["HIGHER_IS_BETTER", "MIN_SIZE", "PERFECT_VALUE", "downsampling_factor", "mdsi"]


def downsampling_factor(height: int, width: int) -> int:
    """f = max(1, round(min(H, W) / 256)) with MATLAB rounding."""
    return max(1, round_half_away(min(height, width) / 256))


def _prewitt_magnitude(lum: torch.Tensor) -> torch.Tensor:
    kernel = torch.tensor([[-1.0, 0.0, 1.0]] * 3, dtype=lum.dtype, device=lum.device) / 3
    bank = torch.stack([kernel, kernel.t()])[:, None]
    g = F.conv2d(lum, bank, padding=1)
    return safe_sqrt(g[:, :1] * g[:, :1] + g[:, 1:] * g[:, 1:])


def _principal_power(t: torch.Tensor, exponent: float) -> tuple[torch.Tensor, torch.Tensor]:
    """t ** exponent of a real tensor as (modulus, phase): |t|^e and e*pi where t < 0, else 0."""
    phase = torch.where(t < 0, torch.full_like(t, exponent * math.pi), torch.zeros_like(t))
    return safe_pow(t.abs(), exponent), phase


def mdsi(
    x: torch.Tensor,
    y: torch.Tensor,
    data_range: float = 1.0,
    reduction: str = "mean",
    *,
    combination: str = "sum",
    c1: float = 140.0,
    c2: float = 55.0,
    c3: float = 550.0,
    alpha: float = 0.6,
    beta: float = 0.1,
    gamma: float = 0.2,
    q: float = 0.25,
    rho: float = 1.0,
    o: float = 0.25,
) -> torch.Tensor:
    """MDSI of the distorted ``x`` against the reference ``y`` (formula in the module docstring).

    Args:
        x: distorted (N, 3, H, W) RGB floating tensor in [0, data_range], H and W >= 3.
            float16/bfloat16 are computed in float32.
        y: the reference, same shape, dtype kind and device.
        data_range: the value of white (1.0 or 255.0, ...).
        reduction: ``"mean"`` | ``"sum"`` over the batch, or ``"none"`` for (N,) values.
        combination: ``"sum"`` (alpha GS + (1 - alpha) CS, the paper's default) or ``"mult"``
            (GS^gamma CS^beta).
        c1, c2, c3: the constants of the gradient and chromaticity similarities on the [0, 255]
            scale (paper: 140, 55, 550).
        alpha: weight of the gradient similarity in the summation (paper: 0.6).
        beta, gamma: the exponents of CS and GS in the multiplication (paper: 0.1, 0.2).
        q, rho, o: the exponents of the deviation pooling (paper: 0.25, 1, 0.25).

    Returns:
        A 0-D tensor (mean/sum) or (N,) tensor (none), >= 0, exactly 0 for identical images.
        float64 for float64 inputs, float32 otherwise. **Lower is better.**

    Raises:
        TypeError, ValueError: for a bad argument, naming it (grey input included).
    """
    check_number("alpha", alpha, minimum=0, maximum=1)
    if combination not in ("sum", "mult"):
        raise ValueError(f"combination: expected 'sum' or 'mult', got {combination!r}")
    if isinstance(x, torch.Tensor) and x.ndim == 4 and x.shape[1] == 1:
        raise ValueError(
            f"x: expected an RGB image (N, 3, H, W); MDSI is defined for colour images only, got a grey image of "
            f"shape {tuple(x.shape)} (repeat the channel, x.expand(-1, 3, -1, -1), to evaluate it as grey RGB)"
        )
    check_arguments(
        x, y, data_range=data_range, reduction=reduction,
        positive={"c1": c1, "c2": c2, "c3": c3, "beta": beta, "gamma": gamma, "q": q, "rho": rho, "o": o},
        channels=(3,),
        min_size=MIN_SIZE, min_size_reason="the 3x3 Prewitt operator",
    )
    dtype = working_dtype(x)
    with no_autocast(x.device):
        n = x.shape[0]
        both = to_255(torch.cat([x, y]), data_range, dtype)
        f = downsampling_factor(*both.shape[-2:])
        if f > 1:
            both = F.avg_pool2d(F.pad(both, ((f - 1) // 2, f // 2, (f - 1) // 2, f // 2)), f)
        lhm = colour_transform(both, LHM)
        lum = lhm[:, :1]
        # separate convolutions of the same shape: equal inputs give bit-equal gradient maps
        gx, gy, ga = (_prewitt_magnitude(t) for t in (lum[:n], lum[n:], (lum[:n] + lum[n:]) / 2))
        # the authors' code: the distorted x gets the +; the difference first: exactly 0 when x == y
        gs = similarity(gx, gy, c1) + (similarity(gx, ga, c2) - similarity(gy, ga, c2))
        hx, mx, hy, my = lhm[:n, 1:2], lhm[:n, 2:3], lhm[n:, 1:2], lhm[n:, 2:3]
        cs = (2 * (hx * hy + mx * my) + c3) / ((hx * hx + mx * mx) + (hy * hy + my * my) + c3)
        if combination == "sum":
            modulus, phase = _principal_power((alpha * gs + (1 - alpha) * cs).flatten(1), 1.0)
        else:
            (gs_modulus, gs_phase), (cs_modulus, cs_phase) = _principal_power(gs, gamma), _principal_power(cs, beta)
            modulus, phase = (gs_modulus * cs_modulus).flatten(1), (gs_phase + cs_phase).flatten(1)
        # GCS^q with GCS = modulus e^{i phase}, phase in [0, pi): (modulus^q, q phase)
        modulus, phase = safe_pow(modulus, q), q * phase
        re, im = modulus * torch.cos(phase), modulus * torch.sin(phase)
        re, im = re - re[:, :1], im - im[:, :1]  # about the first pixel: a constant map gives 0 exactly
        re, im = re - re.mean(dim=1, keepdim=True), im - im.mean(dim=1, keepdim=True)
        deviation = safe_sqrt(re * re + im * im)
        score = safe_pow(safe_pow(deviation, rho).mean(dim=1), o / rho)
    return reduce(score, reduction)
