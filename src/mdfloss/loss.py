r"""The MDF loss (phase 2 of the paper): frozen discriminators as a feature loss.

.. math::

    \mathcal{L}(\hat x, x) = \sum_{k \in \text{scales}} \sum_{l}
        \frac{1}{C_l H_l W_l} \lVert \phi^k_l(m(\hat x)) - \phi^k_l(m(x)) \rVert_2^2

where :math:`\phi^k_l` is feature ``l`` of discriminator ``k`` and :math:`m` maps
``[0, data_range]`` linearly onto the range the discriminators were trained on. Every
discriminator sees the same full-resolution pair: no resizing (paper, section 3.2).

Usage: :class:`MDFLoss` (or :func:`mdf_loss`); how it is computed fast: :class:`_PairDistance`.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from importlib import resources
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F

from ._checks import (
    check_data_range,
    check_image_pair,
    check_module_device,
    check_reduction,
)
from .base import FrozenFeatureLoss
from .discriminator import (
    FEATURE_LAYERS,
    FEATURE_SETS,
    LEAKY_SLOPE,
    RECEPTIVE_FIELD,
    DiscriminatorPyramid,
    PatchDiscriminator,
)
from .functional import float32_at_least, reduce
from .weights import SUFFIX, load_pyramid, save_pyramid

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
    return [outputs[i] for i in FEATURE_LAYERS[feature_set]]


def _feature_distance(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Per-sample mean squared difference over (C, H, W), in at least float32: (N,)."""
    return (float32_at_least(a) - float32_at_least(b)).square().flatten(1).mean(dim=1)


def _fused_path_applies(prediction: torch.Tensor, target: torch.Tensor, pyramid: DiscriminatorPyramid) -> bool:
    """True when :class:`_PairDistance` gives the plain form's values and gradients."""
    return (
        prediction.dtype in (torch.float32, torch.float64)
        and not target.requires_grad
        and not torch.is_autocast_enabled(prediction.device.type)
        and not torch.compiler.is_compiling()
        and not _inside_torch_func(prediction)
        and not any(p.requires_grad for p in pyramid.parameters())
    )


def _inside_torch_func(x: torch.Tensor) -> bool:
    """Whether ``x`` is wrapped by a torch.func transform (grad, vmap, ...), which must trace plain ops.

    torch has no public test for this; the private ``torch._C._functorch`` one exists from torch 2.0
    on (the package needs >= 2.4) and is kept to this one place.
    """
    return bool(torch._C._functorch.is_functorch_wrapped_tensor(x))


def _squared_norm_mean(d: torch.Tensor) -> torch.Tensor:
    """mean over (C, H, W) of d^2: (N,). Not ``vector_norm(d) ** 2``: one pass, but it sums in
    float32 without torch.sum's cascade and is off by ~1e-3 relative for 10^7 elements."""
    return d.square().sum(dim=(1, 2, 3)) / d[0].numel()


