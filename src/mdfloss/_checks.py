"""Input validation shared by every loss: real exceptions that say what arrived."""

from __future__ import annotations

from typing import cast

import torch

REDUCTIONS = ("mean", "sum", "none")


def check_reduction(reduction: str) -> None:
    if reduction not in REDUCTIONS:
        raise ValueError(f"reduction: expected one of {REDUCTIONS}, got {reduction!r}")


def check_data_range(data_range: float) -> None:
    if isinstance(data_range, bool) or not isinstance(data_range, (int, float)) or not data_range > 0:
        raise ValueError(f"data_range: expected a positive number such as 1.0 or 255.0, got {data_range!r}")


def describe(x: torch.Tensor) -> str:
    return f"shape {tuple(x.shape)}, dtype {x.dtype}, device {x.device}"


def check_image_pair(
    prediction: object,
    target: object,
    *,
    data_range: float,
    min_size: int,
    min_size_reason: str,
    check_range: bool,
) -> None:
    """Raise TypeError/ValueError unless both are (N, C, H, W) float images in [0, data_range].

    C must be 1 or 3, H and W at least ``min_size``; shapes and devices must match; NaN and
    Inf are always refused, the range check only when ``check_range``.
    """
    for name, x in (("prediction", prediction), ("target", target)):
        if not isinstance(x, torch.Tensor):
            raise TypeError(f"{name}: expected a torch.Tensor, got {type(x).__name__}")
        if not x.is_floating_point():
            raise TypeError(f"{name}: expected a floating-point tensor, got {describe(x)}")
        if x.ndim != 4:
            raise ValueError(f"{name}: expected a 4-D tensor (N, C, H, W), got {describe(x)}")
        if x.shape[1] not in (1, 3):
            raise ValueError(f"{name}: expected 1 or 3 channels (N, C, H, W), got {describe(x)}")
        if min(x.shape[-2:]) < min_size:
            raise ValueError(
                f"{name}: expected height and width of at least {min_size} px ({min_size_reason}), got {describe(x)}"
            )
        if x.shape[0] == 0:
            raise ValueError(f"{name}: expected a non-empty batch, got {describe(x)}")
    prediction, target = cast(torch.Tensor, prediction), cast(torch.Tensor, target)
    if prediction.shape != target.shape:
        raise ValueError(
            f"prediction and target: expected the same shape, got {tuple(prediction.shape)} and {tuple(target.shape)}"
        )
    if prediction.device != target.device:
        raise ValueError(
            f"prediction and target: expected the same device, got {prediction.device} and {target.device}"
        )
    for name, x in (("prediction", prediction), ("target", target)):
        low, high = torch.aminmax(x.detach())
        low, high = float(low), float(high)
        if low != low or high != high or abs(low) == float("inf") or abs(high) == float("inf"):
            raise ValueError(f"{name}: expected finite values, got NaN or Inf in a tensor of {describe(x)}")
        if check_range and (low < 0 or high > data_range):
            raise ValueError(
                f"{name}: expected values in [0, data_range={data_range:g}], got min {low:.4g} and max {high:.4g} "
                "(clamp the images, set data_range, or pass check_range=False for unclamped network outputs)"
            )
