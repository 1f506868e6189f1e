"""MDSI (mdfloss.metrics.mdsi): piq oracle, exact 0 for identical images, asymmetry, noise
monotonicity, gradcheck, half precision, devices, bad inputs; shared cases in tests/_metrics_support.py.
The authors' MATLAB values: tests/test_metrics_matlab.py."""

from __future__ import annotations

import pytest
import torch
from _metrics_support import MetricSuite, random_pair

from mdfloss.metrics import mdsi as module


class TestMDSI(MetricSuite):
    metric = staticmethod(module.mdsi)
    module = module
    piq_module = "mdsi"
    channels = (3,)
    symmetric = False
    min_size = module.MIN_SIZE
    sizes = ((2, 3, 32, 32), (1, 3, 37, 53), (1, 3, 5, 7), (1, 3, 3, 3), (1, 3, 128, 97))
    gradcheck_shape = (1, 3, 8, 8)
    tol64 = 1e-13
    tol32 = 1e-6
    tol32_piq32 = 2e-6

    def bad_inputs(self):
        cases = super().bad_inputs()
        grey = torch.rand(1, 1, 16, 16)
        cases.append(("grey", (grey, grey), {}, ValueError, r"^x: expected an RGB image .* colour images only"))
        return cases

    def test_direction(self) -> None:
        assert module.HIGHER_IS_BETTER is False and module.PERFECT_VALUE == 0.0

    def test_multiplication_gives_zero_for_identical_images_and_grows_with_noise(self) -> None:
        x, y = random_pair((1, 3, 32, 32), torch.float64)
        assert module.mdsi(x, x.clone(), combination="mult").item() == 0.0
        noisier = (y + 0.1 * (y - x)).clamp(0, 1)
        assert 0 < module.mdsi(y, x, combination="mult") < module.mdsi(noisier, x, combination="mult")

    def test_multiplication_gradcheck(self) -> None:
        x, y = random_pair(self.gradcheck_shape, torch.float64, seed=9)
        x.requires_grad_(True)
        metric = lambda a: module.mdsi(a, y, combination="mult")  # noqa: E731
        assert torch.autograd.gradcheck(metric, (x,), eps=1e-6, atol=1e-5, fast_mode=True)

    def test_downsampling_factor_uses_matlab_rounding(self) -> None:
        assert module.downsampling_factor(383, 1000) == 1
        assert module.downsampling_factor(384, 500) == 2  # 1.5 -> 2 (both conventions)
        assert module.downsampling_factor(640, 960) == 3  # 2.5 -> 3 (Python's round: 2)
        assert module.downsampling_factor(480, 768) == 2

    def test_gradient_at_a_perfect_match_is_zero(self) -> None:
        x, _ = random_pair((1, 3, 8, 8), torch.float64)
        x.requires_grad_(True)
        module.mdsi(x, x.detach().clone()).backward()
        assert x.grad is not None and (x.grad == 0).all()

    @pytest.mark.parametrize("name, value", [("c1", 0), ("q", -0.25), ("alpha", 1.5), ("alpha", True), ("beta", 0)])
    def test_bad_constants(self, name: str, value: float) -> None:
        x = torch.rand(1, 3, 8, 8)
        with pytest.raises(ValueError, match=rf"^{name}: expected"):
            module.mdsi(x, x, **{name: value})

    def test_bad_combination(self) -> None:
        x = torch.rand(1, 3, 8, 8)
        with pytest.raises(ValueError, match=r"^combination: expected 'sum' or 'mult', got 'product'"):
            module.mdsi(x, x, combination="product")
