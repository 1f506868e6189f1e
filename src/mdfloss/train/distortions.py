"""Task distortions z_k of phase 1: a registry of built-in ones and user plugins.

A distortion is a callable ``d(batch, generator) -> batch``: ``batch`` is (B, 3, H, W) float in
[0, 1], ``generator`` a CPU ``torch.Generator`` that is the only source of randomness (draw on
the CPU, then move to ``batch.device``), and the result has the same shape, dtype and device
(it may leave [0, 1], as Gaussian noise does). Each has a ``name`` and JSON-serialisable
``params``, which the weight file records.

Built-in (paper, section 3.1, ranges configurable):

- ``sisr``: none, ``z_k = 0``.
- ``denoise``: additive Gaussian noise, per image ``sigma ~ U[sigma_min, sigma_max] / 255``
  (paper: U[0, 55]).
- ``jpeg``: real libjpeg through Pillow, per image ``quality ~ U{quality_min..quality_max}``
  (paper: 7..10), on the image quantised to 8 bits.
- ``blur``: Gaussian blur, per image ``sigma ~ U[sigma_min, sigma_max]`` px, reflect padding.

Plugins: ``"package.module:function"`` names a function ``f(batch, generator, **params)``.
"""

from __future__ import annotations

import dataclasses
import json
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, ClassVar, Protocol, runtime_checkable

import numpy as np
import torch
import torch.nn.functional as F

from .._checks import as_type, check_int, check_number
from .._plugins import load_object
from ..functional import gaussian_window, jpeg_roundtrip_uint8


@runtime_checkable
class Distortion(Protocol):
    """What the trainer needs of a distortion."""

    name: str

    @property
    def params(self) -> dict[str, Any]: ...

    def __call__(self, batch: torch.Tensor, generator: torch.Generator) -> torch.Tensor: ...


def _uniform(generator: torch.Generator, count: int, low: float, high: float) -> torch.Tensor:
    """``count`` float64 draws from U[low, high] on the CPU."""
    return low + (high - low) * torch.rand(count, generator=generator, dtype=torch.float64)


class _Registered:
    """Shared behaviour of the built-in distortions (frozen dataclasses)."""

    name: ClassVar[str]

    @property
    def params(self) -> dict[str, Any]:
        return dataclasses.asdict(self)  # type: ignore[call-overload]


