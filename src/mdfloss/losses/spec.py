r"""Every loss by name, and weighted sums of them written as strings (specs).

>>> crit = build_loss("l2+0.1*lpips")          # L2 + 0.1 LPIPS (the paper's LPIPS column)
>>> crit = build_loss("msssim+l1")             # Zhao et al.'s MS-SSIM + L1 mix
>>> crit = build_loss("mdf:denoise")           # a pretrained MDF loss, by name
>>> crit = build_loss("mdf:/path/my.safetensors")   # an MDF weight file
>>> crit = build_loss("mdf:/path/Ds_SISR.pth")      # the authors' legacy file, read safely

Grammar of a spec: ``TERM ("+" TERM)*`` with ``TERM = [WEIGHT "*"] NAME``, WEIGHT a decimal
number (``0.1``, ``1e-3``), NAME one of :data:`LOSS_NAMES` or ``mdf:NAME_OR_PATH``. The pair
``msssim+l1`` (``l1`` without a weight of its own) is one term, Zhao et al.'s mix (alias
``msssim_l1``); write ``l1+msssim`` or ``msssim+1*l1`` for the plain sum. A path inside a spec
cannot contain ``+`` or ``*``.

Names: ``l1``, ``l2``, ``ssim``, ``msssim``, ``msssim+l1`` (:mod:`mdfloss.losses.classic`);
``vgg``, ``lpips`` (:mod:`mdfloss.losses.perceptual`; they need ImageNet weights, and the paper
uses them as ``l2+vgg`` and ``l2+0.1*lpips``); ``mdf:...``: :class:`mdfloss.MDFLoss` from a
pretrained name, a ``.safetensors`` weight file or the authors' ``.pth``.
"""

from __future__ import annotations

import math
import os
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from .._checks import check_data_range, check_reduction
from .._files import existing_file
from .classic import L1Loss, L2Loss, MSSSIML1Loss, MSSSIMLoss, SSIMLoss

CLASSIC = {"l1": L1Loss, "l2": L2Loss, "ssim": SSIMLoss, "msssim": MSSSIMLoss, "msssim+l1": MSSSIML1Loss}
PERCEPTUAL_NAMES = ("vgg", "lpips")
MDF_NAME = "mdf:NAME_OR_PATH"
LOSS_NAMES = (*CLASSIC, *PERCEPTUAL_NAMES, MDF_NAME)
ALIASES = {"msssim_l1": "msssim+l1", "mse": "l2", "mae": "l1"}

OFFICIAL_SUFFIXES = (".pth", ".pt")

_WEIGHT = r"[0-9]*\.?[0-9]+(?:[eE][-+]?[0-9]+)?"
_TERM = re.compile(rf"^(?:(?P<weight>{_WEIGHT})\s*\*\s*)?(?P<name>[^*]+?)$")
_SPLIT = re.compile(r"(?<![0-9][eE])\+")


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
    if name in CLASSIC or name in PERCEPTUAL_NAMES:
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
            :class:`~mdfloss.losses.perceptual.VGGPerceptualLoss` and ``LPIPSVGGLoss`` (``weights``,
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
    if name in CLASSIC:
        return CLASSIC[name](data_range=data_range, reduction=reduction)
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
    existing_file(path, "mdf", "a weight file")
    if path.suffix.lower() in OFFICIAL_SUFFIXES:
        return MDFLoss.from_official(path, **options)
    return MDFLoss.from_file(path, **options)


MDF_FILE_SUFFIXES = (".safetensors", *OFFICIAL_SUFFIXES)


def loss_spec(text: str) -> str:
    """A loss named on a command line (``--loss``) as a :func:`build_loss` spec.

    Weight files (.safetensors, .pth, .pt) and pretrained names become ``mdf:...``; anything else
    (``l1``, ``mdf:denoise``, ``l2+0.1*lpips``) is passed on unchanged.
    """
    from ..loss import pretrained_names

    text = text.strip()
    if text.lower().startswith("mdf:"):
        return text
    if Path(text).suffix.lower() in MDF_FILE_SUFFIXES or text in pretrained_names():
        return f"mdf:{text}"
    return text


def loss_label(spec: str) -> str:
    """A short name for a spec: ``mdf:<file stem or name>`` for MDF losses, the spec otherwise."""
    if spec.lower().startswith("mdf:"):
        return f"mdf:{Path(spec[4:]).stem}"
    return spec
