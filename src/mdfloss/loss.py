r"""The MDF loss (phase 2 of the paper): frozen discriminators as a feature loss.

.. math::

    \mathcal{L}(\hat x, x) = \sum_{k \in \text{scales}} \sum_{l}
        \frac{1}{C_l H_l W_l} \lVert \phi^k_l(m(\hat x)) - \phi^k_l(m(x)) \rVert_2^2

where :math:`\phi^k_l` is feature ``l`` of discriminator ``k`` and :math:`m` maps
``[0, data_range]`` linearly onto the range the discriminators were trained on. Every
discriminator sees the same full-resolution pair: no resizing (paper, section 3.2).

In eval mode a ConvBlock is an affine convolution followed by LeakyReLU, so BatchNorm is folded
into the convolution weights (``w' = w * g / sqrt(v + eps)``, ``b' = (b - mu) * g / sqrt(v + eps) + beta``),
and target features are computed without autograd unless the target requires grad.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from importlib import resources
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from ._checks import check_image_pair
from .discriminator import FEATURE_SETS, LEAKY_SLOPE, RECEPTIVE_FIELD, PatchDiscriminator
from .discriminator import DiscriminatorPyramid
from .weights import SUFFIX, load_pyramid, save_pyramid

REDUCTIONS = ("mean", "sum", "none")
PRETRAINED_PACKAGE = "mdfloss.pretrained"
_MIN_SIZE_REASON = "the receptive field of the discriminators' five unpadded 3x3 convolutions"

Layers = list[tuple[torch.Tensor, torch.Tensor]]


def folded_layers(discriminator: PatchDiscriminator, dtype: torch.dtype) -> Layers:
    """(weight, bias) of the 5 convolutions with eval-mode BatchNorm folded into the first 4."""
    layers = []
    for block in (discriminator.head, *discriminator.body):
        norm = block.norm
        scale = norm.weight * torch.rsqrt(norm.running_var + norm.eps)
        weight = block.conv.weight * scale[:, None, None, None]
        bias = (block.conv.bias - norm.running_mean) * scale + norm.bias
        layers.append((weight.to(dtype), bias.to(dtype)))
    tail = discriminator.tail
    layers.append((tail.weight.to(dtype), tail.bias.to(dtype)))
    return layers


def _features(x: torch.Tensor, layers: Layers, feature_set: str) -> list[torch.Tensor]:
    """Feature maps of one discriminator, given its folded layers."""
    outputs = []
    h = x
    for weight, bias in layers[:-1]:
        h = F.leaky_relu(F.conv2d(h, weight, bias), LEAKY_SLOPE)
        outputs.append(h)
    outputs.append(F.conv2d(h, *layers[-1]))
    if feature_set == "official":
        return [outputs[0], outputs[-2], outputs[-1]]
    return outputs


def _feature_distance(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Per-sample mean squared difference over (C, H, W), in at least float32: (N,)."""
    if a.dtype in (torch.float16, torch.bfloat16):
        a, b = a.float(), b.float()
    return (a - b).square().flatten(1).mean(dim=1)


def mdf_loss(
    prediction: torch.Tensor,
    target: torch.Tensor,
    pyramid: DiscriminatorPyramid,
    *,
    input_range: tuple[float, float] = (-1.0, 1.0),
    data_range: float = 1.0,
    features: str = "paper",
    scales: int | Sequence[int] | None = None,
    reduction: str = "mean",
    check_range: bool = True,
) -> torch.Tensor:
    """Functional MDF loss; see :class:`MDFLoss` for the arguments. Returns () or (N,)."""
    _check_options(features, reduction, data_range, input_range)
    check_image_pair(
        prediction, target, data_range=data_range, min_size=RECEPTIVE_FIELD,
        min_size_reason=_MIN_SIZE_REASON, check_range=check_range,
    )
    indices = pyramid.select(scales)
    parameter = next(pyramid.parameters())
    if parameter.device != prediction.device:
        raise ValueError(
            f"prediction: expected the loss's device {parameter.device}, got {prediction.device} "
            "(move the loss with .to(device))"
        )
    low, high = input_range
    gain = (high - low) / data_range
    prediction = prediction * gain + low
    target = target * gain + low
    if prediction.shape[1] == 1:
        prediction, target = prediction.expand(-1, 3, -1, -1), target.expand(-1, 3, -1, -1)
    dtype = prediction.dtype
    total = prediction.new_zeros(prediction.shape[0], dtype=torch.promote_types(dtype, torch.float32))
    for index in indices:
        layers = folded_layers(pyramid[index], dtype)
        with torch.set_grad_enabled(torch.is_grad_enabled() and target.requires_grad):
            target_features = _features(target, layers, features)
        for fp, ft in zip(_features(prediction, layers, features), target_features):
            total = total + _feature_distance(fp, ft)
    if reduction == "mean":
        return total.mean()
    if reduction == "sum":
        return total.sum()
    return total


