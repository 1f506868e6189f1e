"""The report's statistics: one experiment's per-image results, means and worst-5 % values with their intervals,
one-tailed paired t-tests, ranks, and how often a reference loss wins; over repeated runs, means with a
two-level bootstrap interval and the probability that one loss's run outperforms another's."""

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
    """results.csv rows of one experiment, indexed by (dataset, metric, loss) -> per-image values.

    With repeated runs, :meth:`get` gives each image's mean over the loss's runs and :meth:`runs`
    the (runs, images) array; rows without a ``repeat`` column are repeat 0.
    """

    def __init__(self, rows: list[dict[str, str]], losses: list[str], datasets: list[str]) -> None:
        self.losses = [loss for loss in losses if any(r["loss"] == loss for r in rows)]
        self.datasets = [d for d in datasets if any(r["dataset"] == d for r in rows)]
        self.images: dict[str, list[str]] = {}
        self.per_run: dict[tuple[str, str, str], np.ndarray] = {}
        self.repeat_ids: dict[tuple[str, str], list[int]] = {}
        """(dataset, loss) -> the repeat of each row of :meth:`runs`."""
        for dataset in self.datasets:
            names = sorted({r["image"] for r in rows if r["dataset"] == dataset})
            self.images[dataset] = names
            for loss in self.losses:
                own = [r for r in rows if r["dataset"] == dataset and r["loss"] == loss]
                repeats = sorted({int(r.get("repeat") or 0) for r in own})
                self.repeat_ids[dataset, loss] = repeats
                for metric in METRICS:
                    table = []
                    for repeat in repeats:
                        by_image = {r["image"]: r for r in own if int(r.get("repeat") or 0) == repeat}
                        cells = [by_image[n].get(metric, "") if n in by_image else "" for n in names]
                        if all(c not in ("", "nan") for c in cells):
                            table.append([float(c) for c in cells])
                    if table and len(table) == len(repeats):
                        self.per_run[dataset, metric, loss] = np.array(table)
        self.values = {key: table.mean(axis=0) for key, table in self.per_run.items()}
        self.metrics = [m for m in METRICS if any(k[1] == m for k in self.values)]
        self.repeats = {loss: max((t.shape[0] for k, t in self.per_run.items() if k[2] == loss), default=0)
                        for loss in self.losses}

    def get(self, dataset: str, metric: str, loss: str) -> np.ndarray | None:
        """Per-image values (the mean over the loss's runs)."""
        return self.values.get((dataset, metric, loss))

    def runs(self, dataset: str, metric: str, loss: str) -> np.ndarray | None:
        """(runs, images) values."""
        return self.per_run.get((dataset, metric, loss))

    @property
    def repeated(self) -> bool:
        """Whether any loss ran more than once."""
        return any(count > 1 for count in self.repeats.values())

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


def two_level_means(values: np.ndarray, samples: int = BOOTSTRAP_SAMPLES, seed: int = 0) -> np.ndarray:
    """Bootstrap means of (runs, images) ``values``: each sample draws R runs with replacement, then,
    within each drawn run, n images with replacement, and averages the R x n values. Shape (samples,)."""
    rng = np.random.default_rng(seed)
    runs, images = values.shape
    chosen_runs = rng.integers(0, runs, size=(samples, runs))
    chosen_images = rng.integers(0, images, size=(samples, runs, images))
    return values[chosen_runs[:, :, None], chosen_images].mean(axis=(1, 2))


def mean_interval(values: np.ndarray, samples: int = BOOTSTRAP_SAMPLES, seed: int = 0) -> tuple[float, float, float]:
    """(mean, low, high): the mean of (runs, images) ``values`` and its 95 % two-level bootstrap interval."""
    means = two_level_means(values, samples, seed)
    return float(values.mean()), float(np.percentile(means, 2.5)), float(np.percentile(means, 97.5))


def prob_better(a: np.ndarray, b: np.ndarray, higher_is_better: bool) -> float:
    """P(A > B): over every pair (run of A, run of B), the share where A's mean over the images is
    better, ties counting one half. ``a`` and ``b`` are (runs, images) on the same images."""
    mean_a, mean_b = a.mean(axis=1)[:, None], b.mean(axis=1)[None, :]
    better = mean_a > mean_b if higher_is_better else mean_a < mean_b
    return float((better + 0.5 * (mean_a == mean_b)).mean())


def prob_better_interval(a: np.ndarray, b: np.ndarray, higher_is_better: bool,
                         samples: int = BOOTSTRAP_SAMPLES, seed: int = 0) -> tuple[float, float]:
    """95 % bootstrap interval of :func:`prob_better`: each sample draws each loss's runs with
    replacement and one set of images with replacement, shared by both (the images are paired)."""
    rng = np.random.default_rng(seed)
    images = a.shape[1]
    estimates = np.empty(samples)
    for k in range(samples):
        chosen = rng.integers(0, images, size=images)
        runs_a = a[rng.integers(0, a.shape[0], size=a.shape[0])][:, chosen]
        runs_b = b[rng.integers(0, b.shape[0], size=b.shape[0])][:, chosen]
        estimates[k] = prob_better(runs_a, runs_b, higher_is_better)
    return float(np.percentile(estimates, 2.5)), float(np.percentile(estimates, 97.5))
