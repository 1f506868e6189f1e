"""Input validation for every module: real exceptions that name the argument, what was expected
and what arrived, in one style: ``"NAME: expected WHAT, got VALUE"``.

* scalars and options: :func:`check_int`, :func:`check_number`, :func:`check_choice`,
  :func:`as_type` (a command-line string as a field's type);
* image batches: :func:`check_image_pair` (types and shapes always; values only while the
  value checks are on), :func:`check_module_device`.

The value checks (NaN, Inf, range) read the tensors' minimum and maximum, which makes the host
wait for the device on every call. A training loop on a GPU can turn them off with
:func:`disable_checks` (or ``MDFLOSS_CHECKS=0`` in the environment); shape, dtype and device
checks cost nothing and always run.
"""

from __future__ import annotations

import math
import os
from collections.abc import Collection, Sequence
from typing import Any, cast

import torch
from torch import nn

REDUCTIONS = ("mean", "sum", "none")
_value_checks = os.environ.get("MDFLOSS_CHECKS", "1").strip().lower() not in ("0", "false", "no", "off")


def disable_checks() -> None:
    """Skip the per-call NaN/Inf/range checks of the losses (they sync the GPU every step)."""
    global _value_checks
    _value_checks = False


def enable_checks() -> None:
    """Turn the per-call value checks back on (the default, unless ``MDFLOSS_CHECKS=0``)."""
    global _value_checks
    _value_checks = True


def checks_enabled() -> bool:
    """Whether the per-call value checks run."""
    return _value_checks


def _bounds(minimum: float | None, maximum: float | None) -> str:
    if minimum is not None and maximum is not None:
        return f" in [{minimum:g}, {maximum:g}]"
    if minimum is not None:
        return f" >= {minimum:g}"
    if maximum is not None:
        return f" <= {maximum:g}"
    return ""


def check_int(name: str, value: Any, *, minimum: int | None = None, maximum: int | None = None,
              odd: bool = False, integral_float: bool = False) -> int:
    """``value`` as an int within the bounds (inclusive), odd if asked; bools are refused.

    ``integral_float`` also accepts floats with an integral value (``2.0``, as YAML may give).
    """
    ok_type = isinstance(value, int) or (integral_float and isinstance(value, float) and value.is_integer())
    if isinstance(value, bool) or not ok_type:
        ok = False
    else:
        value = int(value)
        ok = ((minimum is None or value >= minimum) and (maximum is None or value <= maximum)
              and (not odd or value % 2 == 1))
    if not ok:
        raise ValueError(f"{name}: expected {'an odd' if odd else 'an'} int{_bounds(minimum, maximum)}, got {value!r}")
    return int(value)


def check_number(name: str, value: Any, *, minimum: float | None = None, maximum: float | None = None,
                 positive: bool = False, hint: str = "") -> float:
    """``value`` as a finite float within the bounds (inclusive; ``positive``: > 0); bools are refused."""
    ok = (not isinstance(value, bool) and isinstance(value, (int, float)) and math.isfinite(value)
          and (minimum is None or value >= minimum) and (maximum is None or value <= maximum)
          and (not positive or value > 0))
    if not ok:
        if positive:
            what = f"a number in (0, {maximum:g}]" if maximum is not None else "a positive number"
        else:
            what = f"a finite number{_bounds(minimum, maximum)}"
        raise ValueError(f"{name}: expected {what}{hint}, got {value!r}")
    return float(value)


def check_choice(name: str, value: Any, choices: Collection[Any]) -> Any:
    """``value`` if it is one of ``choices``."""
    if value not in choices:
        raise ValueError(f"{name}: expected one of {tuple(choices)}, got {value!r}")
    return value


def as_type(name: str, value: Any, kind: type) -> Any:
    """A setting as its field's type: strings parsed (``"3"`` -> 3), ints widened to float for floats."""
    if isinstance(value, str):
        try:
            return kind(value)
        except ValueError:
            raise ValueError(f"{name}: expected a {kind.__name__}, got {value!r}") from None
    if kind is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    return value


def check_reduction(reduction: str) -> None:
    check_choice("reduction", reduction, REDUCTIONS)


def check_data_range(data_range: float) -> None:
    check_number("data_range", data_range, positive=True, hint=" such as 1.0 or 255.0")


def describe(x: torch.Tensor) -> str:
    return f"shape {tuple(x.shape)}, dtype {x.dtype}, device {x.device}"


def check_module_device(module: nn.Module, x: torch.Tensor, name: str = "prediction") -> None:
    """Raise ValueError unless ``module``'s parameters are on ``x``'s device (no silent copies)."""
    parameter = next(module.parameters(), None)
    if parameter is not None and parameter.device != x.device:
        raise ValueError(
            f"{name}: expected the loss's device {parameter.device}, got {x.device} (move the loss with .to(device))"
        )


def check_image_pair(
    prediction: object,
    target: object,
    *,
    data_range: float,
    min_size: int,
    min_size_reason: str,
    check_range: bool,
    channels: Sequence[int] = (1, 3),
    names: tuple[str, str] = ("prediction", "target"),
) -> None:
    """Raise TypeError/ValueError unless both are (N, C, H, W) float images in [0, data_range].

    C must be one of ``channels``, H and W at least ``min_size``; shapes and devices must match.
    While the value checks are on (:func:`checks_enabled`), NaN and Inf are refused, and values
    outside the range too when ``check_range``. ``names`` are the arguments' names in messages.
    """
    for name, x in zip(names, (prediction, target)):
        if not isinstance(x, torch.Tensor):
            raise TypeError(f"{name}: expected a torch.Tensor, got {type(x).__name__}")
        if not x.is_floating_point():
            raise TypeError(f"{name}: expected a floating-point tensor, got {describe(x)}")
        if x.ndim != 4:
            raise ValueError(f"{name}: expected a 4-D tensor (N, C, H, W), got {describe(x)}")
        if x.shape[1] not in channels:
            wanted = " or ".join(str(c) for c in channels)
            raise ValueError(f"{name}: expected {wanted} channels (N, C, H, W), got {describe(x)}")
        if min(x.shape[-2:]) < min_size:
            raise ValueError(
                f"{name}: expected height and width of at least {min_size} px ({min_size_reason}), got {describe(x)}"
            )
        if x.shape[0] == 0:
            raise ValueError(f"{name}: expected a non-empty batch, got {describe(x)}")
    prediction, target = cast(torch.Tensor, prediction), cast(torch.Tensor, target)
    both = f"{names[0]} and {names[1]}"
    if prediction.shape != target.shape:
        raise ValueError(f"{both}: expected the same shape, got {tuple(prediction.shape)} and {tuple(target.shape)}")
    if prediction.device != target.device:
        raise ValueError(f"{both}: expected the same device, got {prediction.device} and {target.device}")
    if not _value_checks:
        return
    for name, x in zip(names, (prediction, target)):
        low, high = torch.aminmax(x.detach())
        low, high = float(low), float(high)
        if low != low or high != high or abs(low) == float("inf") or abs(high) == float("inf"):
            raise ValueError(f"{name}: expected finite values, got NaN or Inf in a tensor of {describe(x)}")
        if check_range and (low < 0 or high > data_range):
            raise ValueError(
                f"{name}: expected values in [0, data_range={data_range:g}], got min {low:.4g} and max {high:.4g} "
                "(clamp the images, set data_range, or pass check_range=False for unclamped network outputs)"
            )