class MDFLoss(nn.Module):
    r"""Multi-Scale Discriminative Feature loss; lower is better.

    Args:
        pyramid: trained discriminators, coarsest first. They are frozen and kept in eval mode.
        input_range: the range the discriminators were trained on; ``[0, data_range]`` is mapped
            linearly onto it. Files record it; ``(-1, 1)`` for SinGAN-style training.
        data_range: the maximum value of the inputs (1.0 or 255.0).
        features: ``"paper"`` (every LeakyReLU output and the tail map) or ``"official"``
            (head output, body output and tail map, as the authors' ``mdfloss.py``).
        scales: which discriminators: ``None`` (all), an int ``n`` (the coarsest ``n``) or a
            list of indices.
        reduction: ``"mean"`` or ``"sum"`` over the batch, or ``"none"`` for shape (N,).
        check_range: refuse values outside ``[0, data_range]`` (NaN/Inf are always refused).
        metadata: the weight file's metadata, kept for :meth:`save`.

    Shape:
        prediction, target: (N, C, H, W), C in {1, 3} (1 is repeated to 3), H, W >= 11.
        output: () or (N,) with ``reduction="none"``.

    Example:
        >>> crit = MDFLoss(DiscriminatorPyramid.official(2))
        >>> prediction = torch.rand(2, 3, 32, 32, requires_grad=True)
        >>> crit(prediction, torch.rand(2, 3, 32, 32)).backward()
    """

    higher_is_better = False
    is_differentiable = True

    def __init__(
        self,
        pyramid: DiscriminatorPyramid,
        *,
        input_range: Sequence[float] = (-1.0, 1.0),
        data_range: float = 1.0,
        features: str = "paper",
        scales: int | Sequence[int] | None = None,
        reduction: str = "mean",
        check_range: bool = True,
        metadata: dict[str, Any] | None = None,
    ) -> None:
        super().__init__()
        if not isinstance(pyramid, DiscriminatorPyramid) or len(pyramid) == 0:
            raise TypeError(f"pyramid: expected a non-empty DiscriminatorPyramid, got {pyramid!r:.80}")
        if len(input_range) != 2:
            raise ValueError(f"input_range: expected (low, high), got {input_range!r}")
        self.input_range = (float(input_range[0]), float(input_range[1]))
        _check_options(features, reduction, data_range, self.input_range)
        self.pyramid = pyramid.eval().requires_grad_(False)
        self.scale_indices = pyramid.select(scales)
        self.data_range = float(data_range)
        self.features = features
        self.reduction = reduction
        self.check_range = check_range
        self.metadata = dict(metadata or {})

    def train(self, mode: bool = True) -> MDFLoss:
        """The discriminators stay in eval mode whatever the mode of the loss."""
        super().train(mode)
        self.pyramid.eval()
        return self

    def forward(self, prediction: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        return mdf_loss(
            prediction, target, self.pyramid,
            input_range=self.input_range, data_range=self.data_range, features=self.features,
            scales=self.scale_indices, reduction=self.reduction, check_range=self.check_range,
        )

    def extra_repr(self) -> str:
        return (
            f"scales={self.scale_indices}, features={self.features!r}, input_range={self.input_range}, "
            f"data_range={self.data_range:g}, reduction={self.reduction!r}"
        )

    @classmethod
    def from_file(cls, path: str | os.PathLike[str], **options: Any) -> MDFLoss:
        """Load an mdfloss weight file (safetensors); ``options`` as for the constructor."""
        pyramid, metadata = load_pyramid(path)
        options.setdefault("input_range", metadata["input_range"])
        return cls(pyramid, metadata=metadata, **options)

    @classmethod
    def pretrained(cls, name: str, **options: Any) -> MDFLoss:
        """A loss shipped inside the package, by name (see :func:`pretrained_names`)."""
        known = pretrained_names()
        if name not in known:
            listed = ", ".join(repr(n) for n in known) or "none are installed"
            raise ValueError(f"name: expected a pretrained MDF loss name ({listed}), got {name!r}")
        with resources.as_file(resources.files(PRETRAINED_PACKAGE) / f"{name}{SUFFIX}") as path:
            return cls.from_file(path, **options)

    @classmethod
    def from_official(cls, path: str | os.PathLike[str], **options: Any) -> MDFLoss:
        """Load the authors' legacy ``Ds_*.pth`` safely (nothing in the pickle is executed).

        Their code feeds [0, 1] images unchanged, so the default input mapping is the identity;
        pass ``input_range=(-1, 1)`` to map into SinGAN's training range instead.
        """
        from .official import load_official

        pyramid, metadata = load_official(path)
        options.setdefault("input_range", metadata["input_range"])
        return cls(pyramid, metadata=metadata, **options)

    def save(self, path: str | os.PathLike[str]) -> Path:
        """Write the discriminators and metadata (with this loss's input range) atomically."""
        metadata = dict(self.metadata, input_range=list(self.input_range))
        return save_pyramid(path, self.pyramid, metadata)


def pretrained_names() -> list[str]:
    """Names accepted by :meth:`MDFLoss.pretrained`: the weight files shipped in the package."""
    folder = resources.files(PRETRAINED_PACKAGE)
    return sorted(
        entry.name[: -len(SUFFIX)] for entry in folder.iterdir() if entry.name.endswith(SUFFIX)
    )


def _check_options(features: str, reduction: str, data_range: float, input_range: Sequence[float]) -> None:
    if features not in FEATURE_SETS:
        raise ValueError(f"features: expected one of {FEATURE_SETS}, got {features!r}")
    if reduction not in REDUCTIONS:
        raise ValueError(f"reduction: expected one of {REDUCTIONS}, got {reduction!r}")
    if isinstance(data_range, bool) or not isinstance(data_range, (int, float)) or not data_range > 0:
        raise ValueError(f"data_range: expected a positive number such as 1.0 or 255.0, got {data_range!r}")
    if not input_range[0] < input_range[1]:
        raise ValueError(f"input_range: expected (low, high) with low < high, got {tuple(input_range)}")
