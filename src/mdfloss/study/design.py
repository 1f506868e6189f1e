r"""Which pairs a session gets: the full design, or active sampling by expected information gain.

``full`` (the paper): every pair of conditions of every image, handed out so that each pair has
been given to as many sessions as any other (least-given first, ties at random).

``asap`` (Mikhailiuk et al., ICPR 2020): per image, the posterior of the scores given the answers
so far is approximated by a Gaussian (Laplace, in JND units, prior :math:`N(0, \tau^2)`); each pair
is scored by its expected information gain

.. math:: \mathrm{EIG}_{ij} = p_{ij}\,\mathrm{KL}(\pi_{i>j}\,\|\,\pi) + (1-p_{ij})\,\mathrm{KL}(\pi_{j>i}\,\|\,\pi),

where :math:`\pi_{i>j}` is the posterior after one more answer "i over j" and :math:`p_{ij}` its
predictive probability; the minimum spanning tree of :math:`1/\mathrm{EIG}` gives the next batch
of N-1 pairs, which connects every condition. :class:`AsapQueue` computes the batches in a
background thread, so a session never waits for them.
"""

from __future__ import annotations

import math
import queue
import sqlite3
import threading
from collections import deque
from collections.abc import Callable, Sequence
from itertools import combinations
from typing import Any

import numpy as np
from scipy.sparse.csgraph import minimum_spanning_tree
from scipy.special import ndtr

from .scaling import SIGMA, phi_ratio
from .store import Store, TrialSpec

DESIGNS = ("full", "asap")
PRIOR_SD = 0.5**0.5 * SIGMA
"""ASAP's prior N(0, 0.5) in its unit-noise scale, in JND units."""

Pair = tuple[int, int, int]
"""(block id, condition id, condition id)."""


def golden_count(tests: int, rate: float) -> int:
    """Golden trials to add to ``tests`` test trials so they are about ``rate`` of all (at least one if rate > 0)."""
    if rate <= 0:
        return 0
    return max(1, round(tests * rate / (1 - rate)))


SECONDS_PER_TRIAL = 8
"""Planning figure for one comparison (look, choose, next images): an assumption, not a
measurement; the admin page shows the observers' mean response time once they answer."""
LONG_SESSION_MINUTES = 20
"""Longer sessions get a warning at ``study create``: observers tire."""
MAX_SESSION_MINUTES = 60
"""Longer sessions are refused at ``study create``."""


def session_trials(tests: int, rate: float) -> int:
    """Trials of one session: ``tests`` test trials and their golden trials."""
    return tests + golden_count(tests, rate)


def session_minutes(tests: int, rate: float) -> int:
    """Estimated length of a session in whole minutes (rounded up), at :data:`SECONDS_PER_TRIAL`."""
    return max(1, math.ceil(session_trials(tests, rate) * SECONDS_PER_TRIAL / 60))


def full_design(blocks: Sequence[dict[str, Any]], given: dict[Pair, int], count: int,
                rng: np.random.Generator) -> list[Pair]:
    """``count`` test pairs for one session: always a pair given to the fewest sessions so far."""
    pairs = [(b["id"], *sorted((x["id"], y["id"]))) for b in blocks for x, y in combinations(b["test"], 2)]
    if not pairs:
        raise ValueError("blocks: expected at least one image with 2 or more conditions, got none")
    counts = np.array([given.get(p, 0) for p in pairs], dtype=float)
    chosen = []
    for _ in range(count):
        best = np.flatnonzero(counts == counts.min())
        pick = int(rng.choice(best))
        chosen.append(pairs[pick])
        counts[pick] += 1
    return chosen


