r"""VGG16 feature losses: a perceptual loss and an LPIPS-style loss.

torchvision is not needed: :class:`VGG16Features` rebuilds the convolutional part of VGG16
(Simonyan and Zisserman 2015) with torchvision's exact module layout, so its state dict keys
are torchvision's (``features.0.weight`` ... ``features.28.bias``) and a torchvision
``vgg16-397923af.pth`` loads as it is. Those 13 convolutions hold 14,714,688 parameters, the
paper's 58.9 MB "VGG" (Table 1).

Weights never come from the network. ``weights=None`` reads the standard torch hub cache
(``$TORCH_HOME/hub/checkpoints/vgg16-397923af.pth``, by default under ``~/.cache/torch``),
``weights=PATH`` a file, and ``weights="random"`` gives randomly initialised convolutions,
which are only good for testing code paths and timing: the values mean nothing.

>>> crit = VGGPerceptualLoss(weights="random")       # or weights="/path/vgg16-397923af.pth"
>>> prediction = torch.rand(2, 3, 32, 32, requires_grad=True)
>>> crit(prediction, torch.rand(2, 3, 32, 32)).backward()
"""

from __future__ import annotations

import importlib.util
import os
import pickle
from collections.abc import Sequence
from pathlib import Path

import torch
import torch.hub
import torch.nn.functional as F
from torch import nn

from .._files import existing_file
from ..base import FrozenFeatureLoss
from ..functional import float32_at_least

