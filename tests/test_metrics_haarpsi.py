"""HaarPSI (mdfloss.metrics.haarpsi): piq oracle, exact perfect value, symmetry, noise monotonicity,
gradcheck, half precision, devices, bad inputs; the shared cases live in tests/_metrics_support.py."""

from __future__ import annotations

import pytest
import torch
from _metrics_support import MetricSuite, random_pair

from mdfloss.metrics import haarpsi as module


class TestHaarPSI(MetricSuite):
    metric = staticmethod(module.haarpsi)
    module = module
    piq_module = "haarpsi"
    min_size = module.MIN_SIZE
    sizes = ((2, 3, 32, 32), (1, 3, 37, 53), (2, 1, 48, 33), (1, 3, 16, 17), (1, 1, 65, 16))
    gradcheck_shape = (1, 3, 16, 16)
    tol64 = 1e-13
    tol32 = 5e-6

    def test_grey_equals_colour_of_grey_on_luminance_part_only(self) -> None:
        # a grey RGB image has I = Q = 0 for both images: the colour map is 1 everywhere, so the
        # colour result differs from the grey one only through that extra perfect map
        x, y = random_pair((1, 1, 32, 32), torch.float64)
        grey = module.haarpsi(x, y)
        colour = module.haarpsi(x.expand(-1, 3, -1, -1), y.expand(-1, 3, -1, -1))
        assert colour > grey

    def test_black_images_have_no_weights_and_give_one(self) -> None:
        z = torch.zeros(1, 3, 16, 16)
        assert module.haarpsi(z, z).item() == 1.0

    @pytest.mark.parametrize("name, value", [("c", 0), ("alpha", -1.0), ("c", float("nan"))])
    def test_bad_constants(self, name: str, value: float) -> None:
        x = torch.rand(1, 3, 16, 16)
        with pytest.raises(ValueError, match=rf"^{name}: expected a positive number"):
            module.haarpsi(x, x, **{name: value})