@dataclass(frozen=True)
class NoDistortion(_Registered):
    """SISR: the upsampled previous output is fed unchanged (``z_k = 0``)."""

    name: ClassVar[str] = "sisr"

    def __call__(self, batch: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        return batch


@dataclass(frozen=True)
class GaussianNoise(_Registered):
    """Denoising: ``x + sigma * n``, ``n ~ N(0, 1)``, ``sigma ~ U[sigma_min, sigma_max] / 255`` per image."""

    name: ClassVar[str] = "denoise"
    sigma_min: float = 0.0
    sigma_max: float = 55.0

    def __post_init__(self) -> None:
        _check_range("sigma", self.sigma_min, self.sigma_max, low=0.0)

    def __call__(self, batch: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        sigma = _uniform(generator, batch.shape[0], self.sigma_min, self.sigma_max) / 255.0
        noise = torch.randn(batch.shape, generator=generator, dtype=torch.float32)
        noise = noise * sigma.to(torch.float32).view(-1, 1, 1, 1)
        return batch + noise.to(device=batch.device, dtype=batch.dtype)


@dataclass(frozen=True)
class JPEGCompression(_Registered):
    """JPEG artifacts: encode and decode with Pillow at ``quality ~ U{quality_min..quality_max}`` per image.

    The image is first quantised to 8 bits (``round(255 x)``); Pillow's default 4:2:0 chroma
    subsampling and quantisation tables apply.
    """

    name: ClassVar[str] = "jpeg"
    quality_min: int = 7
    quality_max: int = 10

    def __post_init__(self) -> None:
        _check_range("quality", self.quality_min, self.quality_max, low=1, high=100, integer=True)

    def __call__(self, batch: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        qualities = torch.randint(self.quality_min, self.quality_max + 1, (batch.shape[0],), generator=generator)
        images = [jpeg_roundtrip(image, int(quality)) for image, quality in zip(batch, qualities)]
        return torch.stack(images).to(device=batch.device, dtype=batch.dtype)


def jpeg_roundtrip(image: torch.Tensor, quality: int) -> torch.Tensor:
    """One (3, H, W) image in [0, 1], rounded to 8 bits, through :func:`jpeg_roundtrip_uint8`; float32 on the CPU."""
    array = (image.detach().to("cpu", torch.float32).clamp(0, 1) * 255).round().to(torch.uint8)
    pixels = jpeg_roundtrip_uint8(array.permute(1, 2, 0).numpy(), quality).astype(np.float32) / 255.0
    return torch.from_numpy(pixels).permute(2, 0, 1)


@dataclass(frozen=True)
class GaussianBlur(_Registered):
    """Blur: convolution with a Gaussian of ``sigma ~ U[sigma_min, sigma_max]`` px per image.

    Kernel: ``exp(-t^2 / (2 sigma^2))`` sampled at integer ``t`` in ``[-ceil(3 sigma), ceil(3 sigma)]``,
    normalised to sum 1, applied separably with reflect padding.
    """

    name: ClassVar[str] = "blur"
    sigma_min: float = 0.5
    sigma_max: float = 2.0

    def __post_init__(self) -> None:
        _check_range("sigma", self.sigma_min, self.sigma_max, low=1e-3)

    def __call__(self, batch: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        sigmas = _uniform(generator, batch.shape[0], self.sigma_min, self.sigma_max)
        return torch.cat([gaussian_blur(image[None], float(sigma)) for image, sigma in zip(batch, sigmas)])


def gaussian_blur(batch: torch.Tensor, sigma: float) -> torch.Tensor:
    """Separable Gaussian blur of (B, C, H, W) with reflect padding; see :class:`GaussianBlur`."""
    radius = max(1, math.ceil(3 * sigma))
    radius = min(radius, batch.shape[-1] - 1, batch.shape[-2] - 1)
    kernel = gaussian_window(sigma, 2 * radius + 1, batch.dtype, batch.device)
    channels = batch.shape[1]
    horizontal = kernel.view(1, 1, 1, -1).expand(channels, 1, 1, -1)
    vertical = kernel.view(1, 1, -1, 1).expand(channels, 1, -1, 1)
    out = F.pad(batch, (radius, radius, 0, 0), mode="reflect")
    out = F.conv2d(out, horizontal, groups=channels)
    out = F.pad(out, (0, 0, radius, radius), mode="reflect")
    return F.conv2d(out, vertical, groups=channels)


REGISTRY: dict[str, type[_Registered]] = {
    cls.name: cls for cls in (NoDistortion, GaussianNoise, JPEGCompression, GaussianBlur)
}
"""Built-in distortions by name; each name is also a task name."""


def _check_range(name: str, low_value: float, high_value: float, *, low: float, high: float | None = None,
                 integer: bool = False) -> None:
    """``NAME_min`` and ``NAME_max``: numbers (ints if ``integer``) in [low, high], min <= max."""
    check = check_int if integer else check_number
    for suffix, value in (("min", low_value), ("max", high_value)):
        check(f"{name}_{suffix}", value, minimum=low, maximum=high)
    if low_value > high_value:
        raise ValueError(f"{name}_min and {name}_max: expected min <= max, got {low_value!r} > {high_value!r}")


class PluginDistortion:
    """A user function ``f(batch, generator, **params)`` named ``"package.module:function"``.

    Its output is checked on every call: a tensor of the input's shape, dtype and device, finite.
    """

    def __init__(self, spec: str, function: Callable[..., Any], params: Mapping[str, Any] | None = None) -> None:
        self.name = spec
        self.function = function
        self._params = dict(params or {})

    @property
    def params(self) -> dict[str, Any]:
        return dict(self._params)

    def __call__(self, batch: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        result = self.function(batch, generator, **self._params)
        where = f"distortion plugin {self.name!r}"
        if not isinstance(result, torch.Tensor):
            raise TypeError(f"{where}: expected it to return a torch.Tensor, got {type(result).__name__}")
        if result.shape != batch.shape:
            raise ValueError(f"{where}: expected a result of shape {tuple(batch.shape)}, got {tuple(result.shape)}")
        if result.dtype != batch.dtype:
            raise TypeError(f"{where}: expected a result of dtype {batch.dtype}, got {result.dtype}")
        if result.device != batch.device:
            raise ValueError(f"{where}: expected a result on {batch.device}, got {result.device}")
        if not torch.isfinite(result).all():
            raise ValueError(f"{where}: returned NaN or Inf values")
        return result


def load_plugin(spec: str) -> Callable[..., Any]:
    """Import ``"package.module:function"`` and return the function."""
    if ":" not in spec:
        raise ValueError(f"distortion: expected a registered name ({', '.join(REGISTRY)}) or 'package.module:function', "
                         f"got {spec!r}")
    return load_object(spec, "distortion")


def make_distortion(spec: str | Distortion, params: Mapping[str, Any] | None = None) -> Distortion:
    """A distortion from a registered name, a plugin path or a ready object; ``params`` configure it.

    For a registered name, params are its fields (e.g. ``sigma_max=30``), converted to the
    field's type when given as strings; for a plugin they are passed as keyword arguments.
    """
    params = dict(params or {})
    if not isinstance(spec, str):
        if not isinstance(spec, Distortion):
            raise TypeError("distortion: expected a name, 'package.module:function' or an object with name, params "
                            f"and __call__(batch, generator), got {type(spec).__name__}")
        if params:
            raise ValueError("distortion params: give them when constructing a distortion object, not beside it")
        return spec
    if spec in REGISTRY:
        cls = REGISTRY[spec]
        fields = {f.name: f for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
        unknown = sorted(set(params) - set(fields))
        if unknown:
            raise ValueError(f"distortion params: {spec!r} takes {sorted(fields) or 'no parameters'}, got {unknown}")
        converted = {name: as_type(name, value, type(getattr(cls(), name))) for name, value in params.items()}
        return cls(**converted)  # type: ignore[return-value]
    try:
        json.dumps(params)
    except TypeError as error:
        raise ValueError(f"distortion params: expected JSON-serialisable values for the weight file, got {error}") from None
    return PluginDistortion(spec, load_plugin(spec), params)


def parse_params(items: list[str] | None) -> dict[str, Any]:
    """``["sigma_max=30", "mode=a"]`` -> ``{"sigma_max": 30, "mode": "a"}`` (JSON values where they parse)."""
    params: dict[str, Any] = {}
    for item in items or []:
        key, equals, value = item.partition("=")
        if not equals or not key:
            raise ValueError(f"distortion param: expected KEY=VALUE, got {item!r}")
        try:
            params[key] = json.loads(value)
        except json.JSONDecodeError:
            params[key] = value
    return params
