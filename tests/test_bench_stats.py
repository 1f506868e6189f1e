"""Statistics over repeated runs: the two-level bootstrap of the mean and P(A > B), on hand-computed cases."""

from __future__ import annotations

import numpy as np
import pytest

from mdfloss.bench.report.stats import (
    ExperimentResults,
    mean_interval,
    prob_better,
    prob_better_interval,
    two_level_means,
)


def test_runs_are_resampled_first():
    # Each run is constant over its images, so only the runs' resampling moves the mean:
    # two draws of runs {1, 3}: means 1 (1/4), 2 (1/2), 3 (1/4).
    means = two_level_means(np.array([[1.0, 1.0], [3.0, 3.0]]), samples=20000)
    shares = {value: float(np.mean(means == value)) for value in (1.0, 2.0, 3.0)}
    assert shares == pytest.approx({1.0: 0.25, 2.0: 0.5, 3.0: 0.25}, abs=0.015)
    assert mean_interval(np.array([[1.0, 1.0], [3.0, 3.0]]))[1:] == (1.0, 3.0)


def test_images_are_resampled_within_each_run_independently():
    # Identical runs over images {0, 1}: 2 runs x 2 images drawn independently are 4 fair coins,
    # so the mean is k/4 with probability C(4, k)/16. (Images shared by both runs would give 0, 1/2, 1.)
    means = two_level_means(np.array([[0.0, 1.0], [0.0, 1.0]]), samples=20000)
    expected = {0.0: 1 / 16, 0.25: 4 / 16, 0.5: 6 / 16, 0.75: 4 / 16, 1.0: 1 / 16}
    shares = {value: float(np.mean(np.isclose(means, value))) for value in expected}
    assert shares == pytest.approx(expected, abs=0.015)


def test_one_run_of_equal_values_has_a_zero_width_interval():
    assert mean_interval(np.full((1, 5), 7.0)) == (7.0, 7.0, 7.0)


def test_probability_of_outperforming_counts_pairs_of_runs_and_half_ties():
    a = np.array([[1.0, 1.0], [3.0, 3.0]])  # run means 1 and 3
    b = np.array([[2.0, 2.0], [3.0, 3.0]])  # run means 2 and 3
    # pairs (1,2) lose, (1,3) lose, (3,2) win, (3,3) tie: (0 + 0 + 1 + 0.5) / 4
    assert prob_better(a, b, higher_is_better=True) == pytest.approx(0.375)
    assert prob_better(a, b, higher_is_better=False) == pytest.approx(0.625)  # lower is better: (1 + 1 + 0 + 0.5) / 4
    assert prob_better(b, a, higher_is_better=True) == pytest.approx(0.625)


def test_probability_interval_spans_what_resampled_runs_allow():
    a = np.array([[1.0, 1.0], [3.0, 3.0]])
    b = np.array([[2.0, 2.0]])
    # A's resampled runs: both 1 -> P = 0, both 3 -> 1, one of each -> 1/2
    assert prob_better(a, b, True) == 0.5
    assert prob_better_interval(a, b, True, samples=4000) == (0.0, 1.0)
    assert prob_better_interval(a[1:], b, True) == (1.0, 1.0)


def test_results_average_the_runs_of_each_image():
    rows = [{"loss": "l2", "repeat": str(r), "dataset": "d", "image": f"im{i}.png", "psnr": str(10 * r + i)}
            for r in range(2) for i in range(3)]
    rows += [{"loss": "l1", "dataset": "d", "image": f"im{i}.png", "psnr": str(i)} for i in range(3)]  # no column: 0
    results = ExperimentResults(rows, ["l2", "l1"], ["d"])
    assert results.runs("d", "psnr", "l2").tolist() == [[0, 1, 2], [10, 11, 12]]
    assert results.get("d", "psnr", "l2").tolist() == [5, 6, 7]
    assert results.repeats == {"l2": 2, "l1": 1} and results.repeated
    assert results.repeat_ids == {("d", "l2"): [0, 1], ("d", "l1"): [0]}
