"""SinGAN patch discriminators and the pyramid of them that makes an MDF loss.

A discriminator is five unpadded 3x3 convolutions::

    head = ConvBlock(3 -> N)
    body = ConvBlock(N -> N) x 3
    tail = Conv2d(N -> 1)
    ConvBlock = Conv2d(3x3, stride 1, padding 0) -> BatchNorm2d -> LeakyReLU(0.2)

Each convolution trims 2 px, so an (H, W) input gives an (H - 10, W - 10) map and every
output value sees an 11x11 patch (the receptive field).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import torch
from torch import nn

from ._checks import check_int

RECEPTIVE_FIELD = 11
"""Smallest input side a discriminator accepts: five 3x3 valid convolutions."""

LEAKY_SLOPE = 0.2
BODY_BLOCKS = 3
FEATURE_LAYERS = {"paper": (0, 1, 2, 3, 4), "official": (0, 3, 4)}
"""Which of a discriminator's 5 outputs (4 LeakyReLU outputs, then the tail map) each feature set uses."""
FEATURE_SETS = tuple(FEATURE_LAYERS)


def official_widths(num_scales: int) -> list[int]:
    """SinGAN's width schedule: 32 channels, doubling every 4 scales, capped at 128."""
    return [min(32 * 2 ** (k // 4), 128) for k in range(num_scales)]


class ConvBlock(nn.Sequential):
    """Conv2d 3x3 (no padding) -> BatchNorm2d -> LeakyReLU(0.2)."""

    def __init__(self, in_channels: int, out_channels: int) -> None:
        super().__init__()
        self.conv = nn.Conv2d(in_channels, out_channels, kernel_size=3, stride=1, padding=0)
        self.norm = nn.BatchNorm2d(out_channels)
        self.act = nn.LeakyReLU(LEAKY_SLOPE)


class ConvStack(nn.Module):
    """SinGAN's net of width ``N``, shared by D and G: a head and BODY_BLOCKS conv blocks, then an
    unpadded 3x3 convolution to ``out_channels``."""

    def __init__(self, width: int, in_channels: int, out_channels: int) -> None:
        super().__init__()
        if width < 1:
            raise ValueError(f"width: expected a positive channel count, got {width}")
        self.width = width
        self.head = ConvBlock(in_channels, width)
        self.body = nn.Sequential(*(ConvBlock(width, width) for _ in range(BODY_BLOCKS)))
        self.tail = nn.Conv2d(width, out_channels, kernel_size=3, stride=1, padding=0)


class PatchDiscriminator(ConvStack):
    """One SinGAN discriminator of width ``N``: (B, 3, H, W) -> (B, 1, H - 10, W - 10)."""

    def __init__(self, width: int, in_channels: int = 3) -> None:
        super().__init__(width, in_channels, 1)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """SinGAN's initialisation: conv weights N(0, 0.02), BN weights N(1, 0.02), biases 0."""
        for module in self.modules():
            if isinstance(module, nn.Conv2d):
                nn.init.normal_(module.weight, 0.0, 0.02)
                nn.init.zeros_(module.bias)
            elif isinstance(module, nn.BatchNorm2d):
                nn.init.normal_(module.weight, 1.0, 0.02)
                nn.init.zeros_(module.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.tail(self.body(self.head(x)))

    def features(self, x: torch.Tensor, feature_set: str = "paper") -> list[torch.Tensor]:
        """Intermediate activations used by the loss.

        ``"paper"``: the output of every LeakyReLU and the tail map (5 tensors);
        ``"official"``: head output, body output and tail map (3 tensors), as gfxdisp/mdf.
        """
        if feature_set not in FEATURE_SETS:
            raise ValueError(f"feature_set: expected one of {FEATURE_SETS}, got {feature_set!r}")
        h = self.head(x)
        outputs = [h]
        for block in self.body:
            h = block(h)
            outputs.append(h)
        outputs.append(self.tail(h))
        return [outputs[i] for i in FEATURE_LAYERS[feature_set]]


class DiscriminatorPyramid(nn.Module):
    """K patch discriminators, coarsest scale first, each with its own width."""

    def __init__(self, widths: Iterable[int] = ()) -> None:
        super().__init__()
        self.discriminators = nn.ModuleList(PatchDiscriminator(w) for w in widths)

    @classmethod
    def official(cls, num_scales: int = 8) -> DiscriminatorPyramid:
        """A freshly initialised pyramid with the authors' width schedule."""
        return cls(official_widths(num_scales))

    @property
    def widths(self) -> list[int]:
        return [d.width for d in self.discriminators]

    def __len__(self) -> int:
        return len(self.discriminators)

    def __getitem__(self, index: int) -> PatchDiscriminator:
        return self.discriminators[index]  # type: ignore[return-value]

    def append(self, discriminator: PatchDiscriminator) -> None:
        """Add the next finer scale (phase-1 training grows the pyramid this way)."""
        self.discriminators.append(discriminator)

    def select(self, scales: int | Sequence[int] | None) -> list[int]:
        """Indices chosen by ``scales``: None = all, int n = the first (coarsest) n, or a list."""
        return select_scales(scales, len(self))


def select_scales(scales: int | Sequence[int] | None, count: int, name: str = "scales") -> list[int]:
    """Indices of ``count`` discriminators chosen by ``scales``: None = all, int n = the first (coarsest) n,
    or a list of distinct indices; ``name`` is the argument the errors name."""
    if scales is None:
        return list(range(count))
    if isinstance(scales, (bool, str)) or not isinstance(scales, (int, Sequence)):
        raise TypeError(f"{name}: expected None, an int or a list of ints, got {type(scales).__name__}")
    if isinstance(scales, int):
        return list(range(check_int(name, scales, minimum=1, maximum=count)))
    indices = list(scales)
    if not indices:
        raise ValueError(f"{name}: expected at least one scale index, got an empty list")
    for position, index in enumerate(indices):
        check_int(f"{name}[{position}]", index, minimum=0, maximum=count - 1)
    if len(set(indices)) != len(indices):
        raise ValueError(f"{name}: expected distinct indices, got {indices}")
    return indices
