"""The report's statistics: one experiment's per-image results, means and worst-5 % values with their intervals,
one-tailed paired t-tests, ranks, and how often a reference loss wins."""

from __future__ import annotations

import itertools
import math
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import numpy as np

from ...metrics.image import HIGHER_IS_BETTER, LABELS, METRICS

ALPHA = 0.05
BOOTSTRAP_SAMPLES = 2000
STATISTICS = ("mean", "worst 5 %")


class ExperimentResults:
    """results.csv rows of one experiment, indexed by (dataset, metric, loss) -> per-image values."""

    def __init__(self, rows: list[dict[str, str]], losses: list[str], datasets: list[str]) -> None:
        self.losses = [loss for loss in losses if any(r["loss"] == loss for r in rows)]
        self.datasets = [d for d in datasets if any(r["dataset"] == d for r in rows)]
        self.images: dict[str, list[str]] = {}
        self.values: dict[tuple[str, str, str], np.ndarray] = {}
        for dataset in self.datasets:
            names = sorted({r["image"] for r in rows if r["dataset"] == dataset})
            self.images[dataset] = names
            for loss in self.losses:
                by_image = {r["image"]: r for r in rows if r["dataset"] == dataset and r["loss"] == loss}
                for metric in METRICS:
                    cells = [by_image[n][metric] if n in by_image else "" for n in names]
                    if all(c not in ("", "nan") for c in cells):
                        self.values[dataset, metric, loss] = np.array([float(c) for c in cells])
        self.metrics = [m for m in METRICS if any(k[1] == m for k in self.values)]

    def get(self, dataset: str, metric: str, loss: str) -> np.ndarray | None:
        return self.values.get((dataset, metric, loss))

    def cells(self) -> Iterator[tuple[str, str]]:
        """Every (dataset, metric), in the tables' row order."""
        return itertools.product(self.datasets, self.metrics)


@dataclass
class Summary:
    """One loss on one dataset and metric."""

    values: np.ndarray
    mean: float
    worst: float
    mean_ci: tuple[float, float]
    worst_ci: tuple[float, float]


def worst_percentile(values: np.ndarray, higher_is_better: bool) -> float:
    """The worst 5 %: the 5th percentile when higher is better, else the 95th."""
    return float(np.percentile(values, 5 if higher_is_better else 95))


def statistic(kind: str, values: np.ndarray, higher_is_better: bool) -> float:
    """One of :data:`STATISTICS`: the mean or the worst 5 %."""
    return float(values.mean()) if kind == "mean" else worst_percentile(values, higher_is_better)


def summarize(values: np.ndarray, higher_is_better: bool, seed: int = 0) -> Summary:
    """Mean with its 95 % t interval, worst-5 % value with its 95 % bootstrap interval."""
    from scipy import stats

    n = len(values)
    mean = float(values.mean())
    if n > 1:
        half = float(stats.t.ppf(0.975, n - 1) * values.std(ddof=1) / math.sqrt(n))
        rng = np.random.default_rng(seed)
        resampled = values[rng.integers(0, n, size=(BOOTSTRAP_SAMPLES, n))]
        boot = np.percentile(resampled, 5 if higher_is_better else 95, axis=1)
        worst_ci = (float(np.percentile(boot, 2.5)), float(np.percentile(boot, 97.5)))
    else:
        half, worst_ci = math.nan, (math.nan, math.nan)
    return Summary(values, mean, worst_percentile(values, higher_is_better), (mean - half, mean + half), worst_ci)


def paired_test(reference: np.ndarray, other: np.ndarray, higher_is_better: bool) -> float:
    """One-tailed paired t-test p-value, H1: ``reference`` is better; NaN when undefined."""
    from scipy import stats

    if len(reference) < 2 or np.all(reference == other):
        return math.nan
    alternative = "greater" if higher_is_better else "less"
    return float(stats.ttest_rel(reference, other, alternative=alternative).pvalue)


def rank_marks(values: Sequence[float], higher_is_better: bool) -> list[int]:
    """1 for the best, 2 for the second best (ties share a rank), 0 otherwise; NaN never ranks."""
    finite = sorted({v for v in values if not math.isnan(v)}, reverse=higher_is_better)
    ranks = {v: i + 1 for i, v in enumerate(finite[:2])}
    return [ranks.get(v, 0) if not math.isnan(v) else 0 for v in values]


@dataclass
class Wins:
    """How often a reference loss ranks first (ties included), per statistic, over the (dataset, metric) cells
    where the losses differ; and which loss has the best mean where the reference does not."""

    won: dict[str, int]
    cells: dict[str, int]
    best_mean_elsewhere: list[str]
    """``"dataset metric-label: loss"`` per cell."""


def wins(results: ExperimentResults, reference: str) -> Wins:
    """:class:`Wins` of ``reference``; cells where every loss scores the same are not counted."""
    counted = Wins(dict.fromkeys(STATISTICS, 0), dict.fromkeys(STATISTICS, 0), [])
    for dataset, metric in results.cells():
        higher = HIGHER_IS_BETTER[metric]
        for kind in STATISTICS:
            scores = {loss: statistic(kind, v, higher) for loss in results.losses
                      if (v := results.get(dataset, metric, loss)) is not None}
            if reference not in scores or len(set(scores.values())) < 2:
                continue  # nothing to rank
            best = max(scores.values()) if higher else min(scores.values())
            counted.cells[kind] += 1
            if scores[reference] == best:
                counted.won[kind] += 1
            elif kind == "mean":
                winner = next(loss for loss, s in scores.items() if s == best)
                counted.best_mean_elsewhere.append(f"{dataset} {LABELS[metric]}: {winner}")
    return counted
