r"""The loss zoo of the benchmark: every loss by name, and weighted sums written as strings.

>>> crit = build_loss("l2+0.1*lpips")          # L2 + 0.1 LPIPS (the paper's LPIPS column)
>>> crit = build_loss("msssim+l1")             # Zhao et al.'s MS-SSIM + L1 mix
>>> crit = build_loss("mdf:denoise")           # a pretrained MDF loss, by name
>>> crit = build_loss("mdf:/path/my.safetensors")   # an MDF weight file
>>> crit = build_loss("mdf:/path/Ds_SISR.pth")      # the authors' legacy file, read safely

Every loss is lower-is-better, takes ``(prediction, target)`` of shape (N, C, H, W) with
values nominally in ``[0, data_range]`` (network outputs are not clamped, so the range is not
enforced), and returns () or, with ``reduction="none"``, (N,).

Grammar of a spec: ``TERM ("+" TERM)*`` with ``TERM = [WEIGHT "*"] NAME``, WEIGHT a decimal
number (``0.1``, ``1e-3``), NAME one of :data:`LOSS_NAMES` or ``mdf:NAME_OR_PATH``. The pair
``msssim+l1`` (``l1`` without a weight of its own) is one term, Zhao et al.'s mix (alias
``msssim_l1``); write ``l1+msssim`` or ``msssim+1*l1`` for the plain sum. A path inside a spec
cannot contain ``+`` or ``*``.

Definitions (per sample, averaged over C, H, W unless said otherwise):

* ``l1`` :math:`|\hat x - x|`, ``l2`` :math:`(\hat x - x)^2`, both on the raw values;
* ``ssim`` :math:`1 - \mathrm{SSIM}` (Wang et al. 2004: 11x11 Gaussian window, sigma 1.5,
  K = (0.01, 0.03), mean over channels), from ``pytorch_msssim``;
* ``msssim`` :math:`1 - \mathrm{MS\text{-}SSIM}` (Wang et al. 2003: 5 scales, weights
  0.0448, 0.2856, 0.3001, 0.2363, 0.1333), from ``pytorch_msssim``. Its 4 downsamplings
  need a side > 16 (w - 1) for a window of width w, i.e. > 160 px for w = 11. Smaller
  inputs keep the 5 scales and sigma = 1.5 and use the widest odd window that fits
  (96 px training patches: w = 5; 48 px: w = 3); below 33 px a ValueError says so;
* ``msssim+l1`` (Zhao et al., "Loss Functions for Image Restoration with Neural Networks",
  IEEE TCI 2017, eq. 9) :math:`\alpha (1 - \mathrm{MS\text{-}SSIM}) + (1 - \alpha)\,
  \overline{G_{\sigma_M} * |\hat x - x|} / \mathrm{data\_range}` with alpha = 0.84 and
  sigma_M = 8 (their coarsest Gaussian), the Gaussian truncated at 3 sigma (49 px, or the
  widest odd width that fits the input) and the mean taken over the valid positions, so the
  L1 term is the per-pixel L1 with borders down-weighted; the MS-SSIM term is ``msssim``;
* ``vgg`` / ``lpips``: :mod:`mdfloss.bench.perceptual` (need ImageNet weights; see there);
  the paper uses them as ``l2+vgg`` and ``l2+0.1*lpips``;
* ``mdf:...``: :class:`mdfloss.MDFLoss` from a pretrained name, a ``.safetensors`` weight file
  or the authors' ``.pth`` (``MDFLoss.from_official``).
"""

from __future__ import annotations

import functools
import math
import os
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from .._checks import check_data_range, check_image_pair, check_reduction

LOSS_NAMES = ("l1", "l2", "ssim", "msssim", "msssim+l1", "vgg", "lpips", "mdf:NAME_OR_PATH")
PERCEPTUAL_NAMES = ("vgg", "lpips")
ALIASES = {"msssim_l1": "msssim+l1", "mse": "l2", "mae": "l1"}

SSIM_WINDOW = 11
SSIM_SIGMA = 1.5
MS_SSIM_WEIGHTS = (0.0448, 0.2856, 0.3001, 0.2363, 0.1333)
MS_SSIM_MIN_WINDOW = 3
MS_SSIM_MIN_SIDE = 16 * (MS_SSIM_MIN_WINDOW - 1) + 1
"""5-scale MS-SSIM downsamples 4 times and needs the smallest window to fit: 33 px."""
ZHAO_ALPHA = 0.84
ZHAO_L1_SIGMA = 8.0
OFFICIAL_SUFFIXES = (".pth", ".pt")

