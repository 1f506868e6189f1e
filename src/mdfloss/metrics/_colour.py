"""Shared pieces of the full-reference metrics: input checks, colour transforms, filters, safe ops.

Only torch. Every public metric calls :func:`check_arguments` first, so a bad input is reported
as a ``TypeError``/``ValueError`` in the style of :mod:`mdfloss._checks` (it names the argument,
what was expected and what arrived) rather than as an error from deep inside
``torch.nn.functional``.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Iterator, Mapping, Sequence

import torch
import torch.nn.functional as F

from .._checks import check_image_pair, check_number, check_reduction

# NTSC YIQ (FCC), rows Y, I, Q; the transform both HaarPSI (Reisenhofer et al. 2018) and DSS use.
YIQ = ((0.299, 0.587, 0.114), (0.5959, -0.2746, -0.3213), (0.2115, -0.5227, 0.3112))
# The LHM opponent space of MDSI (Nafchi et al. 2016, eq. 5), rows L, H, M.
LHM = ((0.2989, 0.587, 0.114), (0.30, 0.04, -0.35), (0.34, -0.60, 0.17))


def check_arguments(
    x: object,
    y: object,
    *,
    data_range: object,
    reduction: str,
    positive: Mapping[str, object],
    channels: Sequence[int],
    min_size: int,
    min_size_reason: str,
) -> None:
    """The checks every metric starts with: ``reduction``, its ``positive`` constants, the image pair."""
    check_reduction(reduction)
    for name, value in positive.items():
        check_number(name, value, positive=True)
    data_range = check_number("data_range", data_range, positive=True)
    check_image_pair(x, y, data_range=data_range, min_size=min_size, min_size_reason=min_size_reason,
                     check_range=True, channels=channels, names=("x", "y"))


def working_dtype(x: torch.Tensor) -> torch.dtype:
    """float64 stays float64; everything else (float16, bfloat16, float32) is computed in float32."""
    return torch.float64 if x.dtype == torch.float64 else torch.float32


@contextlib.contextmanager
def no_autocast(device: torch.device) -> Iterator[None]:
    """Run the metric in the working dtype even inside an autocast region."""
    with torch.autocast(device_type=device.type, enabled=False):
        yield


def to_255(x: torch.Tensor, data_range: object, dtype: torch.dtype) -> torch.Tensor:
    """``x`` in ``dtype``, rescaled from [0, data_range] to the [0, 255] scale the metrics' constants assume."""
    return x.to(dtype) * (255.0 / float(data_range))  # type: ignore[arg-type]


def colour_transform(x: torch.Tensor, matrix: Sequence[Sequence[float]]) -> torch.Tensor:
    """(N, 3, H, W) RGB -> (N, 3, H, W) in the space whose rows are ``matrix``.

    Element-wise sums, not a matrix product: a GEMM may round a pixel differently depending on
    where it sits in the batch, and the metrics rely on equal inputs giving bit-equal outputs.
    """
    r, g, b = x.unbind(1)
    return torch.stack([row[0] * r + row[1] * g + row[2] * b for row in matrix], dim=1)


def luma(x: torch.Tensor) -> torch.Tensor:
    """(N, 3, H, W) RGB -> (N, 1, H, W) Y of YIQ (BT.601 weights); grey passes through."""
    if x.shape[1] == 1:
        return x
    r, g, b = x.unbind(1)
    return (YIQ[0][0] * r + YIQ[0][1] * g + YIQ[0][2] * b).unsqueeze(1)


def gaussian_kernel(size: int, sigma: float, *, dtype: torch.dtype, device: torch.device) -> torch.Tensor:
    """(size, size) normalised Gaussian, centred, like MATLAB's ``fspecial('gaussian', size, sigma)``."""
    t = torch.arange(size, dtype=torch.float64) - (size - 1) / 2
    g = torch.exp(-(t[:, None] ** 2 + t[None, :] ** 2) / (2 * sigma**2))
    return (g / g.sum()).to(dtype=dtype, device=device)


def same_pad(x: torch.Tensor, k: int) -> torch.Tensor:
    """Zero padding so that a k x k correlation keeps the size and matches MATLAB ``conv2(..., 'same')``.

    For even k the window of output pixel i covers input pixels i - (k/2 - 1) .. i + k/2.
    """
    before, after = (k - 1) // 2, k // 2
    return F.pad(x, (before, after, before, after))


def safe_sqrt(x: torch.Tensor) -> torch.Tensor:
    """sqrt(max(x, 0)) whose gradient is 0 (not NaN/Inf) where x <= 0."""
    positive = x > 0
    return torch.where(positive, torch.sqrt(torch.where(positive, x, torch.ones_like(x))), torch.zeros_like(x))


def safe_pow(x: torch.Tensor, exponent: float) -> torch.Tensor:
    """x ** exponent for x >= 0 with 0 ** exponent = 0 and a zero (not Inf/NaN) gradient at x = 0."""
    positive = x > 0
    return torch.where(positive, torch.where(positive, x, torch.ones_like(x)) ** exponent, torch.zeros_like(x))


def round_half_away(value: float) -> int:
    """MATLAB's ``round``: halves go away from zero (Python's ``round`` goes to even)."""
    return int(math.floor(abs(value) + 0.5)) * (1 if value >= 0 else -1)


def similarity(a: torch.Tensor, b: torch.Tensor, c: float) -> torch.Tensor:
    """(2ab + c) / (a^2 + b^2 + c), written so that a == b gives exactly 1 in floating point."""
    return (2 * a * b + c) / (a * a + b * b + c)