VGG16_CONFIG = (64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M", 512, 512, 512, "M")
"""torchvision's configuration "D": output channels of each 3x3 convolution, "M" a 2x2 max-pool."""

VGG16_FILE = "vgg16-397923af.pth"
VGG16_URL = "https://download.pytorch.org/models/vgg16-397923af.pth"
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
BLOCK_ENDS = ("relu1_2", "relu2_2", "relu3_3", "relu4_3", "relu5_3")
"""The last ReLU of each of the five blocks: LPIPS's layers and the default perceptual layers."""

LPIPS_SHIFT = (-0.030, -0.088, -0.188)
LPIPS_SCALE = (0.458, 0.448, 0.450)
LPIPS_HEADS_FILE = Path("weights") / "v0.1" / "vgg.pth"
LPIPS_EPS = 1e-10
RANDOM = "random"
UNIFORM = "uniform"


def vgg16_layer_names() -> list[str]:
    """Names of the 31 modules of ``features``: conv1_1, relu1_1, conv1_2, relu1_2, pool1, ..."""
    names, block, index = [], 1, 1
    for item in VGG16_CONFIG:
        if item == "M":
            names.append(f"pool{block}")
            block, index = block + 1, 1
        else:
            names += [f"conv{block}_{index}", f"relu{block}_{index}"]
            index += 1
    return names


LAYER_NAMES = vgg16_layer_names()


class VGG16Features(nn.Module):
    """torchvision's ``vgg16().features``: 13 conv 3x3 (padding 1) + ReLU, 5 max-pools 2x2.

    ``forward(x, layers)`` returns the named feature maps, in the order asked, computing no
    further than the deepest one. x: (N, 3, H, W), already normalised.
    """

    def __init__(self) -> None:
        super().__init__()
        modules: list[nn.Module] = []
        channels = 3
        for item in VGG16_CONFIG:
            if item == "M":
                modules.append(nn.MaxPool2d(kernel_size=2, stride=2))
            else:
                modules += [nn.Conv2d(channels, int(item), kernel_size=3, padding=1), nn.ReLU()]
                channels = int(item)
        self.features = nn.Sequential(*modules)

    def forward(self, x: torch.Tensor, layers: Sequence[str]) -> list[torch.Tensor]:
        wanted = {LAYER_NAMES.index(name): name for name in layers}
        found: dict[str, torch.Tensor] = {}
        h = x
        for index in range(max(wanted) + 1):
            h = self.features[index](h)
            if index in wanted:
                found[wanted[index]] = h
        return [found[name] for name in layers]


def vgg16_weight_path() -> Path:
    """Where torchvision would cache VGG16: ``<torch.hub.get_dir()>/checkpoints/vgg16-397923af.pth``."""
    return Path(torch.hub.get_dir()) / "checkpoints" / VGG16_FILE


def load_vgg16_state_dict(path: str | os.PathLike[str]) -> dict[str, torch.Tensor]:
    """The ``features.*`` tensors of a torchvision VGG16 state dict file (classifier keys ignored).

    A state dict of ``features`` alone (keys ``0.weight`` ...) is accepted too. Read with
    ``torch.load(weights_only=True)``: nothing in the file is executed.
    """
    state = _load_tensor_dict(path)
    if not any(key.startswith("features.") for key in state):
        state = {f"features.{key}": value for key, value in state.items()}
    expected = VGG16Features().state_dict()
    features = {key: value for key, value in state.items() if not key.startswith("classifier.")}
    missing = sorted(set(expected) - set(features))
    unexpected = sorted(set(features) - set(expected))
    wrong = [
        f"{key} {tuple(features[key].shape)} (expected {tuple(expected[key].shape)})"
        for key in expected if key in features and features[key].shape != expected[key].shape
    ]
    if missing or unexpected or wrong:
        raise ValueError(
            f"{os.fspath(path)}: expected a torchvision VGG16 state dict (features.0.weight ... features.28.bias); "
            f"missing {missing[:4]}, unexpected {unexpected[:4]}, wrong shapes {wrong[:4]}"
        )
    return features


def _load_tensor_dict(path: str | os.PathLike[str]) -> dict[str, torch.Tensor]:
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except (RuntimeError, pickle.UnpicklingError, EOFError, ValueError) as error:
        raise ValueError(f"{os.fspath(path)}: expected a torch state dict file, could not read it ({error})") from None
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise ValueError(f"{os.fspath(path)}: expected a dict of tensors (a state dict), got {type(state).__name__}")
    return state


def _vgg16(weights: str | os.PathLike[str] | None) -> VGG16Features:
    vgg = VGG16Features()
    if isinstance(weights, str) and weights == RANDOM:
        return vgg
    if weights is None:
        path = vgg16_weight_path()
        if not path.is_file():
            raise FileNotFoundError(
                f"VGG16 ImageNet weights not found: looked for {path}. Nothing is downloaded: copy "
                f"torchvision's {VGG16_FILE} ({VGG16_URL}) there, set TORCH_HOME to the folder above "
                "hub/checkpoints, or pass weights='/path/to/vgg16.pth' (a torchvision VGG16 state dict). "
                "weights='random' gives random weights, only for testing code paths and timing."
            )
    else:
        path = existing_file(
            weights, "weights", f"a VGG16 weight file (a torchvision state dict such as {VGG16_FILE}; "
            "weights=None for the torch hub cache, 'random' for tests)",
        )
    vgg.load_state_dict(load_vgg16_state_dict(path))
    return vgg


def _pools_before(layers: Sequence[str]) -> tuple[int, str]:
    """(number of 2x2 max-pools up to the deepest of ``layers``, that layer's name)."""
    deepest = max(LAYER_NAMES.index(name) for name in layers)
    return sum(name.startswith("pool") for name in LAYER_NAMES[: deepest + 1]), LAYER_NAMES[deepest]


class _VGGLoss(FrozenFeatureLoss):
    """Shared parts: frozen VGG16, [0, data_range] -> [0, 1], per-layer distances.

    The features are computed in the dtype of the loss's weights (``.double()`` the loss for
    float64), or as autocast decides; the distances in at least float32.
    """

    frozen_network = "vgg"

    def __init__(
        self, weights: str | os.PathLike[str] | None, layers: Sequence[str], data_range: float,
        reduction: str, check_range: bool,
    ) -> None:
        super().__init__(data_range=data_range, reduction=reduction, check_range=check_range)
        if isinstance(layers, str) or not layers or any(name not in LAYER_NAMES for name in layers):
            raise ValueError(f"layers: expected a non-empty list of VGG16 layer names from {LAYER_NAMES}, got {layers!r}")
        self.layers = tuple(layers)
        pools, deepest = _pools_before(self.layers)
        self.min_size = 2**pools
        self.min_size_reason = f"{pools} 2x2 max-poolings up to {deepest}"
        self.vgg = _vgg16(weights)
        self.freeze()

    def per_sample(self, prediction: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        weight = self.vgg.features[0].weight
        compute = weight.dtype if not torch.is_autocast_enabled(prediction.device.type) else prediction.dtype
        prediction = self.normalise(prediction.to(compute) / self.data_range)
        with torch.set_grad_enabled(torch.is_grad_enabled() and target.requires_grad):
            target_features = self.vgg(self.normalise(target.to(compute) / self.data_range), self.layers)
        return self.distance(self.vgg(prediction, self.layers), target_features)

    def normalise(self, x: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def distance(self, prediction: list[torch.Tensor], target: list[torch.Tensor]) -> torch.Tensor:
        raise NotImplementedError

    def extra_repr(self) -> str:
        return f"layers={self.layers}, data_range={self.data_range:g}, reduction={self.reduction!r}"


def _rgb(x: torch.Tensor) -> torch.Tensor:
    return x.expand(-1, 3, -1, -1) if x.shape[1] == 1 else x


class VGGPerceptualLoss(_VGGLoss):
    r"""Feature reconstruction loss on VGG16 (Johnson et al. 2016); lower is better.

    .. math::

        \mathcal{L}(\hat x, x) = \sum_{l \in \text{layers}} \frac{1}{C_l H_l W_l}
            \lVert \phi_l(n(\hat x)) - \phi_l(n(x)) \rVert_2^2

    with :math:`n` the ImageNet normalisation ``(x / data_range - mean) / std``.

    Args:
        weights: ``None`` (torch hub cache), a path to a torchvision VGG16 state dict, or
            ``"random"`` (random weights: only for testing code paths and timing).
        layers: VGG16 layer names (:data:`LAYER_NAMES`, e.g. ``"relu2_2"``); default the last
            ReLU of each block, relu1_2 ... relu5_3.
        data_range: the maximum value of the inputs (1.0 or 255.0).
        reduction: ``"mean"`` or ``"sum"`` over the batch, or ``"none"`` for shape (N,).
        check_range: refuse values outside ``[0, data_range]`` (NaN/Inf are always refused).

    Shape:
        prediction, target: (N, C, H, W), C in {1, 3} (1 is repeated to 3), H, W >= 16 for
        relu5_3 (2 ** the number of max-pools before the deepest layer).
        output: () or (N,) with ``reduction="none"``.
    """

    def __init__(
        self, weights: str | os.PathLike[str] | None = None, *, layers: Sequence[str] = BLOCK_ENDS,
        data_range: float = 1.0, reduction: str = "mean", check_range: bool = True,
    ) -> None:
        super().__init__(weights, layers, data_range, reduction, check_range)
        self.register_buffer("mean", torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(IMAGENET_STD).view(1, 3, 1, 1), persistent=False)

    def normalise(self, x: torch.Tensor) -> torch.Tensor:
        return (_rgb(x) - self.mean.to(x.dtype)) / self.std.to(x.dtype)

    def distance(self, prediction: list[torch.Tensor], target: list[torch.Tensor]) -> torch.Tensor:
        total = 0
        for fp, ft in zip(prediction, target):
            total = total + (float32_at_least(fp) - float32_at_least(ft)).square().flatten(1).mean(dim=1)
        return total


class LPIPSVGGLoss(_VGGLoss):
    r"""LPIPS with a VGG16 trunk (Zhang et al. 2018, version 0.1); lower is better.

    .. math::

        \mathcal{L}(\hat x, x) = \sum_{l} \frac{1}{H_l W_l} \sum_{h, w}
            \sum_c w_{l,c} \big(\bar\phi_l(\hat x) - \bar\phi_l(x)\big)_{c,h,w}^2,
        \qquad \bar\phi = \phi / (\lVert \phi \rVert_{2,\text{channels}} + 10^{-10})

    over relu1_2, relu2_2, relu3_3, relu4_3, relu5_3; inputs in ``[0, data_range]`` are mapped
    to ``[-1, 1]`` and then through LPIPS's scaling layer ``(x - shift) / scale``.

    Args:
        weights: the VGG16 trunk, as for :class:`VGGPerceptualLoss`.
        heads: the non-negative 1x1 linear heads :math:`w_l`: ``None`` (the ``lpips`` package's
            ``weights/v0.1/vgg.pth`` when that package is installed), a path to a file in the
            lpips format (keys ``lin0.model.1.weight`` ... ``lin4.model.1.weight``, shapes
            (1, C, 1, 1)), or ``"uniform"`` (all ones: only for testing code paths and timing).
        data_range, reduction, check_range: as for :class:`VGGPerceptualLoss`.

    Shape:
        prediction, target: (N, C, H, W), C in {1, 3}, H, W >= 16. output: () or (N,).
    """

    def __init__(
        self, weights: str | os.PathLike[str] | None = None, *, heads: str | os.PathLike[str] | None = None,
        data_range: float = 1.0, reduction: str = "mean", check_range: bool = True,
    ) -> None:
        super().__init__(weights, BLOCK_ENDS, data_range, reduction, check_range)
        widths = [64, 128, 256, 512, 512]
        self.heads = nn.ParameterList(nn.Parameter(torch.ones(1, c, 1, 1), requires_grad=False) for c in widths)
        if not (isinstance(heads, str) and heads == UNIFORM):
            for head, value in zip(self.heads, load_lpips_heads(heads, widths)):
                head.copy_(value)
        self.register_buffer("shift", torch.tensor(LPIPS_SHIFT).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("scale", torch.tensor(LPIPS_SCALE).view(1, 3, 1, 1), persistent=False)

    def normalise(self, x: torch.Tensor) -> torch.Tensor:
        return (_rgb(x) * 2 - 1 - self.shift.to(x.dtype)) / self.scale.to(x.dtype)

    def distance(self, prediction: list[torch.Tensor], target: list[torch.Tensor]) -> torch.Tensor:
        total = 0
        for fp, ft, head in zip(prediction, target, self.heads):
            fp, ft = float32_at_least(fp), float32_at_least(ft)
            difference = (_unit(fp) - _unit(ft)).square()
            total = total + F.conv2d(difference, head.to(difference.dtype)).mean(dim=(1, 2, 3))
        return total


def _unit(x: torch.Tensor) -> torch.Tensor:
    """x / (||x|| over channels + 1e-10); vector_norm's gradient is 0, not NaN, where x is 0."""
    return x / (torch.linalg.vector_norm(x, dim=1, keepdim=True) + LPIPS_EPS)


def load_lpips_heads(source: str | os.PathLike[str] | None, widths: Sequence[int]) -> list[torch.Tensor]:
    """The five linear heads (1, C, 1, 1) from an lpips-format file (``lin{k}.model.1.weight``)."""
    if source is None:
        spec = importlib.util.find_spec("lpips")
        path = Path(spec.origin).parent / LPIPS_HEADS_FILE if spec and spec.origin else None
        if path is None or not path.is_file():
            raise FileNotFoundError(
                "LPIPS linear heads not found: looked for the lpips package's "
                f"{LPIPS_HEADS_FILE.as_posix()}{f' at {path}' if path else ' (lpips is not installed)'}. "
                "Pass heads='/path/to/vgg.pth' (lpips format, keys lin0.model.1.weight ...), "
                "or heads='uniform' (all ones, only for testing code paths and timing)."
            )
    else:
        path = existing_file(
            source, "heads", "an LPIPS head file (lpips's weights/v0.1/vgg.pth; "
            "heads=None for the installed lpips package, 'uniform' for tests)",
        )
    state = _load_tensor_dict(path)
    heads = []
    for index, channels in enumerate(widths):
        key = f"lin{index}.model.1.weight"
        value = state.get(key)
        if value is None or tuple(value.shape) != (1, channels, 1, 1):
            got = "missing" if value is None else f"shape {tuple(value.shape)}"
            raise ValueError(f"{path}: expected {key} of shape (1, {channels}, 1, 1) (lpips format), got {got}")
        if bool((value < 0).any()):
            raise ValueError(f"{path}: expected non-negative LPIPS head weights, got a minimum of {float(value.min()):.4g} in {key}")
        heads.append(value)
    return heads
