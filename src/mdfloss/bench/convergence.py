"""When a run has converged: the least-squares slope of its validation PSNR over the last window.

A run of budget ``B`` iterations with ``train.converge.enabled`` goes on past ``B``, one
validation interval at a time, until the line fitted to its validation PSNR over the last
``window x B`` iterations predicts a gain under ``min_gain_db`` over one more such window, or
until ``max_factor x B`` iterations (the cap). The learning-rate schedule is laid over the
budget, as without ``--converge``; past it the rate stays at the schedule's last value, so the
first ``B`` iterations of a converged run are exactly the run without ``--converge``.

The same slope, over the last quarter of a run, is what the report's convergence table shows
for every run.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

Curve = Sequence[tuple[int, float]]
"""(iteration, validation PSNR in dB), in order."""
STATUSES = ("converged", "cap", "budget")
"""How a run ended: the slope rule stopped it, it reached the cap, or it ran its budget (no ``--converge``)."""


def window_slope(curve: Curve, window: float) -> float:
    """dB per iteration: the least-squares slope of the points with iteration >= last - ``window``;
    NaN with fewer than two such points."""
    if not curve:
        return math.nan
    last = curve[-1][0]
    points = [(float(i), float(v)) for i, v in curve if i >= last - window]
    if len(points) < 2:
        return math.nan
    mean_i = sum(i for i, _ in points) / len(points)
    mean_v = sum(v for _, v in points) / len(points)
    spread = sum((i - mean_i) ** 2 for i, _ in points)
    return sum((i - mean_i) * (v - mean_v) for i, v in points) / spread


@dataclass(frozen=True)
class ConvergenceRule:
    """``train.converge`` of a run with a budget of ``budget`` iterations."""

    budget: int
    enabled: bool = False
    min_gain_db: float = 0.1
    window: float = 0.25
    """A fraction of the budget."""
    max_factor: float = 4.0

    @classmethod
    def from_config(cls, options: dict[str, Any], budget: int) -> ConvergenceRule:
        return cls(budget, bool(options["enabled"]), float(options["min_gain_db"]), float(options["window"]),
                   float(options["max_factor"]))

    @property
    def window_iterations(self) -> int:
        return max(1, round(self.window * self.budget))

    @property
    def cap(self) -> int:
        """The most iterations a run may take: the budget without ``enabled``."""
        return math.floor(self.max_factor * self.budget) if self.enabled else self.budget

    def predicted_gain(self, curve: Curve) -> float:
        """dB the fitted line predicts over one more window (NaN with fewer than two points in it)."""
        return window_slope(curve, self.window_iterations) * self.window_iterations

    def converged(self, curve: Curve) -> bool:
        """Whether the predicted gain is under ``min_gain_db`` (a NaN gain is not converged)."""
        return self.predicted_gain(curve) < self.min_gain_db

    def status(self, iteration: int, curve: Curve) -> str | None:
        """Why a run at ``iteration`` with validation ``curve`` stops now (one of :data:`STATUSES`), or None."""
        if iteration < self.budget:
            return None
        if not self.enabled:
            return "budget"
        if curve and curve[-1][0] == iteration and self.converged(curve):
            return "converged"
        return "cap" if iteration >= self.cap else None
