"""SinGAN's residual generator of one scale, and SinGAN's weight initialisation.

Five unpadded 3x3 convolutions, the same shape as the discriminator, with a 3-channel tail::

    G(x) = crop_5(x) + tanh(tail(body(head(x))))
    head = ConvBlock(3 -> N), body = ConvBlock(N -> N) x 3, tail = Conv2d(N -> 3)

(B, 3, H + 10, W + 10) -> (B, 3, H, W): the input carries a ``MARGIN`` = 5 px border that the
convolutions consume, and the output is added to the input's centre.
"""

from __future__ import annotations

import torch
from torch import nn

from ..discriminator import ConvStack

MARGIN = 5
"""Pixels each side that the five unpadded 3x3 convolutions trim: (11 - 1) / 2."""


def singan_init_(module: nn.Module, generator: torch.Generator) -> nn.Module:
    """SinGAN's initialisation, drawn from ``generator``: conv N(0, 0.02), BN weight N(1, 0.02), biases 0."""
    with torch.no_grad():
        for layer in module.modules():
            if isinstance(layer, nn.Conv2d):
                layer.weight.copy_(torch.randn(layer.weight.shape, generator=generator) * 0.02)
                nn.init.zeros_(layer.bias)
            elif isinstance(layer, nn.BatchNorm2d):
                layer.weight.copy_(1.0 + torch.randn(layer.weight.shape, generator=generator) * 0.02)
                nn.init.zeros_(layer.bias)
    return module


class ResidualGenerator(ConvStack):
    """One scale's generator of width ``N``: (B, 3, H + 10, W + 10) -> (B, 3, H, W), residual."""

    def __init__(self, width: int) -> None:
        super().__init__(width, 3, 3)

    def zero_tail_(self) -> ResidualGenerator:
        """Make the residual branch output exactly 0, so that G starts as the identity on the centre."""
        with torch.no_grad():
            nn.init.zeros_(self.tail.weight)
            nn.init.zeros_(self.tail.bias)
        return self

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.shape[-2] <= 2 * MARGIN or x.shape[-1] <= 2 * MARGIN:
            raise ValueError(
                f"x: expected height and width above {2 * MARGIN} px (a {MARGIN} px margin each side), "
                f"got shape {tuple(x.shape)}"
            )
        residual = torch.tanh(self.tail(self.body(self.head(x))))
        return x[..., MARGIN:-MARGIN, MARGIN:-MARGIN] + residual
