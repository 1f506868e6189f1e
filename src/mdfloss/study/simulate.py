r"""Simulated observers with known scores, to plan a study and to validate the scaling.

A Thurstone Case V observer prefers ``i`` over ``j`` with probability
:math:`\Phi((q_i - q_j)/1.4826)`: 75 % for 1 JND. A random clicker answers 50/50.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from scipy.special import ndtr

from .design import asap_batch
from .scaling import SIGMA


def answer(true: np.ndarray, i: int, j: int, rng: np.random.Generator, random_clicker: bool = False) -> bool:
    """Does the observer choose ``i`` over ``j``?"""
    p = 0.5 if random_clicker else ndtr((true[i] - true[j]) / SIGMA)
    return bool(rng.random() < p)


def _count(counts: np.ndarray, i: int, j: int, i_preferred: bool) -> None:
    """Add one answer to an (N, N) count matrix: row the preferred condition, column the other."""
    if i_preferred:
        counts[i, j] += 1
    else:
        counts[j, i] += 1


def full_design(true: Sequence[float], observers: int, rng: np.random.Generator,
                random_clickers: int = 0) -> np.ndarray:
    """(observers, N, N) counts: every observer compares every pair once (the last
    ``random_clickers`` observers answer at random)."""
    q = np.asarray(true, dtype=float)
    n = len(q)
    mats = np.zeros((observers, n, n))
    for k in range(observers):
        clicker = k >= observers - random_clickers
        for i in range(n):
            for j in range(i + 1, n):
                _count(mats[k], i, j, answer(q, i, j, rng, clicker))
    return mats


def asap_design(true: Sequence[float], observers: int, per_observer: int, rng: np.random.Generator) -> np.ndarray:
    """(observers, N, N) counts: ``observers`` sessions of ``per_observer`` answers each, the pairs
    chosen batch by batch by :func:`design.asap_batch` from all the answers before them."""
    q = np.asarray(true, dtype=float)
    n = len(q)
    mats = np.zeros((observers, n, n))
    queue: list[tuple[int, int]] = []
    for k in range(observers):
        for _ in range(per_observer):
            if not queue:
                queue = asap_batch(mats.sum(0), rng)
            i, j = queue.pop()
            _count(mats[k], i, j, answer(q, i, j, rng))
    return mats
