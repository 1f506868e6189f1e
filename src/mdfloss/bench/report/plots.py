"""The report's matplotlib figures: violin plots of every metric, and validation PSNR during training."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np

from ..._files import write_atomically
from ...metrics.image import HIGHER_IS_BETTER, LABELS
from ..manifest import runs_of, validation_psnr
from .stats import ALPHA, ExperimentResults, paired_test, summarize


def save_figure(figure: Any, path: Path) -> Path:
    write_atomically(path, lambda tmp: figure.savefig(tmp, format="png", dpi=100, bbox_inches="tight"))
    return path


def violin_plots(folder: Path, results: ExperimentResults, references: list[str]) -> list[Path]:
    """One figure per metric, one panel per dataset: the mean and its 95 % t interval (magenta), the worst-5 %
    value and its 95 % bootstrap interval (black), red asterisks over the losses the first reference beats
    significantly; LPIPS's axis points down, so better is up."""
    from matplotlib.figure import Figure

    paths = []
    for metric in results.metrics:
        higher = HIGHER_IS_BETTER[metric]
        panels = len(results.datasets)
        figure = Figure(figsize=(max(4.0, 0.9 * len(results.losses)) * panels, 3.8), layout="constrained")
        axes = figure.subplots(1, panels, squeeze=False)[0]
        for ax, dataset in zip(axes, results.datasets):
            present = [(i, loss, v) for i, loss in enumerate(results.losses)
                       if (v := results.get(dataset, metric, loss)) is not None]
            if not present:
                continue
            positions = [i + 1 for i, _, _ in present]
            data = [v for _, _, v in present]
            if all(len(v) > 1 and np.ptp(v) > 0 for v in data):
                parts = ax.violinplot(data, positions=positions, showextrema=False)
                for body in parts["bodies"]:
                    body.set_alpha(0.35)
            else:
                for position, values in zip(positions, data):
                    ax.scatter([position] * len(values), values, s=8, color="grey")
            reference = references[0] if references else None
            ref_values = results.get(dataset, metric, reference) if reference else None
            for position, (_, loss, values) in zip(positions, present):
                s = summarize(values, higher)
                ax.errorbar(position - 0.12, s.mean, yerr=_yerr(s.mean, s.mean_ci), fmt="o", color="magenta",
                            markersize=4, capsize=3)
                ax.errorbar(position + 0.12, s.worst, yerr=_yerr(s.worst, s.worst_ci), fmt="s", color="black",
                            markersize=3, capsize=3)
                if ref_values is not None and loss != reference and paired_test(ref_values, values, higher) < ALPHA:
                    top = values.max() if higher else values.min()
                    ax.annotate("*", (position, top), color="red", fontsize=16, ha="center",
                                va="bottom" if higher else "top")
            ax.set_xticks(range(1, len(results.losses) + 1))
            ax.set_xticklabels(results.losses, rotation=35, ha="right")
            ax.set_title(dataset)
            ax.set_ylabel(LABELS[metric] + (" ↑" if higher else " ↓ (axis reversed)"))
            if not higher:
                ax.invert_yaxis()
            ax.grid(axis="y", alpha=0.3)
        paths.append(save_figure(figure, folder / f"violin-{metric}.png"))
    return paths


def _yerr(centre: float, interval: tuple[float, float]) -> list[list[float]] | None:
    low, high = interval
    if math.isnan(low) or math.isnan(high):
        return None
    return [[max(centre - low, 0.0)], [max(high - centre, 0.0)]]


def validation_plot(out: Path, folder: Path, entry: dict[str, Any], losses: list[str]) -> Path | None:
    """Validation PSNR against the iteration: one colour per loss, one line per run (repeat 0 solid, later
    repeats dashed); None when no run logged any."""
    from matplotlib.figure import Figure

    curves = {}
    for loss in losses:
        for run in runs_of(entry, loss):
            if curve := validation_psnr(out, run):
                curves.setdefault(loss, []).append((int(run.get("repeat", 0)), curve))
    if not curves:
        return None
    figure = Figure(figsize=(6.5, 3.8), layout="constrained")
    ax = figure.subplots()
    for index, (loss, runs) in enumerate(curves.items()):
        colour = f"C{index % 10}"
        for n, (repeat, curve) in enumerate(runs):
            x, y = zip(*curve)
            ax.plot(x, y, marker="." if repeat == 0 else None, color=colour, linestyle="-" if repeat == 0 else "--",
                    linewidth=1.2 if repeat == 0 else 0.8, label=loss if n == 0 else None)
    ax.set_xlabel("iteration")
    ax.set_ylabel("validation PSNR [dB]")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, title="dashed: repeats 1+" if any(len(r) > 1 for r in curves.values()) else None,
              title_fontsize=7)
    return save_figure(figure, folder / "validation-psnr.png")
