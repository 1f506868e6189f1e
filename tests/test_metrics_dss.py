"""DSS (mdfloss.metrics.dss): piq oracle, exact perfect value, symmetry, noise monotonicity,
gradcheck, half precision, devices, bad inputs; the shared cases live in tests/_metrics_support.py."""

from __future__ import annotations

import pytest
import torch
from _metrics_support import MetricSuite, load_piq_module, random_pair

from mdfloss.metrics import dss as module


class TestDSS(MetricSuite):
    metric = staticmethod(module.dss)
    module = module
    piq_module = "dss"
    min_size = module.DCT_SIZE
    # subband sizes 4x4, 4x6, 12x5, 6x2 (12 blocks, near the minimum), 6x8
    sizes = ((2, 3, 32, 32), (1, 3, 37, 53), (2, 1, 96, 41), (1, 3, 51, 17), (1, 1, 55, 71))
    gradcheck_shape = (1, 1, 40, 16)
    tol64 = 1e-13  # piq run with float64 as the default dtype; its eps on the weights is 17 * 2.2e-16
    tol32 = 1e-6
    tol32_piq32 = 5e-5
    # TwoWings has flat (clipped) areas: where one local variance is ~0, sqrt(var_x * var_y) turns
    # its float64 rounding (~1e-9 on DC values of ~2000) into ~1e-6 per pixel, ~1e-9 on the score
    tol64_full_photo = 1e-8  # piq's float32 E[x^2] - E[x]^2 on DC values up to 2040 loses ~1e-5

    def bad_inputs(self):
        cases = super().bad_inputs()
        # 8 px high but only 5 blocks: round(0.05 * 5) = 0 worst scores to pool
        small = torch.rand(1, 3, 8, 40)
        cases.append(("too few blocks", (small, small), {}, ValueError, r"^x: expected enough 8x8 DCT blocks .* got 5 blocks"))
        return cases

    def test_pooled_count_uses_matlab_rounding(self) -> None:
        assert module.pooled_count(80, 40) == 3  # 50 blocks: round(2.5) = 3 in MATLAB, 2 in Python
        assert module.pooled_count(80, 8) == 1  # 10 blocks: round(0.5) = 1
        assert module.pooled_count(72, 8) == 0  # 9 blocks: nothing to pool -> refused by dss()
        assert module.pooled_count(256, 256) == 51

    def test_piq_differs_only_by_its_rounding_at_halves(self) -> None:
        # 50 blocks: we pool 3 worst scores, piq 2; the values differ, slightly
        x, y = random_pair((1, 1, 80, 40), torch.float64)
        piq = load_piq_module("dss")
        if piq is None:
            pytest.skip("piq is not installed")
        ours = module.dss(x, y)
        assert 0 < abs(ours - piq.dss(x, y)) < 0.05

    def test_weights(self) -> None:
        w = module.subband_weights()
        assert int((w > 0).sum()) == 17 and w[0, 0] == w.max()
        d = module.dct_matrix(8)
        torch.testing.assert_close(d @ d.T, torch.eye(8, dtype=torch.float64))

    def test_crop_to_whole_blocks(self) -> None:
        x, y = random_pair((1, 3, 45, 61), torch.float64)
        assert module.dss(x, y) == module.dss(x[..., :40, :56], y[..., :40, :56])

    def test_bad_percentile(self) -> None:
        x = torch.rand(1, 3, 40, 40)
        for bad in (0, 1.5, -0.1, True):
            with pytest.raises(ValueError, match=r"^percentile: expected a number in \(0, 1\]"):
                module.dss(x, x, percentile=bad)
        with pytest.raises(ValueError, match=r"^sigma_weight: expected a positive number"):
            module.dss(x, x, sigma_weight=0)
