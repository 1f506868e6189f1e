"""The convergence rule (least-squares slope over the last window) and runs trained to convergence."""

from __future__ import annotations

import json
import math

import pytest
import torch
from test_bench_repeats import bench_args, folders  # noqa: F401  (the fixture)

from mdfloss.bench.convergence import ConvergenceRule, window_slope
from mdfloss.bench.fit import build_scheduler
from mdfloss.cli import main


def test_the_slope_is_the_least_squares_line_through_the_window():
    # points (0, 0), (1, 1), (2, 1), (3, 3): mean i = 1.5, mean v = 1.25,
    # slope = sum((i - 1.5)(v - 1.25)) / sum((i - 1.5)^2) = (1.875 + 0.125 - 0.125 + 2.625) / 5 = 0.9
    curve = [(0, 0.0), (1, 1.0), (2, 1.0), (3, 3.0)]
    assert window_slope(curve, 3) == pytest.approx(0.9)
    # the window keeps iterations >= last - window: (2, 1), (3, 3) -> slope 2
    assert window_slope(curve, 1) == pytest.approx(2.0)
    assert math.isnan(window_slope(curve, 0.5)) and math.isnan(window_slope([], 10))


def test_the_rule_fits_every_point_of_the_window_not_two():
    # the last four validations: 29.9, 30.1, 30.1, 30.0 dB. The old endpoint rule, val(3000) - val(2250),
    # gives 0.1 dB (not under 0.1: not converged); the fitted line: mean i 2625, mean v 30.025,
    # slope = (-375 * -0.125 - 125 * 0.075 + 125 * 0.075 + 375 * -0.025) / 312500 = 37.5 / 312500 per iteration,
    # so 0.09 dB over a 750-iteration window: converged.
    curve = [(250 * k, 29.0 + 0.1 * k) for k in range(1, 9)] + [(2250, 29.9), (2500, 30.1), (2750, 30.1), (3000, 30.0)]
    rule = ConvergenceRule(budget=3000, enabled=True)
    assert rule.window_iterations == 750
    assert rule.predicted_gain(curve) == pytest.approx(37.5 / 312500 * 750)
    assert rule.converged(curve)
    assert not rule.converged(curve[:-1] + [(3000, 30.3)])  # a rise at the end: 0.27 dB predicted


def test_a_run_goes_on_until_the_line_is_flat_or_the_cap():
    rule = ConvergenceRule(budget=100, enabled=True, min_gain_db=0.1, window=0.5, max_factor=2)
    rising = [(i, 0.01 * i) for i in range(10, 101, 10)]  # 0.5 dB per 50-iteration window
    assert rule.status(90, rising[:-1]) is None  # before the budget nothing stops it
    assert rule.status(100, rising) is None  # still rising: go on
    flat = rising + [(i, 1.0) for i in range(110, 161, 10)]
    assert rule.status(160, flat) == "converged"
    assert rule.status(200, rising + [(i, 0.01 * i) for i in range(110, 201, 10)]) == "cap"
    assert ConvergenceRule(budget=100).status(100, rising) == "budget"


def test_the_learning_rate_keeps_its_last_value_past_the_budget():
    parameter = torch.nn.Parameter(torch.zeros(1))
    optimizer = torch.optim.SGD([parameter], lr=0.1)
    scheduler = build_scheduler({"type": "exponential", "lr_end": 1e-4}, optimizer, 10, 0.1)
    rates = []
    for _ in range(15):
        rates.append(optimizer.param_groups[0]["lr"])
        optimizer.step()
        scheduler.step()
    assert rates[0] == pytest.approx(0.1) and rates[9] == pytest.approx(1e-4)
    assert rates[10:] == pytest.approx([1e-4] * 5)


def test_converge_extends_a_run_and_records_how_it_ended(folders, tmp_path, monkeypatch):  # noqa: F811
    out = tmp_path / "converge"
    # a validation PSNR that rises by 1 dB per validation never converges: the run goes to the cap, 2 x 4 iterations
    calls = []

    def rising(model, loss_fn, images, device, border):
        calls.append(None)
        return 0.0, float(len(calls))

    monkeypatch.setattr("mdfloss.bench.fit.validate", rising)
    args = bench_args(folders, out, "--repeats", "1", "--mdf", "denoise", "--losses", "l2", "--converge",
                      "--set", "train.converge.max_factor=2", "--set", "train.converge.window=1")
    assert main(args) == 0
    monkeypatch.undo()
    run = json.loads((out / "manifest.json").read_text())["experiments"]["denoise-dncnn"]["runs"]["l2"]
    assert run["iterations"] == 8 and run["status"] == "cap"
    assert "| l2 | 0 | 8 | cap |" in (out / "report.md").read_text()
    # an accepting threshold stops it at the first validation past the budget
    out = tmp_path / "converged"
    args = bench_args(folders, out, "--repeats", "1", "--mdf", "denoise", "--losses", "l2", "--converge",
                      "--set", "train.converge.min_gain_db=1e9", "--set", "train.converge.max_factor=2",
                      "--set", "train.converge.window=1")
    assert main(args) == 0
    run = json.loads((out / "manifest.json").read_text())["experiments"]["denoise-dncnn"]["runs"]["l2"]
    assert run["iterations"] == 4 and run["status"] == "converged"


def test_the_window_must_hold_two_validations(folders, tmp_path, capsys):  # noqa: F811
    assert main(bench_args(folders, tmp_path / "x", "--mdf", "denoise", "--repeats", "1", "--converge")) == 2
    assert "expected a window that holds at least two validations" in capsys.readouterr().err


def test_converge_needs_validation_images(folders, tmp_path, capsys):  # noqa: F811
    args = [a for a in bench_args(folders, tmp_path / "x", "--converge") if a != str(folders / "val")]
    args.remove("--val-dir")
    assert main(args + ["--set", "train.select=last"]) == 2
    assert "train.converge: needs validation images" in capsys.readouterr().err
