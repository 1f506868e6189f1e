"""Thurstone Case V scaling: known answers, an independent maximisation, the prior, the graph,
recovery of simulated observers and observer screening."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import optimize, stats
from scipy.optimize import check_grad

from mdfloss.study import simulate
from mdfloss.study.scaling import (
    SIGMA,
    Answer,
    DisconnectedComparisonsError,
    _Objective,
    bootstrap,
    leave_one_out,
    pw_scale,
    scale_answers,
    significance,
)


def test_one_jnd_means_75_percent_preference():
    assert stats.norm.cdf(1 / SIGMA) == pytest.approx(0.75, abs=1e-4)


def test_pwcmp_readme_matrix_gives_minus_one_zero_one():
    D = np.array([[0, 25, 0], [75, 0, 25], [0, 75, 0]])
    np.testing.assert_allclose(pw_scale(D), [-1, 0, 1], atol=1e-3)


def test_matches_an_independent_direct_maximisation_of_the_plain_likelihood():
    rng = np.random.default_rng(3)
    D = rng.integers(1, 9, (4, 4)).astype(float)
    np.fill_diagonal(D, 0)

    def negative_log_likelihood(free):  # condition 0 pinned at 0, plain products of probabilities
        q = np.concatenate([[0.0], free])
        p = stats.norm.cdf((q[:, None] - q[None, :]) / SIGMA)
        return -np.sum(D * np.log(p))

    direct = optimize.minimize(negative_log_likelihood, np.zeros(3), method="Nelder-Mead",
                               options={"xatol": 1e-9, "fatol": 1e-12, "maxiter": 20000}).x
    direct = np.concatenate([[0.0], direct])
    np.testing.assert_allclose(pw_scale(D, prior="none"), direct - direct.mean(), atol=1e-4)


@pytest.mark.parametrize("prior", ["gaussian", "none"])
def test_analytic_gradient_matches_finite_differences(prior):
    rng = np.random.default_rng(0)
    D = rng.integers(0, 6, (5, 5)).astype(float)
    np.fill_diagonal(D, 0)
    D[0, 1:], D[1:, 0] = 4, 0  # unanimous pairs exercise the prior's shift
    objective = _Objective(D, prior)
    q = rng.normal(size=5)
    assert check_grad(lambda x: objective(x)[0], lambda x: objective(x)[1], q) < 1e-4


def test_many_answers_per_pair_do_not_underflow():
    np.testing.assert_allclose(pw_scale(np.array([[0, 1200], [800, 0]]), prior="none"), [0.188, -0.188], atol=1e-3)
    huge = pw_scale(np.array([[0, 6e6, 0], [4e6, 0, 5e6], [0, 5e6, 0]]))
    assert np.all(np.isfinite(huge)) and huge[0] > huge[1]


def test_unanimous_winner_stays_finite_with_the_prior_and_runs_away_without():
    rng = np.random.default_rng(1)
    D = rng.integers(1, 4, (6, 6)).astype(float)
    np.fill_diagonal(D, 0)
    D[0, 1:], D[1:, 0] = 5, 0  # condition 0 wins 5:0 against every other
    with_prior, without = pw_scale(D), pw_scale(D, prior="none")
    assert 1.0 < with_prior[0] < 3.0
    assert without[0] > 7.0


def test_disconnected_comparison_graph_is_refused_with_its_groups():
    D = np.zeros((4, 4))
    D[0, 1], D[1, 0], D[2, 3], D[3, 2] = 3, 2, 1, 4
    with pytest.raises(DisconnectedComparisonsError, match=r"2 groups.*\{a, b\}; \{c, d\}"):
        pw_scale(D, labels=["a", "b", "c", "d"])


def test_bad_arguments_name_what_was_expected():
    with pytest.raises(ValueError, match="prior: expected one of"):
        pw_scale(np.zeros((2, 2)), prior="flat")
    with pytest.raises(ValueError, match=r"D: expected a square N x N count matrix.*\(2, 3\)"):
        pw_scale(np.zeros((2, 3)))
    with pytest.raises(ValueError, match="non-negative"):
        pw_scale(np.array([[0, -1], [1, 0]]))


def test_recovers_known_scores_from_twenty_simulated_observers():
    true = np.array([0, 0.3, 0.8, 1.5, 2.2, 3.5])
    rng = np.random.default_rng(0)
    errors = []
    for _ in range(8):
        q = pw_scale(simulate.full_design(true, 20, rng).sum(0))
        errors.append(np.sqrt(np.mean((q - (true - true.mean())) ** 2)))
        for i in range(6):  # the order is right wherever the true gap is at least 1 JND
            for j in range(6):
                if true[i] - true[j] >= 1:
                    assert q[i] > q[j]
    assert np.mean(errors) < 0.25  # 0.18 on average over 100 runs


def test_bootstrap_intervals_cover_the_truth_and_significance_separates_far_conditions():
    true = np.array([0.0, 0.5, 2.0])
    rng = np.random.default_rng(2)
    covered = 0
    for run in range(4):
        boot = bootstrap(simulate.full_design(true, 15, rng), samples=150, seed=run)
        covered += np.sum((boot.low <= true - true.mean()) & (true - true.mean() <= boot.high))
        assert np.all(boot.low <= boot.jnd) and np.all(boot.jnd <= boot.high)
    assert covered >= 10  # of 12 intervals
    p = significance(boot.jnd, boot.cov)
    assert p[0, 2] < 0.05 and p[2, 0] == p[0, 2] and p[1, 1] == 1


def test_bootstrap_needs_two_observers_for_intervals():
    boot = bootstrap(simulate.full_design([0, 1], 1, np.random.default_rng(0)), samples=100)
    assert np.all(np.isnan(boot.low)) and np.all(np.isfinite(boot.jnd))


def test_a_random_clicker_gets_the_largest_leave_one_out_distance():
    rng = np.random.default_rng(5)
    true = [0, 1, 2, 3]
    groups = [simulate.full_design(true, 12, rng, random_clickers=1) for _ in range(3)]
    L, dist = leave_one_out(groups)
    assert np.argmax(dist) == 11 and dist[11] > 1.5
    assert np.argmin(L) == 11


def test_scale_answers_scales_blocks_and_pool_and_flags_a_disconnected_block():
    answers = []
    for k in range(4):
        for a, b, a_wins in [("l1", "l2", k % 2), ("l2", "mdf", 1), ("l1", "mdf", 0)]:
            answers.append(Answer(f"o{k}", "img0", a, b, bool(a_wins)))
        answers += [Answer(f"o{k}", "img1", "l1", "l2", k > 0), Answer(f"o{k}", "img1", "mdf", "ssim", k < 3)]
    result = scale_answers(answers, samples=30)
    names = {g.name: g for g in result.groups}
    assert names["img0"].boot is not None and names["img0"].conditions == ["l1", "l2", "mdf"]
    # img1's two pairs were never compared with each other: listed, counted, not scaled
    assert names["img1"].boot is None and names["img1"].p_values is None
    assert names["img1"].conditions == ["l1", "l2", "mdf", "ssim"] and names["img1"].answers == 8
    assert "2 groups that were never compared with each other: {l1, l2}; {mdf, ssim}" in names["img1"].error
    assert names["all"].boot is not None and len(names["all"].conditions) == 4


def test_scale_answers_leaves_out_excluded_observers():
    answers = [Answer(o, "img", "a", "b", o != "bad") for o in ("x", "y", "bad")]
    result = scale_answers(answers, excluded={"bad": "failed golden"}, samples=10)
    assert result.observers == ["x", "y"]
    with pytest.raises(ValueError, match="not excluded"):
        scale_answers(answers[2:], excluded={"bad": "failed golden"})


def test_asap_sampling_recovers_known_scores_and_connects_every_condition():
    true = np.array([0.0, 1.0, 2.0, 3.0])
    rng = np.random.default_rng(4)
    mats = simulate.asap_design(true, 10, 6, rng)
    counts = mats.sum(0)
    assert counts.sum() == 60 and np.all((counts + counts.T)[~np.eye(4, dtype=bool)] > 0)
    assert np.sqrt(np.mean((pw_scale(counts) - (true - true.mean())) ** 2)) < 0.4
