"""Side-by-side crops of the same regions for every loss: the images where the losses disagree most, and in each
the smoothest region of the reference and the region with the largest mean error."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ..._files import read_rgb
from .plots import save_figure
from .stats import ExperimentResults


def image_paths(out: Path, name: str, entry: dict[str, Any], losses: list[str], dataset: str,
                stem: str) -> list[tuple[str, Path | None]]:
    """(label, file) of one test image: the reference, the degraded input, then each loss's output (None when
    the loss has no run folder); the files need not exist."""
    reference = out / name / "reference" / dataset
    paths: list[tuple[str, Path | None]] = [("reference", reference / f"{stem}-target.png"),
                                            ("input", reference / f"{stem}-input.png")]
    for loss in losses:
        folder = entry["runs"].get(loss, {}).get("folder")
        paths.append((loss, out / folder / "images" / dataset / f"{stem}.png" if folder else None))
    return paths


def choose_regions(target: np.ndarray, outputs: Sequence[np.ndarray], size: int) -> list[tuple[str, int, int, int]]:
    """Two square regions of ``size`` px: the smoothest of the reference, and the largest mean error.

    Candidates lie on a grid of stride ``size // 2``; returns (name, top, left, size).
    """
    h, w = target.shape[:2]
    size = min(size, h, w)
    stride = max(size // 2, 1)
    grey = target.mean(axis=2)
    gradient = np.abs(np.diff(grey, axis=0))[:, :-1] + np.abs(np.diff(grey, axis=1))[:-1, :]
    error = np.mean([np.abs(o - target).mean(axis=2) for o in outputs], axis=0) if outputs else grey * 0
    candidates = [(y, x) for y in range(0, h - size + 1, stride) for x in range(0, w - size + 1, stride)]

    def best(score: Callable[[int, int], float]) -> tuple[int, int]:
        return min(candidates, key=lambda c: score(*c))

    smooth = best(lambda y, x: float(gradient[y : y + size - 1, x : x + size - 1].mean()))
    worst = best(lambda y, x: -float(error[y : y + size, x : x + size].mean()))
    return [("smooth", *smooth, size), ("largest error", *worst, size)]


def crop_figure(out: Path, folder: Path, name: str, entry: dict[str, Any], results: ExperimentResults,
                dataset: str, count: int, size: int) -> Path | None:
    """``folder/crops-<dataset>.png``: a row per region of the ``count`` most disputed images, a column for the
    reference, the input (upscaled to the reference's size) and each loss; None when no image is found."""
    from matplotlib.figure import Figure

    rows = []
    for image in _disputed_images(results, dataset, count):
        stem = Path(image).stem
        (_, target_path), (_, input_path), *output_paths = image_paths(out, name, entry, results.losses, dataset, stem)
        target, degraded = _read(target_path), _read(input_path)
        outputs = {loss: _read(path) for loss, path in output_paths if path is not None}
        outputs = {k: v for k, v in outputs.items() if v is not None and target is not None and v.shape == target.shape}
        if target is None or not outputs:
            continue
        for region, top, left, side in choose_regions(target, list(outputs.values()), size):
            tiles = [("reference", _cut(target, top, left, side, 1))]
            if degraded is not None:
                factor = target.shape[0] // degraded.shape[0] if degraded.shape[0] else 1
                tiles.append(("input", _cut(degraded, top // factor, left // factor, side // factor, factor)))
            tiles += [(loss, _cut(o, top, left, side, 1)) for loss, o in outputs.items()]
            rows.append((f"{stem}\n{region} ({left},{top})", tiles))
    if not rows:
        return None
    columns = len(rows[0][1])
    figure = Figure(figsize=(1.6 * columns, 1.75 * len(rows)))
    axes = figure.subplots(len(rows), columns, squeeze=False)
    for r, (row_title, tiles) in enumerate(rows):
        for c, (label, tile) in enumerate(tiles):
            ax = axes[r][c]
            ax.imshow(tile, interpolation="nearest")
            ax.set_xticks([])
            ax.set_yticks([])
            if r == 0:
                ax.set_title(label, fontsize=8)
            if c == 0:
                ax.set_ylabel(row_title, fontsize=6)
    figure.subplots_adjust(wspace=0.04, hspace=0.12)
    return save_figure(figure, folder / f"crops-{dataset.replace('/', '-')}.png")


def _read(path: Path | None) -> np.ndarray | None:
    if path is None or not path.is_file():
        return None
    return read_rgb(path).astype(np.float32) / 255


def _disputed_images(results: ExperimentResults, dataset: str, count: int) -> list[str]:
    """The images whose PSNR differs most between losses."""
    names = results.images[dataset]
    stacks = [v for loss in results.losses if (v := results.get(dataset, "psnr", loss)) is not None]
    if not stacks:
        return names[:count]
    spread = np.ptp(np.stack(stacks), axis=0)
    order = np.argsort(-spread, kind="stable")
    return [names[i] for i in order[:count]]


def _cut(image: np.ndarray, top: int, left: int, side: int, factor: int) -> np.ndarray:
    tile = image[top : top + max(side, 1), left : left + max(side, 1)]
    return np.repeat(np.repeat(tile, factor, axis=0), factor, axis=1) if factor > 1 else tile
