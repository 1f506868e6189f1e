r"""Thurstone Case V scaling of pairwise comparisons in JND units (pwcmp's model, log domain).

Condition ``i`` has a quality score :math:`q_i` in JND units; an observer prefers ``i`` over
``j`` with probability

.. math:: P_{ij} = \Phi\!\left(\frac{q_i - q_j}{\sigma}\right), \qquad \sigma = 1.4826,

so that a difference of 1 JND means 75 % of answers prefer the better one
(:math:`\Phi(1/1.4826) = 0.75`). With :math:`D_{ij}` the number of times ``i`` was chosen over
``j``, the scores maximise

.. math:: \log L(q) = \sum_{i \ne j} D_{ij} \log \Phi\!\left(\frac{q_i - q_j}{\sigma}\right)
          + \sum_{i<j} \log\left(\pi_{ij}(q) + 0.1\right) - (\bar q)^2,

where :math:`\pi` is pwcmp's Gaussian prior (below) that keeps unanimous pairs finite and the
last term fixes the free offset (scores have mean 0). Everything is computed with
``log_ndtr``, so thousands of answers per pair do not underflow.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
from scipy import optimize, stats
from scipy.sparse.csgraph import connected_components
from scipy.special import log_ndtr

SIGMA = 1.4826
"""Standard deviation of the difference of two conditions' qualities: 1 JND = 75 % preference."""
PRIORS = ("gaussian", "none")


class DisconnectedComparisonsError(ValueError):
    """The comparison graph falls apart: the groups' scores cannot be put on one scale."""

    def __init__(self, components: list[list[str]]) -> None:
        self.components = components
        groups = "; ".join("{" + ", ".join(c) + "}" for c in components)
        super().__init__(
            f"comparisons: expected a connected comparison graph, got {len(components)} groups "
            f"that were never compared with each other: {groups}")


def check_counts(D: object, name: str = "D") -> np.ndarray:
    """``D`` as a square float array of non-negative counts with a zero diagonal, or ValueError."""
    array = np.asarray(D, dtype=float)
    if array.ndim != 2 or array.shape[0] != array.shape[1] or array.shape[0] < 2:
        raise ValueError(f"{name}: expected a square N x N count matrix with N >= 2, got shape {array.shape}")
    if not np.all(np.isfinite(array)) or np.any(array < 0):
        raise ValueError(f"{name}: expected finite non-negative counts, got min {array.min()!r}")
    if np.any(np.diag(array) != 0):
        raise ValueError(f"{name}: expected a zero diagonal (a condition is never compared with itself)")
    return array


def components(D: np.ndarray, labels: Sequence[str] | None = None) -> list[list[str]]:
    """The connected groups of the comparison graph (an edge wherever ``D + D.T > 0``)."""
    labels = list(labels) if labels is not None else [str(i) for i in range(len(D))]
    count, membership = connected_components((np.asarray(D) + np.asarray(D).T) > 0, directed=False)
    return [[labels[i] for i in np.flatnonzero(membership == c)] for c in range(count)]


def check_connected(D: np.ndarray, labels: Sequence[str] | None = None) -> None:
    """Raise :class:`DisconnectedComparisonsError` unless every condition is linked to every other."""
    groups = components(D, labels)
    if len(groups) > 1:
        raise DisconnectedComparisonsError(groups)


