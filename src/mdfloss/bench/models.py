"""Restoration networks of the paper's evaluation (EDSR baseline, SRResNet, DnCNN) and ESRGAN's.

Images are (N, 3, H, W) in [0, 1]; outputs are not clamped. Sizes (``size=``):

============  =====================================================  ==========================
model         ``paper``                                              ``small`` (CPU runs)
============  =====================================================  ==========================
edsr          16 residual blocks, 64 channels, x4 (1,517,571 params)  4 blocks, 32 channels
srresnet      16 residual blocks, 64 channels, x4 (1,550,659 params)  4 blocks, 32 channels
dncnn         20 layers, 64 channels (669,379 params)                 8 layers, 32 channels
rrdb          23 RRDBs, 64 channels, growth 32, x4 (16,697,987)       2 RRDBs, 16 channels, growth 8
============  =====================================================  ==========================

* EDSR baseline (Lim et al. 2017): mean shift, head conv, B x (conv-ReLU-conv) + residual with
  ``res_scale`` 1, conv, global skip, sub-pixel upsampler (conv to 4F, PixelShuffle(2) per
  factor 2), output conv; no batch norm.
* SRResNet (Ledig et al. 2017): 9x9 conv + PReLU, B x (conv-BN-PReLU-conv-BN) + residual,
  conv-BN + global skip, upsampler (conv, PixelShuffle(2), PReLU per factor 2), 9x9 output
  conv; linear output (no tanh) since images are in [0, 1].
* DnCNN (Zhang et al. 2017): conv-ReLU, (D - 2) x (conv-BN-ReLU), conv, predicting the residual:
  output = input - network(input). D = 20 is the depth of their blind colour (CDnCNN-B) and
  JPEG (DnCNN-3) models.
* RRDB network, ESRGAN's generator (Wang et al. 2018): conv, B x RRDB, conv, global skip,
  log2(scale) x (nearest x2, conv, LeakyReLU 0.2), conv-LeakyReLU, output conv; no batch norm.
  An RRDB is 3 dense blocks, ``y = x + 0.2 * (RDB3 o RDB2 o RDB1)(x)``; a dense block has 5
  convs, conv k (k = 1..4) maps the concatenation ``[x, h_1 .. h_{k-1}]`` (F + (k-1) G channels)
  to G channels followed by LeakyReLU 0.2, conv 5 maps F + 4G to F, ``y = x + 0.2 h_5``.
* :class:`PatchDiscriminator`, ESRGAN's VGG-style discriminator made fully convolutional (see
  there; not a restoration network, built with :func:`build_discriminator`).

``start_from_input=True`` (off by default, on in the ``cpu-mini`` preset) makes the untrained
network return its input: the last convolution starts at zero and, for EDSR and SRResNet, the
output adds the bicubic upsampling of the input (PyTorch's bicubic, a = -0.75). A few hundred
iterations then refine the degraded input instead of first learning to reproduce it, which
from-scratch EDSR needs thousands of iterations for.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from .._checks import check_choice, check_int

DIV2K_MEAN = (0.4488, 0.4371, 0.4040)
"""RGB mean of DIV2K in [0, 1], as EDSR subtracts it."""

MODEL_SIZES: dict[str, dict[str, dict[str, int]]] = {
    "edsr": {"paper": {"blocks": 16, "features": 64}, "small": {"blocks": 4, "features": 32}},
    "srresnet": {"paper": {"blocks": 16, "features": 64}, "small": {"blocks": 4, "features": 32}},
    "dncnn": {"paper": {"depth": 20, "features": 64}, "small": {"depth": 8, "features": 32}},
    "rrdb": {"paper": {"blocks": 23, "features": 64, "growth": 32},
             "small": {"blocks": 2, "features": 16, "growth": 8}},
}
MODEL_TASKS = {"edsr": ("sisr",), "srresnet": ("sisr",), "dncnn": ("denoise", "jpeg"), "rrdb": ("sisr",)}
DISCRIMINATOR_SIZES: dict[str, dict[str, int]] = {"paper": {"features": 64, "stages": 5},
                                                  "small": {"features": 16, "stages": 4}}
RES_SCALE = 0.2
"""ESRGAN's residual scaling inside and around its dense blocks."""


def _upsampler(features: int, scale: int, prelu: bool) -> nn.Sequential:
    """Sub-pixel convolution: log2(scale) x [conv(F -> 4F), PixelShuffle(2), PReLU if ``prelu``]."""
    _check_scale(scale)
    layers: list[nn.Module] = []
    for _ in range(scale.bit_length() - 1):
        layers += [nn.Conv2d(features, 4 * features, 3, padding=1), nn.PixelShuffle(2)]
        if prelu:
            layers.append(nn.PReLU(features))
    return nn.Sequential(*layers)


class _EDSRBlock(nn.Module):
    def __init__(self, features: int, res_scale: float) -> None:
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(features, features, 3, padding=1), nn.ReLU(inplace=True), nn.Conv2d(features, features, 3, padding=1)
        )
        self.res_scale = res_scale

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.res_scale * self.body(x)