def arrange(pairs: Sequence[Pair], blocks: Sequence[dict[str, Any]], golden_rate: float,
            rng: np.random.Generator) -> list[TrialSpec]:
    """The session's trials: test pairs with random sides, golden trials mixed in, shuffled so
    that the same image is not shown twice in a row where that can be avoided."""
    items = []
    for block, x, y in pairs:
        left, right = (x, y) if rng.random() < 0.5 else (y, x)
        items.append(TrialSpec(block, left, right, "test"))
    with_golden = [b for b in blocks if "golden" in b]
    for _ in range(golden_count(len(pairs), golden_rate) if with_golden else 0):
        block = with_golden[int(rng.integers(len(with_golden)))]
        reference, golden = block["reference"]["id"], block["golden"]["id"]
        if rng.random() < 0.5:
            items.append(TrialSpec(block["id"], reference, golden, "golden", "left"))
        else:
            items.append(TrialSpec(block["id"], golden, reference, "golden", "right"))
    order = list(rng.permutation(len(items)))
    arranged: list[TrialSpec] = []
    while order:
        previous = arranged[-1].block_id if arranged else None
        pick = next((n for n, i in enumerate(order) if items[i].block_id != previous), 0)
        arranged.append(items[order.pop(pick)])
    return arranged


class Posterior:
    """Gaussian (Laplace) posterior of JND scores from a win-count matrix, prior N(0, PRIOR_SD^2)."""

    def __init__(self, wins: np.ndarray, mean: np.ndarray | None = None, steps: int = 30) -> None:
        self.wins = np.asarray(wins, dtype=float)
        n = len(self.wins)
        self.i, self.j = np.nonzero(self.wins)
        mean = np.zeros(n) if mean is None else mean.copy()
        for _ in range(steps):
            gradient, hessian = self._derivatives(mean)
            step = np.linalg.solve(hessian, gradient)
            mean -= step
            if np.max(np.abs(step)) < 1e-8:
                break
        self.mean = mean
        self.precision = self._derivatives(mean)[1]
        self.cov = np.linalg.inv(self.precision)

    def _derivatives(self, s: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Gradient and Hessian of the negative log posterior."""
        n, i, j = len(s), self.i, self.j
        c = self.wins[i, j]
        x = (s[i] - s[j]) / SIGMA
        r = phi_ratio(x)
        g = -c * r / SIGMA
        h = c * r * (x + r) / SIGMA**2
        gradient = s / PRIOR_SD**2
        np.add.at(gradient, i, g)
        np.add.at(gradient, j, -g)
        hessian = np.eye(n) / PRIOR_SD**2
        np.add.at(hessian, (i, i), h)
        np.add.at(hessian, (j, j), h)
        np.add.at(hessian, (i, j), -h)
        np.add.at(hessian, (j, i), -h)
        return gradient, hessian

    def kl_from(self, other: "Posterior") -> float:
        """KL(self || other) between the two Gaussians."""
        n = len(self.mean)
        delta = self.mean - other.mean
        _, logdet_self = np.linalg.slogdet(self.cov)
        _, logdet_other = np.linalg.slogdet(other.cov)
        return 0.5 * float(np.trace(other.precision @ self.cov) + delta @ other.precision @ delta - n
                           + logdet_other - logdet_self)

    def win_probability(self, a: int, b: int) -> float:
        spread = SIGMA**2 + self.cov[a, a] + self.cov[b, b] - 2 * self.cov[a, b]
        return float(ndtr((self.mean[a] - self.mean[b]) / np.sqrt(spread)))


def expected_information_gain(wins: np.ndarray) -> np.ndarray:
    """(N, N) symmetric EIG of one more comparison of each pair (diagonal 0)."""
    wins = np.asarray(wins, dtype=float)
    n = len(wins)
    current = Posterior(wins)
    eig = np.zeros((n, n))
    for a, b in combinations(range(n), 2):
        p = current.win_probability(a, b)
        gain = 0.0
        for winner, loser, weight in ((a, b, p), (b, a, 1 - p)):
            more = wins.copy()
            more[winner, loser] += 1
            gain += weight * Posterior(more, current.mean, steps=3).kl_from(current)
        eig[a, b] = eig[b, a] = gain
    return eig


def asap_batch(wins: np.ndarray, rng: np.random.Generator) -> list[tuple[int, int]]:
    """The next N-1 pairs (condition indices): the minimum spanning tree of 1/EIG, in random order."""
    eig = expected_information_gain(wins)
    n = len(eig)
    jitter = 1 + 1e-9 * rng.random((n, n))  # random choice among equal gains
    weights = np.triu(1.0 / (np.maximum(eig, 1e-300) * jitter), 1)
    tree = minimum_spanning_tree(weights).tocoo()
    pairs = [(int(a), int(b)) for a, b in zip(tree.row, tree.col)]
    return [pairs[k] for k in rng.permutation(len(pairs))]


class AsapQueue:
    """Per-image queues of ASAP pairs, refilled by a background thread from the stored answers.

    :meth:`take` never blocks: when a queue is empty it hands out the image's least-given pair
    and asks for a refill.
    """

    def __init__(self, store: Store, seed: int = 0) -> None:
        self.store = store
        self.rng = np.random.default_rng(seed)
        self.lock = threading.Lock()
        self.queues: dict[int, deque[tuple[int, int]]] = {}
        self.blocks = {b["id"]: [c["id"] for c in b["test"]] for b in store.blocks()}
        self.requests: queue.SimpleQueue[int | None] = queue.SimpleQueue()
        self.thread = threading.Thread(target=self._work, name="asap-scheduler", daemon=True)
        self.thread.start()
        for block in self.blocks:
            self.requests.put(block)

    def _work(self) -> None:
        while (block := self.requests.get()) is not None:
            with self.lock:
                if len(self.queues.get(block, ())) >= len(self.blocks[block]) - 1:
                    continue  # a batch is already waiting
            self.refill(block)

    def refill(self, block: int) -> None:
        """Compute the block's next batch from its answers and append it to its queue."""
        ids = self.blocks[block]
        index = {c: n for n, c in enumerate(ids)}
        wins = np.zeros((len(ids), len(ids)))
        for (winner, loser), count in self.store.wins(block).items():
            wins[index[winner], index[loser]] = count
        with self.lock:
            rng = np.random.default_rng(self.rng.integers(2**63))
        batch = [tuple(sorted((ids[a], ids[b]))) for a, b in asap_batch(wins, rng)]
        with self.lock:
            self.queues.setdefault(block, deque()).extend(batch)

    def take(self, block: int, given: dict[Pair, int]) -> Pair:
        """The next pair of ``block`` (from its queue, else the least given)."""
        with self.lock:
            waiting = self.queues.setdefault(block, deque())
            pair = waiting.popleft() if waiting else None
            low = len(waiting) < len(self.blocks[block]) - 1
        if low:
            self.requests.put(block)
        if pair is not None:
            return (block, *pair)
        ids = self.blocks[block]
        options = [(given.get((block, x, y), 0), x, y) for x, y in combinations(sorted(ids), 2)]
        fewest = min(o[0] for o in options)
        _, x, y = options[int(self.rng.choice([n for n, o in enumerate(options) if o[0] == fewest]))]
        return (block, x, y)

    def close(self) -> None:
        self.requests.put(None)
        self.thread.join(timeout=10)


def session_planner(store: Store, scheduler: AsapQueue | None, rng: np.random.Generator
                    ) -> Callable[[sqlite3.Connection], list[TrialSpec]]:
    """The ``plan`` for :meth:`Store.create_session`: the study's design, its trials per session and golden rate."""
    study = store.study
    blocks = [b for b in store.blocks() if len(b["test"]) >= 2]

    def plan(connection: sqlite3.Connection) -> list[TrialSpec]:
        given = store.pair_counts(connection)
        count = study["trials_per_session"]
        if study["design"] == "full" or scheduler is None:
            pairs = full_design(blocks, given, count, rng)
        else:
            order = [blocks[k]["id"] for k in rng.permutation(len(blocks))]
            pairs = []
            for n in range(count):
                pair = scheduler.take(order[n % len(order)], given)
                given[pair] = given.get(pair, 0) + 1
                pairs.append(pair)
        return arrange(pairs, blocks, study["golden_rate"], rng)

    return plan
