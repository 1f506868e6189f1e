r"""What every loss of the package shares: options, input checks, reduction, frozen networks.

* :class:`PairLoss`: ``loss(prediction, target)`` for (N, C, H, W) images nominally in
  ``[0, data_range]``; subclasses define :meth:`PairLoss.per_sample` (N,), and ``reduction``
  turns it into () or keeps (N,).
* :class:`FrozenFeatureLoss`: a :class:`PairLoss` that compares the features of a frozen
  network (MDF's discriminators, VGG16): the network never trains, stays in eval mode
  whatever the loss's mode, and must sit on the inputs' device (a clear error otherwise, never
  a silent copy).
"""

from __future__ import annotations

from typing import ClassVar

import torch
from torch import nn

from ._checks import (
    check_data_range,
    check_image_pair,
    check_module_device,
    check_reduction,
)
from .functional import reduce


class PairLoss(nn.Module):
    """Base of the losses: ``data_range``, ``reduction``, input checks, metadata (lower is better)."""

    higher_is_better = False
    is_differentiable = True
    min_size = 1
    min_size_reason = "a pixel"

    def __init__(self, *, data_range: float = 1.0, reduction: str = "mean", check_range: bool = False) -> None:
        super().__init__()
        check_data_range(data_range)
        check_reduction(reduction)
        self.data_range = float(data_range)
        self.reduction = reduction
        self.check_range = check_range

    def check_inputs(self, prediction: torch.Tensor, target: torch.Tensor) -> None:
        """Raise TypeError/ValueError for anything but two matching image batches (see check_image_pair)."""
        check_image_pair(
            prediction, target, data_range=self.data_range, min_size=self.min_size,
            min_size_reason=self.min_size_reason, check_range=self.check_range,
        )

    def forward(self, prediction: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        self.check_inputs(prediction, target)
        return reduce(self.per_sample(prediction, target), self.reduction)

    def per_sample(self, prediction: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """The loss of each pair: (N,)."""
        raise NotImplementedError

    def extra_repr(self) -> str:
        return f"data_range={self.data_range:g}, reduction={self.reduction!r}"


class FrozenFeatureLoss(PairLoss):
    """A loss on the features of a frozen network, held in the attribute named ``frozen_network``.

    Subclasses assign that module, then call :meth:`freeze`.
    """

    frozen_network: ClassVar[str]

    def freeze(self) -> None:
        """No gradients for the network's parameters, and eval mode (BatchNorm statistics fixed)."""
        getattr(self, self.frozen_network).eval().requires_grad_(False)

    def train(self, mode: bool = True) -> FrozenFeatureLoss:
        """The frozen network stays in eval mode whatever the mode of the loss."""
        super().train(mode)
        getattr(self, self.frozen_network).eval()
        return self

    def check_inputs(self, prediction: torch.Tensor, target: torch.Tensor) -> None:
        super().check_inputs(prediction, target)
        check_module_device(getattr(self, self.frozen_network), prediction)
