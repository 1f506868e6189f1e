r"""HaarPSI: the Haar wavelet-based perceptual similarity index (Reisenhofer et al. 2018).

Reference: R. Reisenhofer, S. Bosse, G. Kutyniok and T. Wiegand, "A Haar wavelet-based perceptual
similarity index for image quality assessment", *Signal Processing: Image Communication* 61
(2018) 33-43, DOI `10.1016/j.image.2017.11.001 <https://doi.org/10.1016/j.image.2017.11.001>`_.
Written from the paper and the conventions of the authors' MATLAB code (``conv2(..., 'same')``
zero padding, the 2x2 mean before subsampling).

Definition. Images are scaled to [0, 255]; colour images go to YIQ. Both are subsampled by a
2 x 2 mean (zero padding at the bottom/right edge of odd sizes). With :math:`g^{(k)}_j`, the 2-D
Haar filter of scale :math:`j \in \{1, 2, 3\}` (support :math:`2^j \times 2^j`) and orientation
:math:`k \in \{1, 2\}` (horizontal, vertical), applied to the luminance :math:`Y`:

.. math::

    S(a, b) = \frac{2ab + C}{a^2 + b^2 + C}, \qquad
    \mathrm{HS}^{(k)} = \frac{1}{2}\sum_{j=1}^{2} S\big(|g^{(k)}_j * Y_x|, |g^{(k)}_j * Y_y|\big),
    \qquad W^{(k)} = \max\big(|g^{(k)}_3 * Y_x|, |g^{(k)}_3 * Y_y|\big),

for colour also :math:`\mathrm{HS}^{(3)} = \tfrac12 [S(|m * I_x|, |m * I_y|) + S(|m * Q_x|, |m * Q_y|)]`
with :math:`m` the 2 x 2 mean filter and :math:`W^{(3)} = (W^{(1)} + W^{(2)}) / 2`; then, with
:math:`l_\alpha(t) = 1 / (1 + e^{-\alpha t})` and K = 2 (grey) or 3 (colour) maps,

.. math::

    \mathrm{HaarPSI}(x, y) = \left( l_\alpha^{-1}\left(
        \frac{\sum_{p}\sum_{k=1}^{K} l_\alpha(\mathrm{HS}^{(k)}[p])\, W^{(k)}[p]}
             {\sum_{p}\sum_{k=1}^{K} W^{(k)}[p]} \right) \right)^2 \in (0, 1].

Defaults: C = 30, alpha = 4.2 (the paper's, for the [0, 255] scale). **Higher is better**;
identical images give exactly 1 (the logit is evaluated as
:math:`\alpha + \log(1 - D) - \log(1 + e^\alpha D)` of the weighted loss
:math:`D = 1 - m / l_\alpha(1)`, which is exactly 0 for identical inputs). HaarPSI is
symmetric in ``x`` and ``y``. Where both images have no luminance structure at the coarsest
scale (all weights 0, e.g. two black images) the quotient is 0/0; it is returned as 1.

Differentiable almost everywhere (``|.|`` at a zero Haar coefficient and ``max`` at equal
magnitudes are the non-smooth points; autograd takes a subgradient), so ``1 - haarpsi`` can be
a training loss. Unlike piq's implementation there is no ``eps`` in the quotient, so the two
agree to rounding error, not exactly; piq's value for identical images is 1 - O(eps).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from mdfloss.functional import reduce
from mdfloss.metrics._colour import (
    YIQ,
    check_arguments,
    colour_transform,
    no_autocast,
    similarity,
    to_255,
    working_dtype,
)

HIGHER_IS_BETTER = True
PERFECT_VALUE = 1.0
MIN_SIZE = 16  # the 8 x 8 Haar filter of scale 3 after the 2x subsampling

__all__ = ["HIGHER_IS_BETTER", "MIN_SIZE", "PERFECT_VALUE", "haarpsi"]


def _haar_bank(dtype: torch.dtype, device: torch.device) -> torch.Tensor:
    """(6, 1, 8, 8): scales 1-3 x orientations (horizontal, vertical), embedded in one 8 x 8 frame.

    The 2^j x 2^j filter sits where MATLAB's ``conv2(..., 'same')`` would put it: its window
    covers i - (2^(j-1) - 1) .. i + 2^(j-1) around output pixel i, as the 8 x 8 frame padded by
    (3, 4) does for scale 3. Signs are irrelevant (only magnitudes are used).
    """
    bank = torch.zeros(6, 1, 8, 8, dtype=torch.float64)
    for j in range(3):
        k = 2 ** (j + 1)
        h = torch.full((k, k), 1.0 / k, dtype=torch.float64)
        h[k // 2 :] *= -1
        o = 4 - k // 2
        bank[2 * j, 0, o : o + k, o : o + k] = h
        bank[2 * j + 1, 0, o : o + k, o : o + k] = h.t()
    return bank.to(dtype=dtype, device=device)


def _subsample(x: torch.Tensor) -> torch.Tensor:
    """2 x 2 mean then every second pixel; odd sizes are zero padded at the bottom/right."""
    return F.avg_pool2d(F.pad(x, (0, x.shape[-1] % 2, 0, x.shape[-2] % 2)), 2)


def haarpsi(
    x: torch.Tensor,
    y: torch.Tensor,
    data_range: float = 1.0,
    reduction: str = "mean",
    *,
    c: float = 30.0,
    alpha: float = 4.2,
) -> torch.Tensor:
    """HaarPSI between ``x`` and ``y`` (symmetric; the formula is in the module docstring).

    Args:
        x, y: (N, 3, H, W) RGB or (N, 1, H, W) grey floating tensors in [0, data_range],
            H and W >= 16. float16/bfloat16 are computed in float32.
        data_range: the value of white (1.0 or 255.0, ...).
        reduction: ``"mean"`` | ``"sum"`` over the batch, or ``"none"`` for (N,) values.
        c: the constant C of the similarity, on the [0, 255] scale (paper: 30).
        alpha: the slope of the logistic function (paper: 4.2).

    Returns:
        A 0-D tensor (mean/sum) or (N,) tensor (none) in (0, 1]; 1 for identical images.
        float64 for float64 inputs, float32 otherwise. Higher is better.

    Raises:
        TypeError, ValueError: for a bad argument, naming it.
    """
    check_arguments(
        x, y, data_range=data_range, reduction=reduction, positive={"c": c, "alpha": alpha}, channels=(1, 3),
        min_size=MIN_SIZE, min_size_reason="the 8x8 Haar filter of scale 3 after subsampling by 2",
    )
    dtype = working_dtype(x)
    with no_autocast(x.device):
        n = x.shape[0]
        both = to_255(torch.cat([x, y]), data_range, dtype)
        if both.shape[1] == 3:
            both = colour_transform(both, YIQ)
        both = _subsample(both)
        bank = _haar_bank(dtype, both.device)
        # x and y in separate convolutions of the same shape (equal inputs -> bit-equal outputs,
        # which a batched convolution does not promise across batch positions)
        cx, cy = (F.conv2d(F.pad(part[:, :1], (3, 4, 3, 4)), bank).abs() for part in (both[:n], both[n:]))
        # Similarity per orientation, averaged over scales 1 and 2; weights from scale 3.
        sims = (similarity(cx[:, 0:2], cy[:, 0:2], c) + similarity(cx[:, 2:4], cy[:, 2:4], c)) / 2
        weights = torch.maximum(cx[:, 4:6], cy[:, 4:6])
        if both.shape[1] == 3:
            iq = F.avg_pool2d(F.pad(both[:, 1:], (0, 1, 0, 1)), 2, stride=1).abs()
            sim_iq = similarity(iq[:n], iq[n:], c).mean(dim=1, keepdim=True)
            sims = torch.cat([sims, sim_iq], dim=1)
            weights = torch.cat([weights, weights.mean(dim=1, keepdim=True)], dim=1)
        # l(alpha) - l(alpha * S) = l(alpha) * l(u - alpha) * (1 - exp(-u)), u = alpha (1 - S) >= 0:
        # exactly 0 where S == 1.
        u = alpha * (1 - sims)
        loss = torch.sigmoid(u - alpha) * -torch.expm1(-u)
        total = weights.sum(dim=(1, 2, 3))
        d = (loss * weights).sum(dim=(1, 2, 3)) / total.clamp_min(torch.finfo(dtype).tiny)
        logit = alpha + torch.log1p(-d) - torch.log1p(math.exp(alpha) * d)
        score = (logit / alpha) ** 2
    return reduce(score, reduction)
