r"""Which discriminators drive a restoration network's training: per-scale shares of an MDF loss.

For an MDF loss :math:`L = \sum_k L_k` (one term per discriminator) and a network output
:math:`\hat x`, with :math:`g_k = \partial L_k / \partial \hat x` and :math:`g = \sum_k g_k`:

* the **loss share** of scale k is :math:`L_k / L`;
* the **gradient share** is :math:`\langle g_k, g \rangle / \lVert g \rVert^2`, the part of the total
  gradient that scale k contributes along its own direction. The shares sum to 1; a negative one
  means that scale pulls against the others.

:func:`training_shares` measures both on a benchmark run's validation images, for the network as
it started (the identity: bicubic or the degraded input) and as it was selected after training.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

STATES = ("start", "selected")


@dataclass(frozen=True)
class ScaleShare:
    """One discriminator's part of an MDF loss for one image, in one state of the network."""

    state: str
    image: str
    scale: int
    loss: float
    loss_share: float
    gradient_share: float


def scale_shares(parts: dict[int, torch.nn.Module], output: torch.Tensor, target: torch.Tensor
                 ) -> list[tuple[int, float, float, float]]:
    """(scale, L_k, L_k / L, <g_k, g> / |g|^2) for each part, on one (1, 3, H, W) output."""
    output = output.detach().requires_grad_(True)
    values, gradients = {}, {}
    for k, part in parts.items():
        value = part(output, target)
        (gradient,) = torch.autograd.grad(value, output)
        values[k], gradients[k] = float(value.detach()), gradient.double()
    total_value = sum(values.values())
    total_gradient = sum(gradients.values())
    norm = float(total_gradient.square().sum())
    return [(k, values[k], values[k] / total_value, float((gradients[k] * total_gradient).sum()) / norm)
            for k in parts]


def training_shares(out: Path, experiment: str, label: str, *, device: torch.device | str = "cpu"
                    ) -> list[ScaleShare]:
    """The shares of run ``label`` of ``experiment`` in the benchmark folder ``out``, per state and image."""
    from ..bench.config import recorded_config
    from ..bench.experiment import (
        build_run_loss,
        build_run_model,
        load_eval_sets,
        prepare,
    )
    from ..bench.fit import BEST_FILES, load_weights
    from ..bench.manifest import read_manifest
    from ..loss import MDFLoss

    entry = read_manifest(out)["experiments"].get(experiment)
    if entry is None:
        raise ValueError(f"--experiment: expected one of {sorted(read_manifest(out)['experiments'])}, got {experiment!r}")
    run = entry["runs"].get(label)
    if run is None:
        raise ValueError(f"--loss: expected a finished run of {experiment} ({', '.join(entry['runs'])}), got {label!r}")
    config = recorded_config(entry["config"])
    prepared = prepare(config, out)
    losses = [r for r in prepared.runs if r.key == label]
    loss = build_run_loss(prepared, losses[0], device)
    terms = [loss] if isinstance(loss, MDFLoss) else [t for t in getattr(loss, "terms", []) if isinstance(t, MDFLoss)]
    if not terms:
        raise ValueError(f"--loss: {label!r} ({run['spec']}) has no MDF term")
    parts = terms[0].scale_parts()
    images = load_eval_sets(prepared, "val").get("val", [])
    if not images:
        raise ValueError(f"{experiment}: expected validation images (the run's val_dir or val_holdout), found none")
    shares = []
    for state in STATES:
        torch.manual_seed(config["train"]["seed"])
        model = build_run_model(config)
        if state == "selected":
            selection = run.get("selected", config["train"]["select"])
            load_weights(out / run["folder"] / BEST_FILES.get(selection, BEST_FILES["val_loss"]), model)
        model = model.to(device).eval()
        for image in images:
            with torch.no_grad():
                output = model(image.input.unsqueeze(0).to(device))
            target = image.target.unsqueeze(0).to(device)
            for k, value, loss_share, gradient_share in scale_shares(parts, output, target):
                shares.append(ScaleShare(state, image.name, k, value, loss_share, gradient_share))
    return shares


def mean_shares(shares: Sequence[ScaleShare]) -> dict[tuple[str, int], dict[str, Any]]:
    """``{(state, scale): {"loss_share", "gradient_share"}}``: means over the images."""
    grouped: dict[tuple[str, int], list[ScaleShare]] = {}
    for share in shares:
        grouped.setdefault((share.state, share.scale), []).append(share)
    return {key: {"loss_share": sum(s.loss_share for s in group) / len(group),
                  "gradient_share": sum(s.gradient_share for s in group) / len(group)}
            for key, group in grouped.items()}