class _PairDistance(torch.autograd.Function):
    """Summed feature distance of one discriminator, with a hand-written backward: (N,).

    ``apply(prediction, target, feature_set, w0, b0, ..., w4, b4)`` with the folded layers;
    only ``prediction`` gets a gradient.

    How it is computed, and why (benchmarks/loss_cost.py measures each step):

    * In eval mode a ConvBlock is an affine convolution followed by LeakyReLU, so BatchNorm is folded
      into the convolution weights (``w' = w * g / sqrt(v + eps)``, ``b' = (b - mu) * g / sqrt(v + eps) + beta``).
    * The usual case (float32/float64, frozen discriminators, a target without grad, no autocast, no
      torch.compile) runs each discriminator as one autograd Function, :class:`_PairDistance`, with a
      hand-written backward. Its forward runs target and prediction through the convolutions with
      LeakyReLU applied in place, keeps only what the backward needs (the prediction's activations
      for the LeakyReLU slopes and the feature differences ``d_l``), and sums each ``d_l^2`` with
      torch.sum (cascade summation: accurate over millions of elements). The tail is linear, so
      its difference is one convolution of ``d`` at the last body layer instead of two. Its backward is
      ``g_l = leaky'(a_l) * (conv_transpose(g_{l+1}, w_{l+1}) + 2 s d_l / n_l)``, with ``s`` the
      incoming per-sample gradient: no autograd graph, no squared-difference temporaries. On the
      CPU the feature maps are channels-last, where oneDNN's 3x3 convolutions with 32-64
      channels run markedly faster than in NCHW.
    * Every other case (half precision, autocast, a target or discriminators that require grad,
      torch.compile and torch.func transforms, which trace plain ops) takes the plain autograd form,
      :func:`_features` and :func:`_feature_distance`; both forms give the same values to float
      precision. A backward with ``create_graph=True`` through the Function differentiates the
      plain form, so higher derivatives stay exact.
    """

    @staticmethod
    def forward(ctx: Any, prediction: torch.Tensor, target: torch.Tensor, feature_set: str,
                *tensors: torch.Tensor) -> torch.Tensor:
        layout = channels_layout(prediction)
        weights, biases = [w.contiguous(memory_format=layout) for w in tensors[0::2]], tensors[1::2]
        compared, last = FEATURE_LAYERS[feature_set], len(weights) - 2
        keep = ctx.needs_input_grad[0]
        hp, ht = prediction.contiguous(memory_format=layout), target.contiguous(memory_format=layout)
        total = prediction.new_zeros(prediction.shape[0])
        activations, differences = [], []
        for layer in range(last + 1):
            hp = F.leaky_relu_(F.conv2d(hp, weights[layer], biases[layer]), LEAKY_SLOPE)
            ht = F.leaky_relu_(F.conv2d(ht, weights[layer], biases[layer]), LEAKY_SLOPE)
            difference = hp - ht if layer in compared or layer == last else None
            if layer in compared:
                total += _squared_norm_mean(difference)
            if keep:
                activations.append(hp)
                differences.append(difference if layer in compared else None)
        # The tail is linear: tail(hp) - tail(ht) = conv(hp - ht) without the bias.
        difference = F.conv2d(difference, weights[-1])
        total += _squared_norm_mean(difference)
        if keep:
            differences.append(difference)
            ctx.feature_set, ctx.compared = feature_set, [d is not None for d in differences]
            ctx.save_for_backward(prediction, target, *tensors, *activations, *(d for d in differences if d is not None))
        return total

    @staticmethod
    def backward(ctx: Any, grad_total: torch.Tensor) -> tuple[torch.Tensor | None, ...]:
        prediction, target, *saved = ctx.saved_tensors
        count = len(ctx.compared)
        tensors, activations, kept = saved[: 2 * count], saved[2 * count: 3 * count - 1], iter(saved[3 * count - 1:])
        nothing = (None,) * (2 + len(tensors))  # target, feature_set, tensors
        if torch.is_grad_enabled():  # create_graph=True: differentiate the plain autograd form
            layers = list(zip(tensors[0::2], tensors[1::2]))
            pairs = zip(_features(prediction, layers, ctx.feature_set), _features(target, layers, ctx.feature_set))
            distance = sum(_feature_distance(fp, ft) for fp, ft in pairs)
            return (torch.autograd.grad(distance, prediction, grad_total, create_graph=True)[0], *nothing)
        weights = [w.contiguous(memory_format=channels_layout(prediction)) for w in tensors[0::2]]
        differences = [next(kept) if compared else None for compared in ctx.compared]
        scale = 2 * grad_total.view(-1, 1, 1, 1)
        grad = differences[-1] * (scale / differences[-1][0].numel())
        for layer in range(count - 2, -1, -1):
            grad = F.conv_transpose2d(grad, weights[layer + 1])
            if differences[layer] is not None:
                grad.addcmul_(differences[layer], scale / differences[layer][0].numel())
            grad = torch.ops.aten.leaky_relu_backward(grad, activations[layer], LEAKY_SLOPE, True)
        grad = F.conv_transpose2d(grad, weights[0])  # prediction's own layout, as gradcheck expects
        return (grad.contiguous() if prediction.is_contiguous() else grad, *nothing)


def channels_layout(x: torch.Tensor) -> torch.memory_format:
    """Channels-last on the CPU (oneDNN's fast layout for these convolutions), else NCHW."""
    return torch.channels_last if x.device.type == "cpu" else torch.contiguous_format


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
    check_module_device(pyramid, prediction)
    per_sample = _per_sample_distance(prediction, target, pyramid, pyramid.select(scales), input_range, data_range,
                                      features)
    return reduce(per_sample, reduction)


