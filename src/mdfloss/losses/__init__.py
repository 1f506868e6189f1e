"""The loss zoo: every loss the benchmark and the analyses compare, by name or spec string.

* :mod:`~mdfloss.losses.classic`: L1, L2, SSIM, MS-SSIM, MS-SSIM + L1;
* :mod:`~mdfloss.losses.perceptual`: VGG16 feature loss and LPIPS (need ImageNet weights);
* :mod:`~mdfloss.losses.spec`: ``build_loss("l2+0.1*lpips")`` and the spec grammar.

The MDF loss itself is :class:`mdfloss.MDFLoss` (:mod:`mdfloss.loss`); what every loss shares
(options, checks, reduction, frozen networks) is :mod:`mdfloss.base`, under both.
"""

from .spec import (
    LOSS_NAMES,
    LossTerm,
    WeightedSum,
    build_loss,
    build_mdf_loss,
    loss_label,
    loss_spec,
    parse_loss_spec,
)

__all__ = ["LOSS_NAMES", "LossTerm", "WeightedSum", "build_loss", "build_mdf_loss", "loss_label", "loss_spec",
           "parse_loss_spec"]