class _Upscaler(nn.Module):
    """What EDSR and SRResNet share: checked sizes, ``scale``, and an upsampler + tail built last."""

    def __init__(self, *, blocks: int, features: int, scale: int, start_from_input: bool) -> None:
        super().__init__()
        _check_positive(blocks=blocks, features=features)
        self.scale = scale
        self.start_from_input = start_from_input

    def _build_output(self, features: int, *, prelu: bool, kernel: int) -> None:
        """``upsample`` and ``tail`` (zero when starting from the input); built after head and body,
        so that a seed gives the same initial weights as ever."""
        self.upsample = _upsampler(features, self.scale, prelu=prelu)
        self.tail = nn.Conv2d(features, 3, kernel, padding=kernel // 2)
        if self.start_from_input:
            _zero(self.tail)


class EDSR(_Upscaler):
    """EDSR: (N, 3, H, W) -> (N, 3, scale H, scale W)."""

    def __init__(self, *, blocks: int = 16, features: int = 64, scale: int = 4, res_scale: float = 1.0,
                 start_from_input: bool = False) -> None:
        super().__init__(blocks=blocks, features=features, scale=scale, start_from_input=start_from_input)
        self.register_buffer("mean", torch.tensor(DIV2K_MEAN).view(1, 3, 1, 1), persistent=False)
        self.head = nn.Conv2d(3, features, 3, padding=1)
        self.body = nn.Sequential(
            *(_EDSRBlock(features, res_scale) for _ in range(blocks)), nn.Conv2d(features, features, 3, padding=1)
        )
        self._build_output(features, prelu=False, kernel=3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.head(x - self.mean)
        h = h + self.body(h)
        base = _bicubic(x, self.scale) if self.start_from_input else self.mean
        return self.tail(self.upsample(h)) + base


class _SRResNetBlock(nn.Module):
    def __init__(self, features: int) -> None:
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(features, features, 3, padding=1), nn.BatchNorm2d(features), nn.PReLU(features),
            nn.Conv2d(features, features, 3, padding=1), nn.BatchNorm2d(features),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.body(x)


class SRResNet(_Upscaler):
    """SRResNet: (N, 3, H, W) -> (N, 3, scale H, scale W)."""

    def __init__(self, *, blocks: int = 16, features: int = 64, scale: int = 4, start_from_input: bool = False) -> None:
        super().__init__(blocks=blocks, features=features, scale=scale, start_from_input=start_from_input)
        self.head = nn.Sequential(nn.Conv2d(3, features, 9, padding=4), nn.PReLU(features))
        self.body = nn.Sequential(
            *(_SRResNetBlock(features) for _ in range(blocks)),
            nn.Conv2d(features, features, 3, padding=1), nn.BatchNorm2d(features),
        )
        self._build_output(features, prelu=True, kernel=9)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.head(x)
        h = h + self.body(h)
        out = self.tail(self.upsample(h))
        return out + _bicubic(x, self.scale) if self.start_from_input else out


class DnCNN(nn.Module):
    """DnCNN with residual learning: (N, 3, H, W) -> (N, 3, H, W) = input - predicted residual."""

    def __init__(self, *, depth: int = 20, features: int = 64, start_from_input: bool = False) -> None:
        super().__init__()
        _check_positive(depth=depth - 2, features=features)
        layers: list[nn.Module] = [nn.Conv2d(3, features, 3, padding=1), nn.ReLU(inplace=True)]
        for _ in range(depth - 2):
            layers += [nn.Conv2d(features, features, 3, padding=1, bias=False), nn.BatchNorm2d(features), nn.ReLU(inplace=True)]
        layers.append(nn.Conv2d(features, 3, 3, padding=1))
        if start_from_input:
            _zero(layers[-1])
        self.body = nn.Sequential(*layers)
        self.scale = 1

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x - self.body(x)


def _lrelu() -> nn.LeakyReLU:
    return nn.LeakyReLU(0.2, inplace=True)


class _DenseBlock(nn.Module):
    """ESRGAN's residual dense block of 5 convs (see the module docstring)."""

    def __init__(self, features: int, growth: int) -> None:
        super().__init__()
        self.convs = nn.ModuleList(nn.Conv2d(features + k * growth, growth, 3, padding=1) for k in range(4))
        self.fuse = nn.Conv2d(features + 4 * growth, features, 3, padding=1)
        self.act = _lrelu()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        state = [x]
        for conv in self.convs:
            state.append(self.act(conv(torch.cat(state, 1))))
        return x + RES_SCALE * self.fuse(torch.cat(state, 1))


class _RRDB(nn.Module):
    """Residual-in-residual dense block: ``x + 0.2 * (RDB3 o RDB2 o RDB1)(x)``."""

    def __init__(self, features: int, growth: int) -> None:
        super().__init__()
        self.body = nn.Sequential(*(_DenseBlock(features, growth) for _ in range(3)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + RES_SCALE * self.body(x)


class RRDBNet(nn.Module):
    """ESRGAN's generator: (N, 3, H, W) -> (N, 3, scale H, scale W)."""

    def __init__(self, *, blocks: int = 23, features: int = 64, growth: int = 32, scale: int = 4,
                 start_from_input: bool = False) -> None:
        super().__init__()
        _check_positive(blocks=blocks, features=features, growth=growth)
        _check_scale(scale)
        self.scale = scale
        self.start_from_input = start_from_input
        self.head = nn.Conv2d(3, features, 3, padding=1)
        self.body = nn.Sequential(*(_RRDB(features, growth) for _ in range(blocks)),
                                  nn.Conv2d(features, features, 3, padding=1))
        self.upsample = nn.Sequential(*(layer for _ in range(scale.bit_length() - 1)
                                        for layer in (nn.Upsample(scale_factor=2, mode="nearest"),
                                                      nn.Conv2d(features, features, 3, padding=1), _lrelu())))
        self.tail = nn.Sequential(nn.Conv2d(features, features, 3, padding=1), _lrelu(),
                                  nn.Conv2d(features, 3, 3, padding=1))
        if start_from_input:
            _zero(self.tail[-1])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.head(x)
        out = self.tail(self.upsample(h + self.body(h)))
        return out + _bicubic(x, self.scale) if self.start_from_input else out


class PatchDiscriminator(nn.Module):
    """ESRGAN's VGG-style discriminator, fully convolutional: (N, 3, H, W) -> logits (N, 1, H/2^S, W/2^S).

    A 3x3 conv (F channels) + LeakyReLU 0.2, then S stages: a 4x4 stride-2 conv (halves the
    size) and, but in the last stage, a 3x3 conv to the next stage's width, each conv followed
    by batch norm and LeakyReLU 0.2; widths ``F * min(2^s, 8)``. With F = 64 and S = 5 this is
    ESRGAN's 10-conv body (64, 64, 128, 128, 256, 256, 512, 512, 512, 512 channels). ESRGAN's
    dense head (built for 128 px inputs) becomes a 3x3 conv to one logit per location, so any
    patch size of at least 2^S px works.
    """

    def __init__(self, *, features: int = 64, stages: int = 5) -> None:
        super().__init__()
        _check_positive(features=features, stages=stages)
        widths = [features * min(2 ** s, 8) for s in range(stages)]
        layers: list[nn.Module] = [nn.Conv2d(3, features, 3, padding=1), _lrelu()]
        for s, width in enumerate(widths):
            layers += [nn.Conv2d(width, width, 4, stride=2, padding=1, bias=False), nn.BatchNorm2d(width), _lrelu()]
            if s + 1 < stages:
                layers += [nn.Conv2d(width, widths[s + 1], 3, padding=1, bias=False), nn.BatchNorm2d(widths[s + 1]),
                           _lrelu()]
        self.body = nn.Sequential(*layers)
        self.head = nn.Conv2d(widths[-1], 1, 3, padding=1)
        self.features, self.stages = features, stages

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.body(x))


def build_discriminator(size: str = "paper", **overrides: int) -> PatchDiscriminator:
    """A :class:`PatchDiscriminator` of a documented ``size`` (``paper``: F 64, S 5; ``small``: F 16, S 4)."""
    check_choice("gan.discriminator", size, sorted(DISCRIMINATOR_SIZES))
    return PatchDiscriminator(**{**DISCRIMINATOR_SIZES[size], **overrides})


MODELS: dict[str, type[nn.Module]] = {"edsr": EDSR, "srresnet": SRResNet, "dncnn": DnCNN, "rrdb": RRDBNet}


def check_model(name: str, task: str, size: str, prefix: str = "model.") -> None:
    """ValueError unless ``name`` is a model (``PREFIXtype``) that serves ``task`` at ``size`` (``PREFIXsize``)."""
    check_choice(f"{prefix}type", name, sorted(MODELS))
    if task not in MODEL_TASKS[name]:
        raise ValueError(f"{prefix}type: expected a model for task {task!r}, got {name!r} "
                         f"(it serves task(s) {MODEL_TASKS[name]})")
    check_choice(f"{prefix}size", size, sorted(MODEL_SIZES[name]))


def build_model(name: str, *, task: str, size: str = "paper", scale: int = 4, **overrides: Any) -> nn.Module:
    """A model by name for ``task``, at a documented ``size``, with constructor ``overrides``.

    >>> build_model("edsr", task="sisr", size="small").scale
    4
    """
    check_model(name, task, size)
    options: dict[str, Any] = dict(MODEL_SIZES[name][size])
    if name != "dncnn":
        options["scale"] = scale
    options.update(overrides)
    try:
        return MODELS[name](**options)
    except TypeError as error:
        raise TypeError(f"model options for {name!r}: {error}") from None


def _zero(conv: nn.Conv2d) -> None:
    nn.init.zeros_(conv.weight)
    nn.init.zeros_(conv.bias)


def _bicubic(x: torch.Tensor, scale: int) -> torch.Tensor:
    return F.interpolate(x, scale_factor=scale, mode="bicubic", align_corners=False)


def _check_positive(**values: int) -> None:
    for key, value in values.items():
        check_int(key, value, minimum=1)


def _check_scale(scale: int) -> None:
    if scale < 1 or scale & (scale - 1):
        raise ValueError(f"scale: expected a power of two (1, 2, 4, 8), got {scale}")