def _per_sample_distance(prediction: torch.Tensor, target: torch.Tensor, pyramid: DiscriminatorPyramid,
                         indices: Sequence[int], input_range: tuple[float, float], data_range: float,
                         features: str) -> torch.Tensor:
    """The summed feature distances of the discriminators ``indices``, inputs already checked: (N,)."""
    low, high = input_range
    gain = (high - low) / data_range
    prediction = prediction * gain + low
    target = target * gain + low
    if prediction.shape[1] == 1:
        prediction, target = prediction.expand(-1, 3, -1, -1), target.expand(-1, 3, -1, -1)
    dtype = prediction.dtype
    total = prediction.new_zeros(prediction.shape[0], dtype=torch.promote_types(dtype, torch.float32))
    fused = _fused_path_applies(prediction, target, pyramid)
    if fused and not torch.is_grad_enabled():
        prediction = prediction.detach()  # so that _PairDistance keeps nothing for a backward
    for index in indices:
        layers = folded_layers(pyramid[index], dtype)
        if fused:
            tensors = [t for layer in layers for t in layer]
            total = total + _PairDistance.apply(prediction, target, features, *tensors)
            continue
        with torch.set_grad_enabled(torch.is_grad_enabled() and target.requires_grad):
            target_features = _features(target, layers, features)
        for fp, ft in zip(_features(prediction, layers, features), target_features):
            total = total + _feature_distance(fp, ft)
    return total


class MDFLoss(FrozenFeatureLoss):
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

    frozen_network = "pyramid"
    min_size = RECEPTIVE_FIELD
    min_size_reason = _MIN_SIZE_REASON

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
        super().__init__(data_range=data_range, reduction=reduction, check_range=check_range)
        if not isinstance(pyramid, DiscriminatorPyramid) or len(pyramid) == 0:
            raise TypeError(f"pyramid: expected a non-empty DiscriminatorPyramid, got {pyramid!r:.80}")
        if len(input_range) != 2:
            raise ValueError(f"input_range: expected (low, high), got {input_range!r}")
        self.input_range = (float(input_range[0]), float(input_range[1]))
        _check_options(features, reduction, data_range, self.input_range)
        self.pyramid = pyramid
        self.freeze()
        self.scale_indices = pyramid.select(scales)
        self.features = features
        self.metadata = dict(metadata or {})

    def per_sample(self, prediction: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        return _per_sample_distance(prediction, target, self.pyramid, self.scale_indices, self.input_range,
                                    self.data_range, self.features)

    def extra_repr(self) -> str:
        return (
            f"scales={self.scale_indices}, features={self.features!r}, input_range={self.input_range}, "
            f"data_range={self.data_range:g}, reduction={self.reduction!r}"
        )

    @torch.no_grad()
    def feature_maps(self, images: torch.Tensor) -> dict[int, list[torch.Tensor]]:
        """``{k: discriminator k's compared feature maps}`` of (N, C, H, W) images in ``[0, data_range]``,
        as the loss compares them (same input mapping and feature set), for the ``scale_indices``."""
        self.check_inputs(images, images)
        low, high = self.input_range
        x = images * ((high - low) / self.data_range) + low
        if x.shape[1] == 1:
            x = x.expand(-1, 3, -1, -1)
        return {k: _features(x, folded_layers(self.pyramid[k], x.dtype), self.features) for k in self.scale_indices}

    def scale_parts(self) -> dict[int, MDFLoss]:
        """``{k: the loss of discriminator k alone}`` for each of ``scale_indices``, with this loss's
        options and shared (frozen) discriminators; with ``reduction`` "sum"/"none" they add up to it."""
        return {k: MDFLoss(self.pyramid, input_range=self.input_range, data_range=self.data_range,
                           features=self.features, scales=[k], reduction=self.reduction,
                           check_range=self.check_range, metadata=self.metadata)
                for k in self.scale_indices}

    @classmethod
    def from_file(cls, path: str | os.PathLike[str], **options: Any) -> MDFLoss:
        """Load an mdfloss weight file (safetensors); ``options`` as for the constructor.

        Without ``scales``, the file's ``default_scales`` are used (all scales when it has none);
        ``scales=None`` asks for all of them."""
        pyramid, metadata = load_pyramid(path)
        options.setdefault("input_range", metadata["input_range"])
        options.setdefault("scales", metadata.get("default_scales"))
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
        """Write the discriminators and metadata atomically, with this loss's input range and, when it
        uses only some discriminators, their indices as the file's ``default_scales``."""
        metadata = {k: v for k, v in self.metadata.items() if k != "default_scales"}
        metadata["input_range"] = list(self.input_range)
        if list(self.scale_indices) != list(range(len(self.pyramid))):
            metadata["default_scales"] = list(self.scale_indices)
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
    check_reduction(reduction)
    check_data_range(data_range)
    if not input_range[0] < input_range[1]:
        raise ValueError(f"input_range: expected (low, high) with low < high, got {tuple(input_range)}")