def _pairs(D: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Ordered pairs (a, b) compared at least once, both directions."""
    compared = (D + D.T) > 0
    np.fill_diagonal(compared, False)
    return np.nonzero(compared)


LOG_SQRT_2PI = 0.5 * np.log(2 * np.pi)


def phi_ratio(x: np.ndarray) -> np.ndarray:
    """d/dx log Phi(x) = phi(x) / Phi(x), stable for very negative x."""
    return np.exp(-0.5 * x * x - LOG_SQRT_2PI - log_ndtr(x))


class _Objective:
    r"""Negative log-posterior and its gradient for one count matrix.

    The Gaussian prior (pwcmp): unanimous counts are first moved one step inwards
    (0 -> 1, n -> n-1). For every compared ordered pair ``l`` with distance :math:`d_l` and every
    observed pair ``j`` with shifted counts :math:`(k_j, n_j)`,
    :math:`a_{lj} = k_j \log\Phi(d_l/\sigma) + (n_j-k_j)\log\Phi(-d_l/\sigma)`; the prior of
    distance ``l`` is :math:`\pi_l = \sum_j \exp(a_{lj} - \operatorname{logsumexp}_{l'} a_{l'j})`,
    how plausible :math:`d_l` is under the empirical distribution of all the answers.
    """

    def __init__(self, D: np.ndarray, prior: str) -> None:
        self.D = D
        self.n = len(D)
        self.a, self.b = _pairs(D)
        self.prior = prior == "gaussian"
        if self.prior:
            total = D + D.T
            wins = D[self.a, self.b].copy()
            trials = total[self.a, self.b]
            wins[wins == 0] = 1
            unanimous = wins == trials
            wins[unanimous] = trials[unanimous] - 1
            self.k, self.nk = wins, trials - wins

    def __call__(self, q: np.ndarray) -> tuple[float, np.ndarray]:
        a, b, D = self.a, self.b, self.D
        x = (q[a] - q[b]) / SIGMA
        wins = D[a, b]
        value = -np.sum(wins * log_ndtr(x))
        grad_d = -wins * phi_ratio(x) / SIGMA  # d(value)/d(distance of ordered pair l)
        if self.prior:
            log_p, log_not = log_ndtr(x), log_ndtr(-x)
            scores = np.outer(log_p, self.k) + np.outer(log_not, self.nk)  # (l, j)
            weights = np.exp(scores - scores.max(axis=0))
            weights /= weights.sum(axis=0)  # softmax over distances l: exp(a_lj - logsumexp_l a_lj)
            prior = weights.sum(axis=1)
            inverse = 1.0 / (prior + 0.1)
            value -= 0.5 * np.sum(np.log(prior + 0.1))  # each unordered pair appears twice
            slope = (np.outer(phi_ratio(x), self.k) - np.outer(phi_ratio(-x), self.nk)) / SIGMA
            spread = weights * slope
            grad_d -= 0.5 * (inverse * spread.sum(axis=1) - spread @ (weights.T @ inverse))
        grad = np.zeros(self.n)
        np.add.at(grad, a, grad_d)
        np.add.at(grad, b, -grad_d)
        mean = q.mean()
        value += mean**2
        grad += 2 * mean / self.n
        return float(value), grad


def pw_scale(D: object, prior: str = "gaussian", labels: Sequence[str] | None = None,
             start: np.ndarray | None = None) -> np.ndarray:
    """JND scores (mean 0) from a count matrix ``D[i, j]`` = times ``i`` was chosen over ``j``.

    ``prior="gaussian"`` (pwcmp's default) keeps unanimous pairs finite; ``"none"`` is the plain
    maximum-likelihood estimate, which runs away for unanimous pairs. Raises
    :class:`DisconnectedComparisonsError` when the comparison graph is not connected. ``start``
    is the optimiser's starting point (default 0).
    """
    if prior not in PRIORS:
        raise ValueError(f"prior: expected one of {PRIORS}, got {prior!r}")
    counts = check_counts(D)
    check_connected(counts, labels)
    objective = _Objective(counts, prior)
    result = optimize.minimize(objective, np.zeros(len(counts)) if start is None else start, jac=True, method="L-BFGS-B",
                               options={"maxiter": 2000, "gtol": 1e-9, "ftol": 1e-15})
    return result.x - result.x.mean()


def log_likelihood(D: np.ndarray, q: np.ndarray) -> float:
    r""":math:`\sum_{i \ne j} D_{ij} \log \Phi((q_i - q_j)/\sigma)` (no prior, no binomial coefficient)."""
    a, b = _pairs(D)
    return float(np.sum(D[a, b] * log_ndtr((q[a] - q[b]) / SIGMA)))


@dataclass
class Bootstrap:
    """Scores of the full data with percentile intervals from resampling observers."""

    jnd: np.ndarray
    low: np.ndarray
    high: np.ndarray
    cov: np.ndarray
    samples: np.ndarray
    redrawn: int = 0
    """Resamples drawn again because their comparison graph was not connected."""


def bootstrap(per_observer: np.ndarray, samples: int = 1000, alpha: float = 0.05, prior: str = "gaussian",
              seed: int = 0, labels: Sequence[str] | None = None) -> Bootstrap:
    """Scores of ``per_observer.sum(0)`` and their (1 - alpha) percentile intervals.

    ``per_observer`` is (K, N, N): one count matrix per observer. Each resample draws K
    observers with replacement (pwcmp's ``pw_scale_bootstrp``); a resample whose graph is not
    connected is drawn again. With fewer than 2 observers or ``samples < 2`` the intervals are NaN.
    """
    mats = np.asarray(per_observer, dtype=float)
    if mats.ndim != 3:
        raise ValueError(f"per_observer: expected a (observers, N, N) array, got shape {mats.shape}")
    if not 0 < alpha < 1:
        raise ValueError(f"alpha: expected a number in (0, 1), got {alpha!r}")
    jnd = pw_scale(mats.sum(0), prior, labels)
    n = len(jnd)
    if len(mats) < 2 or samples < 2:
        nan = np.full(n, np.nan)
        return Bootstrap(jnd, nan, nan.copy(), np.full((n, n), np.nan), np.empty((0, n)))
    rng = np.random.default_rng(seed)
    draws, redrawn = [], 0
    while len(draws) < samples:
        D = mats[rng.integers(0, len(mats), len(mats))].sum(0)
        if len(components(D)) > 1:
            redrawn += 1
            if redrawn > 10 * samples:
                raise DisconnectedComparisonsError(components(mats.sum(0), labels))
            continue
        draws.append(pw_scale(D, prior, start=jnd))
    values = np.array(draws)
    low, high = np.percentile(values, [100 * alpha / 2, 100 * (1 - alpha / 2)], axis=0)
    return Bootstrap(jnd, low, high, np.cov(values, rowvar=False), values, redrawn)


def significance(jnd: np.ndarray, cov: np.ndarray) -> np.ndarray:
    r"""Two-sided p-values of :math:`q_i \ne q_j`: :math:`z = (q_i-q_j)/\sqrt{V_{ii}+V_{jj}-2V_{ij}}`.

    pwcmp's ``pw_significance_matrix``; the intervals alone must not be used for this.
    """
    var = np.diag(cov)
    spread = np.sqrt(np.maximum(var[:, None] + var[None, :] - 2 * cov, 1e-300))
    z = (jnd[:, None] - jnd[None, :]) / spread
    p = 2 * stats.norm.sf(np.abs(z))
    np.fill_diagonal(p, 1.0)
    return p


def observer_log_likelihood(own: np.ndarray, q: np.ndarray) -> tuple[float, int]:
    r"""Sum over the observer's compared pairs of :math:`\log_{10}\mathrm{Binom}(M_{ij}; M_{ij}+M_{ji}, P_{ij})`, and the pair count."""
    i, j = np.nonzero(np.triu((own + own.T) > 0, 1))
    if len(i) == 0:
        return 0.0, 0
    p = stats.norm.cdf((q[i] - q[j]) / SIGMA)
    logs = stats.binom.logpmf(own[i, j], own[i, j] + own[j, i], p) / np.log(10)
    return float(logs.sum()), len(i)


def leave_one_out(groups: Sequence[np.ndarray], prior: str = "gaussian") -> tuple[np.ndarray, np.ndarray]:
    """pwcmp's outlier analysis: per observer, ``L`` and ``dist_L``.

    ``groups`` holds one (K, N_g, N_g) per-observer array per group (image), all with the same K
    observers. Each observer is left out, the others are scaled, and ``L`` is the observer's
    binomial log10-likelihood under those scores, summed over groups and divided by the number of
    pairs they answered. ``dist_L = (Q1 - L) / IQR`` below the first quartile, else 0; larger means
    less consistent with everyone else (about 1-1.5 is worth a look). Groups that the remaining
    observers leave disconnected are skipped for that observer.
    """
    count = groups[0].shape[0]
    L = np.full(count, np.nan)
    for k in range(count):
        total, pairs = 0.0, 0
        for mats in groups:
            own = mats[k]
            if not own.any():
                continue
            rest = mats.sum(0) - own
            if len(components(rest)) > 1:
                continue
            value, n = observer_log_likelihood(own, pw_scale(rest, prior))
            total, pairs = total + value, pairs + n
        if pairs:
            L[k] = total / pairs
    known = L[np.isfinite(L)]
    dist = np.zeros(count)
    if len(known) >= 2:
        q1, q3 = np.percentile(known, [25, 75])
        iqr = max(q3 - q1, 1e-12)
        dist = np.where(np.isfinite(L) & (L < q1), (q1 - L) / iqr, 0.0)
    return L, dist


@dataclass
class Answer:
    """One answered test trial, as in pwcmp's table: did the observer pick A over B?"""

    observer: str
    block: str
    condition_a: str
    condition_b: str
    a_selected: bool


@dataclass
class GroupResult:
    """Scores of one block (image) or of all blocks pooled."""

    name: str
    conditions: list[str]
    boot: Bootstrap | None
    answers: int
    error: str | None = None
    p_values: np.ndarray | None = None
    counts: np.ndarray | None = None
    """(N, N): ``[i, j]`` = times condition i was chosen over j by the observers kept."""
    observers: int = 0
    """Kept observers who answered in this group: the bootstrap resamples them."""


@dataclass
class StudyResult:
    groups: list[GroupResult]
    observers: list[str]
    loo_L: np.ndarray
    dist_L: np.ndarray
    excluded: dict[str, str] = field(default_factory=dict)


def per_observer_counts(answers: Iterable[Answer], observers: Sequence[str],
                        conditions: Sequence[str]) -> np.ndarray:
    """(K, N, N) counts: ``[k, i, j]`` = times observer k chose condition i over j."""
    o_index = {o: n for n, o in enumerate(observers)}
    c_index = {c: n for n, c in enumerate(conditions)}
    mats = np.zeros((len(observers), len(conditions), len(conditions)))
    for a in answers:
        i, j = c_index[a.condition_a], c_index[a.condition_b]
        winner, loser = (i, j) if a.a_selected else (j, i)
        mats[o_index[a.observer], winner, loser] += 1
    return mats


def scale_answers(answers: Sequence[Answer], *, excluded: Mapping[str, str] | None = None, samples: int = 1000,
                  alpha: float = 0.05, prior: str = "gaussian", seed: int = 0) -> StudyResult:
    """Scale every block and all blocks pooled (pwcmp ``pw_scale_table`` with ``do_all``).

    ``excluded`` maps observers to the reason their answers are left out (golden failures). A block
    whose comparison graph is not connected gets ``error`` instead of scores; so does the pool.
    """
    excluded = dict(excluded or {})
    kept = [a for a in answers if a.observer not in excluded]
    if not kept:
        raise ValueError("answers: expected answers from at least one observer who is not excluded, got none")
    observers = sorted({a.observer for a in kept})
    blocks = sorted({a.block for a in kept})
    groups, loo_groups = [], []
    pooled_conditions = sorted({c for a in kept for c in (a.condition_a, a.condition_b)})
    for block in [*blocks, None]:
        subset = [a for a in kept if block is None or a.block == block]
        conditions = (pooled_conditions if block is None
                      else sorted({c for a in subset for c in (a.condition_a, a.condition_b)}))
        mats = per_observer_counts(subset, observers, conditions)
        result = GroupResult("all" if block is None else block, conditions, None, len(subset), counts=mats.sum(axis=0),
                             observers=int(np.count_nonzero(mats.sum(axis=(1, 2)))))
        if block is not None and len(conditions) >= 2:
            loo_groups.append(mats)
        try:
            if len(conditions) < 2:
                raise ValueError(f"block {block}: expected at least 2 conditions, got {conditions}")
            result.boot = bootstrap(mats, samples, alpha, prior, seed, conditions)
            result.p_values = significance(result.boot.jnd, result.boot.cov)
        except ValueError as error:
            result.error = str(error)
        groups.append(result)
    L, dist = leave_one_out(loo_groups, prior) if loo_groups else (np.full(len(observers), np.nan),
                                                                   np.zeros(len(observers)))
    return StudyResult(groups, observers, L, dist, excluded)


def screen(rows: list[dict[str, str]], min_golden: float) -> tuple[dict[str, list[int]], dict[str, str]]:
    """Golden results per observer (``[passed, total]``) and who is excluded, with the reason."""
    golden: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    for row in rows:
        if row.get("golden") == "1":
            correct = (row["is_A_selected"] == "1") == (row["condition_A"] == "reference")
            golden[row["observer"]][0] += correct
            golden[row["observer"]][1] += 1
    excluded = {o: f"passed {p} of {t} golden trials" for o, (p, t) in golden.items() if p < min_golden * t}
    return dict(golden), excluded


def screened_answers(rows: list[dict[str, str]], min_golden: float
                     ) -> tuple[list[Answer], dict[str, list[int]], dict[str, str]]:
    """The test answers of exported rows (golden trials left out), the golden results per observer
    and who is excluded (see :func:`screen`)."""
    golden, excluded = screen(rows, min_golden)
    answers = [Answer(r["observer"], r["block"], r["condition_A"], r["condition_B"], r["is_A_selected"] == "1")
               for r in rows if r.get("golden", "0") != "1"]
    return answers, golden, excluded
