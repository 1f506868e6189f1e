"""The paper's figures from scaled results: Fig. 5 (JND per loss with 95 % intervals) and Fig. 6
(perception-distortion: PSNR against JND, both axes reversed as in the paper)."""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np

from .._files import write_atomically
from .scaling import GroupResult


def _save(figure: object, path: str | os.PathLike[str]) -> Path:
    import matplotlib.pyplot as plt

    target = write_atomically(path, lambda tmp: figure.savefig(tmp, format="png", dpi=150))  # type: ignore[attr-defined]
    plt.close(figure)  # type: ignore[arg-type]
    return target


def jnd_plot(pooled: GroupResult, per_image: Sequence[GroupResult], path: str | os.PathLike[str],
             title: str = "") -> Path:
    """Fig. 5: pooled JND of each condition (best on the right) with its 95 % interval; the
    per-image scores as small grey dots."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    if pooled.boot is None:
        raise ValueError(f"pooled: expected scaled scores, got none ({pooled.error})")
    order = np.argsort(pooled.boot.jnd)
    labels = [pooled.conditions[k] for k in order]
    figure, axes = plt.subplots(figsize=(max(4.0, 0.9 * len(labels) + 1.5), 3.6))
    x = np.arange(len(labels))
    label = "per image"
    for group in per_image:
        if group.boot is None:
            continue
        spots = [labels.index(c) for c in group.conditions if c in labels]
        values = [group.boot.jnd[group.conditions.index(labels[s])] for s in spots]
        axes.scatter(np.array(spots) + 0.18, values, s=8, color="0.7", zorder=1, label=label)
        label = None
    jnd = pooled.boot.jnd[order]
    if np.all(np.isfinite(pooled.boot.low)):
        errors = np.vstack([jnd - pooled.boot.low[order], pooled.boot.high[order] - jnd])
        axes.errorbar(x, jnd, yerr=errors, fmt="o", color="C0", capsize=4, zorder=2, label="all images, 95% CI")
    else:
        axes.plot(x, jnd, "o", color="C0", zorder=2, label="all images")
    axes.set_xticks(x, labels, rotation=30, ha="right")
    axes.set_ylabel("quality [JND] (higher is better)")
    axes.axhline(0, color="0.85", lw=0.8, zorder=0)
    axes.set_title(title or f"{pooled.answers} comparisons")
    axes.legend(loc="upper left", fontsize=8, frameon=False)
    figure.tight_layout()
    return _save(figure, path)


def psnr_jnd_plot(pooled: GroupResult, psnr: Mapping[str, float], path: str | os.PathLike[str],
                  title: str = "") -> Path:
    """Fig. 6: mean PSNR (x, reversed: least distortion on the left) against pooled JND (y, reversed:
    best perceived quality at the bottom), with the JND intervals."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    if pooled.boot is None:
        raise ValueError(f"pooled: expected scaled scores, got none ({pooled.error})")
    shared = [c for c in pooled.conditions if c in psnr]
    if not shared:
        raise ValueError(f"psnr: expected values for the conditions {pooled.conditions}, got {sorted(psnr)}")
    figure, axes = plt.subplots(figsize=(5, 4))
    for n, condition in enumerate(shared):
        k = pooled.conditions.index(condition)
        jnd, low, high = pooled.boot.jnd[k], pooled.boot.low[k], pooled.boot.high[k]
        yerr = [[jnd - low], [high - jnd]] if np.isfinite(low) else None
        axes.errorbar(psnr[condition], jnd, yerr=yerr, fmt="o", color=f"C{n % 10}", capsize=3, label=condition)
    axes.invert_xaxis()
    axes.invert_yaxis()
    axes.set_xlabel("distortion: PSNR [dB] (reversed)")
    axes.set_ylabel("perceived quality [JND] (reversed)")
    axes.set_title(title or "perception-distortion trade-off")
    axes.legend(fontsize=8, frameon=False)
    figure.tight_layout()
    return _save(figure, path)
