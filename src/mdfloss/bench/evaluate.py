"""Test-set evaluation: per-image metrics of one trained network, and the images behind them.

``results.csv`` has one row per (loss, repeat, dataset, image) with the columns of
:data:`RESULT_FIELDS`; ``lpips`` is empty when its weights are unavailable, ``repeat`` is the
run's repeat (0 .. ``train.repeats`` - 1; files written before repeats existed have no column: 0). A dataset is ``<folder>/<condition>``,
e.g. ``BSD500/sigma25`` or ``val/q7``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import torch
from torch import nn

from .._files import write_png
from ..metrics.image import METRICS, ImageMetrics
from .data import EvalImage

RESULT_FIELDS = ("task", "model", "loss", "repeat", "dataset", "image", *METRICS)
INPUT_LABEL = "input"
EvalSets = Mapping[str, Sequence[EvalImage]]
"""``{dataset: images}``, e.g. ``{"val/x4": [...]}``."""


class DegradedInput(nn.Module):
    """The baseline that restores nothing: the degraded input, upsampled bicubically when ``scale`` > 1."""

    def __init__(self, scale: int) -> None:
        super().__init__()
        self.scale = scale

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.scale == 1:
            return x
        return torch.nn.functional.interpolate(x, scale_factor=self.scale, mode="bicubic", align_corners=False)


@torch.no_grad()
def measure(model: nn.Module, datasets: EvalSets, metrics: ImageMetrics, *,
             device: torch.device, labels: dict[str, str], image_dir: Path | None) -> list[dict[str, Any]]:
    """Run ``model`` on every image of every dataset; rows of :data:`RESULT_FIELDS`.

    ``labels`` gives the task, model, loss and repeat columns; outputs are saved as PNGs under
    ``image_dir/<dataset>/`` unless it is None.
    """
    model.eval()
    rows = []
    for dataset, images in datasets.items():
        for item in images:
            output = model(item.input.unsqueeze(0).to(device)).float()
            values = metrics(output, item.target.unsqueeze(0).to(device))
            rows.append({**labels, "dataset": dataset, "image": item.name, **values})
            if image_dir is not None:
                write_png(image_dir / dataset / f"{Path(item.name).stem}.png", output[0])
    return rows


def save_references(datasets: EvalSets, folder: Path) -> None:
    """Ground truth and degraded input of every test image (inputs clamped for display)."""
    for dataset, images in datasets.items():
        for item in images:
            stem = Path(item.name).stem
            if not (folder / dataset / f"{stem}-target.png").is_file():
                write_png(folder / dataset / f"{stem}-target.png", item.target)
                write_png(folder / dataset / f"{stem}-input.png", item.input)


def format_row(row: Mapping[str, Any]) -> dict[str, str]:
    """CSV text: metrics with 6 significant digits, None as empty, NaN as 'nan'."""
    out = {}
    for key in RESULT_FIELDS:
        value = row.get(key)
        if value is None:
            out[key] = ""
        elif isinstance(value, float):
            out[key] = "nan" if math.isnan(value) else f"{value:.6g}" if math.isfinite(value) else str(value)
        else:
            out[key] = str(value)
    return out