_WEIGHT = r"[0-9]*\.?[0-9]+(?:[eE][-+]?[0-9]+)?"
_TERM = re.compile(rf"^(?:(?P<weight>{_WEIGHT})\s*\*\s*)?(?P<name>[^*]+?)$")
_SPLIT = re.compile(r"(?<![0-9][eE])\+")


def _reduce(per_sample: torch.Tensor, reduction: str) -> torch.Tensor:
    if reduction == "mean":
        return per_sample.mean()
    if reduction == "sum":
        return per_sample.sum()
    return per_sample


def _float32_at_least(x: torch.Tensor) -> torch.Tensor:
    return x.float() if x.dtype in (torch.float16, torch.bfloat16) else x


class _PairLoss(nn.Module):
    """Shared parts: ``reduction``, ``data_range``, input checks, metadata."""

    higher_is_better = False
    is_differentiable = True
    min_size = 1
    min_size_reason = "a pixel"

    def __init__(self, *, data_range: float = 1.0, reduction: str = "mean") -> None:
        super().__init__()
        check_data_range(data_range)
        check_reduction(reduction)
        self.data_range = float(data_range)
        self.reduction = reduction

    def _check(self, prediction: torch.Tensor, target: torch.Tensor) -> None:
        check_image_pair(
            prediction, target, data_range=self.data_range, min_size=self.min_size,
            min_size_reason=self.min_size_reason, check_range=False,
        )

    def forward(self, prediction: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        self._check(prediction, target)
        return _reduce(self.per_sample(prediction, target), self.reduction)

    def per_sample(self, prediction: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def extra_repr(self) -> str:
        return f"data_range={self.data_range:g}, reduction={self.reduction!r}"


class L1Loss(_PairLoss):
    r"""Mean absolute error :math:`\frac{1}{CHW}\sum |\hat x - x|` per sample."""

    def per_sample(self, prediction: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        return (prediction - target).abs().flatten(1).mean(dim=1)


class L2Loss(_PairLoss):
    r"""Mean squared error :math:`\frac{1}{CHW}\sum (\hat x - x)^2` per sample."""

    def per_sample(self, prediction: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        return (prediction - target).square().flatten(1).mean(dim=1)


class SSIMLoss(_PairLoss):
    r""":math:`1 - \mathrm{SSIM}(\hat x, x)` (pytorch_msssim; Gaussian window 11, sigma 1.5).

    Inputs need H, W >= ``win_size``. Half-precision inputs are computed in float32.
    """

    min_size_reason = "the SSIM window"

    def __init__(self, *, data_range: float = 1.0, reduction: str = "mean", win_size: int = SSIM_WINDOW,
                 win_sigma: float = SSIM_SIGMA) -> None:
        super().__init__(data_range=data_range, reduction=reduction)
        if isinstance(win_size, bool) or not isinstance(win_size, int) or win_size < 1 or win_size % 2 == 0:
            raise ValueError(f"win_size: expected an odd positive int, got {win_size!r}")
        self.win_size = win_size
        self.win_sigma = float(win_sigma)
        self.min_size = win_size

    def per_sample(self, prediction: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        return 1 - ssim_value(prediction, target, self.data_range, self.win_size, self.win_sigma)


def ssim_value(prediction: torch.Tensor, target: torch.Tensor, data_range: float,
               win_size: int = SSIM_WINDOW, win_sigma: float = SSIM_SIGMA) -> torch.Tensor:
    """Per-sample SSIM averaged over channels, from pytorch_msssim, in at least float32: (N,)."""
    from pytorch_msssim import ssim

    with torch.autocast(prediction.device.type, enabled=False):
        return ssim(_float32_at_least(prediction), _float32_at_least(target), data_range=data_range,
                    size_average=False, win_size=win_size, win_sigma=win_sigma)


def ms_ssim_window(side: int, win_size: int = SSIM_WINDOW) -> int:
    """Widest odd window <= ``win_size`` that 5-scale MS-SSIM accepts for ``side`` px: side > 16 (w - 1)."""
    fitting = min(win_size, (side - 1) // 16 + 1)
    if fitting % 2 == 0:
        fitting -= 1
    if fitting < MS_SSIM_MIN_WINDOW:
        raise ValueError(
            f"prediction: expected height and width of at least {MS_SSIM_MIN_SIDE} px for 5-scale MS-SSIM "
            f"(4 downsamplings of a {MS_SSIM_MIN_WINDOW}-px window), got a smallest side of {side} px; "
            "use ssim for smaller images"
        )
    return fitting


def ms_ssim_value(prediction: torch.Tensor, target: torch.Tensor, data_range: float,
                  win_size: int = SSIM_WINDOW, win_sigma: float = SSIM_SIGMA) -> torch.Tensor:
    """Per-sample 5-scale MS-SSIM from pytorch_msssim, with the window narrowed for small inputs: (N,)."""
    from pytorch_msssim import ms_ssim

    window = ms_ssim_window(min(prediction.shape[-2:]), win_size)
    with torch.autocast(prediction.device.type, enabled=False):
        return ms_ssim(
            _float32_at_least(prediction), _float32_at_least(target), data_range=data_range,
            size_average=False, win_size=window, win_sigma=win_sigma, weights=list(MS_SSIM_WEIGHTS),
        )


class MSSSIMLoss(_PairLoss):
    r""":math:`1 - \mathrm{MS\text{-}SSIM}(\hat x, x)`, 5 scales; the window narrows below 161 px.

    H, W >= 33 px (see :func:`ms_ssim_window`). Half-precision inputs are computed in float32.
    """

    min_size = MS_SSIM_MIN_SIDE
    min_size_reason = "5-scale MS-SSIM with a 3-px window"

    def __init__(self, *, data_range: float = 1.0, reduction: str = "mean", win_size: int = SSIM_WINDOW,
                 win_sigma: float = SSIM_SIGMA) -> None:
        super().__init__(data_range=data_range, reduction=reduction)
        if isinstance(win_size, bool) or not isinstance(win_size, int) or win_size < MS_SSIM_MIN_WINDOW or win_size % 2 == 0:
            raise ValueError(f"win_size: expected an odd int >= {MS_SSIM_MIN_WINDOW}, got {win_size!r}")
        self.win_size = win_size
        self.win_sigma = float(win_sigma)

    def per_sample(self, prediction: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        return 1 - ms_ssim_value(prediction, target, self.data_range, self.win_size, self.win_sigma)


@functools.lru_cache(maxsize=16)
def gaussian_window(sigma: float, width: int, dtype: torch.dtype, device: torch.device) -> torch.Tensor:
    """Normalised 1-D Gaussian of ``width`` taps (odd), centred: (width,). Cached: built once per
    (sigma, width, dtype, device), not on every training step; callers must not modify it."""
    coords = torch.arange(width, dtype=torch.float64) - width // 2
    window = torch.exp(-coords.square() / (2 * sigma**2))
    return (window / window.sum()).to(device=device, dtype=dtype)


def gaussian_weighted_l1(prediction: torch.Tensor, target: torch.Tensor, sigma: float) -> torch.Tensor:
    r"""Mean over valid positions and channels of :math:`G_\sigma * |\hat x - x|`: (N,).

    The Gaussian is truncated at 3 sigma, or to the widest odd width that fits the input.
    """
    error = (prediction - target).abs()
    width = min(2 * math.ceil(3 * sigma) + 1, min(error.shape[-2:]))
    if width % 2 == 0:
        width -= 1
    channels = error.shape[1]
    window = gaussian_window(sigma, width, error.dtype, error.device)
    blurred = F.conv2d(error, window.view(1, 1, 1, -1).expand(channels, 1, 1, width), groups=channels)
    blurred = F.conv2d(blurred, window.view(1, 1, -1, 1).expand(channels, 1, width, 1), groups=channels)
    return blurred.flatten(1).mean(dim=1)


class MSSSIML1Loss(_PairLoss):
    r"""Zhao et al.'s mix: :math:`\alpha(1-\mathrm{MS\text{-}SSIM}) + (1-\alpha)\,\overline{G_{\sigma_M} * |\hat x - x|}/R`.

    alpha = 0.84, sigma_M = 8 px, R = ``data_range``. H, W >= 33 px, as :class:`MSSSIMLoss`.
    """

    min_size = MSSSIMLoss.min_size
    min_size_reason = MSSSIMLoss.min_size_reason

    def __init__(self, *, data_range: float = 1.0, reduction: str = "mean", alpha: float = ZHAO_ALPHA,
                 l1_sigma: float = ZHAO_L1_SIGMA) -> None:
        super().__init__(data_range=data_range, reduction=reduction)
        if not 0 <= alpha <= 1:
            raise ValueError(f"alpha: expected a mix weight in [0, 1], got {alpha!r}")
        if not l1_sigma > 0:
            raise ValueError(f"l1_sigma: expected a positive Gaussian sigma in px, got {l1_sigma!r}")
        self.alpha = float(alpha)
        self.l1_sigma = float(l1_sigma)

    def per_sample(self, prediction: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        structural = 1 - ms_ssim_value(prediction, target, self.data_range)
        pixel = gaussian_weighted_l1(prediction, target, self.l1_sigma) / self.data_range
        return self.alpha * structural + (1 - self.alpha) * pixel.to(structural.dtype)

    def extra_repr(self) -> str:
        return f"alpha={self.alpha:g}, l1_sigma={self.l1_sigma:g}, {super().extra_repr()}"


class WeightedSum(nn.Module):
    r""":math:`\sum_i w_i \mathcal{L}_i(\hat x, x)`; every term uses the same ``reduction``."""

    higher_is_better = False

    def __init__(self, terms: Sequence[nn.Module], weights: Sequence[float], names: Sequence[str]) -> None:
        super().__init__()
        if not (len(terms) == len(weights) == len(names)) or not terms:
            raise ValueError(
                f"terms, weights, names: expected equal non-zero lengths, got {len(terms)}, {len(weights)}, {len(names)}"
            )
        self.terms = nn.ModuleList(terms)
        self.weights = [float(w) for w in weights]
        self.names = list(names)

    @property
    def is_differentiable(self) -> bool:
        return all(getattr(term, "is_differentiable", True) for term in self.terms)

    def forward(self, prediction: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        total = None
        for weight, term in zip(self.weights, self.terms):
            value = weight * term(prediction, target)
            total = value if total is None else total + value
        return total

    def extra_repr(self) -> str:
        return " + ".join(f"{w:g}*{n}" for w, n in zip(self.weights, self.names))


@dataclass(frozen=True)
class LossTerm:
    """One parsed term of a spec: ``weight * name``."""

    weight: float
    name: str

    @property
    def needs_imagenet_weights(self) -> bool:
        return self.name in PERCEPTUAL_NAMES


def parse_loss_spec(spec: str) -> list[LossTerm]:
    """``"l2+0.1*lpips"`` -> [LossTerm(1.0, "l2"), LossTerm(0.1, "lpips")]; names are checked."""
    if not isinstance(spec, str):
        raise TypeError(f"spec: expected a loss spec string such as 'l2+0.1*lpips', got {type(spec).__name__}")
    pieces = [piece.strip() for piece in _SPLIT.split(spec.strip())]
    if not spec.strip() or any(not piece for piece in pieces):
        raise ValueError(f"spec: expected terms joined by '+', such as 'l2+0.1*lpips', got {spec!r}")
    raw: list[tuple[str | None, str]] = []
    for piece in pieces:
        match = _TERM.match(piece)
        if match is None:
            raise ValueError(
                f"spec: expected each term as NAME or WEIGHT*NAME (e.g. 0.1*lpips), got {piece!r} in {spec!r}"
            )
        name = match["name"].strip()
        name = "mdf:" + name[4:].strip() if name.lower().startswith("mdf:") else name.lower()
        raw.append((match["weight"], name))
    terms: list[LossTerm] = []
    index = 0
    while index < len(raw):
        weight, name = raw[index]
        if name == "msssim" and index + 1 < len(raw) and raw[index + 1] == (None, "l1"):
            name, index = "msssim+l1", index + 1
        name = ALIASES.get(name, name)
        _check_name(name, spec)
        value = float(weight) if weight is not None else 1.0
        if not math.isfinite(value) or value <= 0:
            raise ValueError(f"spec: expected positive finite weights, got {weight!r} in {spec!r}")
        terms.append(LossTerm(value, name))
        index += 1
    return terms


def _check_name(name: str, spec: str) -> None:
    if name in LOSS_NAMES[:-1]:
        return
    if name.startswith("mdf:") and len(name) > 4:
        return
    if name == "mdf":
        raise ValueError(
            f"spec: expected 'mdf:NAME' (a pretrained MDF loss) or 'mdf:PATH' (a .safetensors weight file "
            f"or the authors' .pth), got a bare 'mdf' in {spec!r}"
        )
    raise ValueError(f"spec: expected loss names from {', '.join(LOSS_NAMES)}, got {name!r} in {spec!r}")


def build_loss(
    spec: str,
    *,
    device: str | torch.device = "cpu",
    reduction: str = "mean",
    data_range: float = 1.0,
    mdf_options: dict[str, Any] | None = None,
    perceptual_options: dict[str, dict[str, Any]] | None = None,
) -> nn.Module:
    """The loss described by ``spec`` (see the module docstring), on ``device``; lower is better.

    Args:
        spec: e.g. ``"l1"``, ``"msssim+l1"``, ``"l2+0.1*lpips"``, ``"mdf:denoise"``, ``"mdf:/x/Ds_JPEG.pth"``.
        device: where the loss's tensors live (MDF discriminators, VGG weights).
        reduction: ``"mean"``/``"sum"`` over the batch, or ``"none"`` for (N,).
        data_range: the maximum value of the images (1.0 or 255.0).
        mdf_options: keyword arguments for :class:`mdfloss.MDFLoss` (``scales``, ``features``,
            ``input_range``...). ``check_range`` defaults to False: restoration networks output
            unclamped values.
        perceptual_options: ``{"vgg": {...}, "lpips": {...}}`` keyword arguments for
            :class:`~mdfloss.bench.perceptual.VGGPerceptualLoss` and ``LPIPSVGGLoss`` (``weights``,
            ``heads``, ``layers``); without them the weights come from the torch hub cache and
            the lpips package. ``check_range`` defaults to False here too.

    Returns a single module for a one-term spec with weight 1, else a :class:`WeightedSum`.
    Raises ValueError for a bad spec, FileNotFoundError for missing weights.
    """
    check_reduction(reduction)
    check_data_range(data_range)
    terms = parse_loss_spec(spec)
    modules = [
        _build_term(term.name, reduction=reduction, data_range=data_range, mdf_options=mdf_options or {},
                    perceptual_options=perceptual_options or {})
        for term in terms
    ]
    if len(terms) == 1 and terms[0].weight == 1.0:
        loss = modules[0]
    else:
        loss = WeightedSum(modules, [t.weight for t in terms], [t.name for t in terms])
    return loss.to(device)


def _build_term(name: str, *, reduction: str, data_range: float, mdf_options: dict[str, Any],
                perceptual_options: dict[str, dict[str, Any]]) -> nn.Module:
    simple = {"l1": L1Loss, "l2": L2Loss, "ssim": SSIMLoss, "msssim": MSSSIMLoss, "msssim+l1": MSSSIML1Loss}
    if name in simple:
        return simple[name](data_range=data_range, reduction=reduction)
    if name in PERCEPTUAL_NAMES:
        return _build_perceptual(name, reduction, data_range, perceptual_options.get(name, {}))
    return build_mdf_loss(name[len("mdf:"):], reduction=reduction, data_range=data_range, **mdf_options)


def _build_perceptual(name: str, reduction: str, data_range: float, options: dict[str, Any]) -> nn.Module:
    from . import perceptual

    cls = perceptual.VGGPerceptualLoss if name == "vgg" else perceptual.LPIPSVGGLoss
    options = {"check_range": False, **options}
    return cls(reduction=reduction, data_range=data_range, **options)


def build_mdf_loss(source: str | os.PathLike[str], **options: Any) -> nn.Module:
    """An :class:`mdfloss.MDFLoss` from a pretrained name, a ``.safetensors`` file or an official ``.pth``.

    A source with a path separator or a file suffix is a path; anything else is a pretrained name.
    ``check_range`` defaults to False (unclamped network outputs).
    """
    from ..loss import MDFLoss

    options.setdefault("check_range", False)
    text = os.fspath(source)
    path = Path(text)
    looks_like_path = os.sep in text or "/" in text or path.suffix != "" or path.exists()
    if not looks_like_path:
        return MDFLoss.pretrained(text, **options)
    if not path.is_file():
        raise FileNotFoundError(f"MDF weight file not found: {path}")
    if path.suffix.lower() in OFFICIAL_SUFFIXES:
        return MDFLoss.from_official(path, **options)
    return MDFLoss.from_file(path, **options)
