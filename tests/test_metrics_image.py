"""Per-image metrics: hand-computed PSNR and luma, SSIM/MS-SSIM identities, quantisation, cropping."""

from __future__ import annotations

import math

import pytest
import torch

from mdfloss.metrics.image import (
    ImageMetrics,
    crop_border,
    psnr,
    psnr_y,
    quantize,
    rgb_to_y,
)


def test_psnr_of_a_uniform_offset_is_minus_twenty_log_of_it():
    target = torch.full((2, 3, 8, 8), 0.5)
    prediction = target + torch.tensor([0.1, 0.01]).view(2, 1, 1, 1)
    torch.testing.assert_close(psnr(prediction, target), torch.tensor([20.0, 40.0], dtype=torch.float64), atol=1e-4, rtol=0)
    assert math.isinf(float(psnr(target, target)[0]))


def test_luma_follows_bt601_studio_range():
    white, black = torch.ones(1, 3, 1, 1), torch.zeros(1, 3, 1, 1)
    assert float(rgb_to_y(white)) == pytest.approx(235 / 255, abs=1e-6)
    assert float(rgb_to_y(black)) == pytest.approx(16 / 255)
    green = torch.tensor([0.0, 1.0, 0.0]).view(1, 3, 1, 1)
    assert float(rgb_to_y(green)) == pytest.approx((16 + 128.553) / 255)
    # a pure blue offset of 0.1 changes Y by 0.1 * 24.966 / 255
    target = torch.zeros(1, 3, 4, 4)
    prediction = target.clone()
    prediction[:, 2] += 0.1
    expected = -20 * math.log10(0.1 * 24.966 / 255)
    assert float(psnr_y(prediction, target)[0]) == pytest.approx(expected, rel=1e-6)


def test_quantize_rounds_to_eight_bits_and_clamps():
    x = torch.tensor([-0.2, 0.0, 0.5, 1.2, 100.4 / 255])
    torch.testing.assert_close(quantize(x), torch.tensor([0.0, 0.0, 128 / 255, 1.0, 100 / 255]))


def test_image_metrics_of_identical_images_are_perfect():
    image = quantize(torch.rand(1, 3, 48, 40, generator=torch.Generator().manual_seed(0)))
    values = ImageMetrics()(image, image)
    assert math.isinf(values["psnr"]) and values["ssim"] == pytest.approx(1.0) and values["ms_ssim"] == pytest.approx(1.0)
    assert (values["haarpsi"], values["dss"], values["mdsi"]) == (1.0, 1.0, 0.0)
    assert values["lpips"] is None


def test_image_metrics_crop_the_border_and_quantize_the_prediction():
    target = torch.full((1, 3, 40, 40), 128 / 255)
    prediction = target.clone()
    prediction[..., :4, :] = 0.0  # wrong only in the 4-px top border
    prediction[..., 4:, :] += 0.3 / 255  # rounds back to the target's level
    assert math.isinf(ImageMetrics(crop=4)(prediction, target)["psnr"])
    assert math.isfinite(ImageMetrics(crop=0)(prediction, target)["psnr"])
    assert crop_border(target, 4).shape == (1, 3, 32, 32)


def test_image_metrics_call_lpips_on_the_cropped_pair():
    seen = []

    def fake_lpips(p, t):
        seen.append(p.shape)
        return torch.tensor([0.25])

    target = torch.rand(1, 3, 40, 40)
    values = ImageMetrics(crop=2, lpips=fake_lpips)(target, target)
    assert values["lpips"] == 0.25 and seen == [(1, 3, 36, 36)]


def test_ms_ssim_is_nan_for_images_too_small_for_five_scales():
    image = torch.rand(1, 3, 30, 30)
    assert math.isnan(ImageMetrics()(image, image)["ms_ssim"])


def test_image_metrics_refuse_batches_and_bad_crops():
    with pytest.raises(ValueError, match="one image each"):
        ImageMetrics()(torch.rand(2, 3, 8, 8), torch.rand(2, 3, 8, 8))
    with pytest.raises(ValueError, match="crop_border"):
        ImageMetrics(crop=-1)


def test_image_ssim_and_ms_ssim_match_independent_implementations():
    from test_losses import (  # Wang et al., written out in float64
        oracle_ms_ssim,
        oracle_ssim_and_cs,
    )

    g = torch.Generator().manual_seed(3)
    target = quantize(torch.rand(1, 3, 48, 48, generator=g, dtype=torch.float64))
    prediction = quantize(target + 0.1 * torch.randn(target.shape, generator=g, dtype=torch.float64))
    values = ImageMetrics()(prediction, target)
    assert values["ssim"] == pytest.approx(float(oracle_ssim_and_cs(prediction, target, 1.0, 11)[0].mean()), abs=1e-5)
    assert values["ms_ssim"] == pytest.approx(float(oracle_ms_ssim(prediction, target, 1.0, 3)[0]), abs=1e-5)


def test_image_perceptual_metrics_match_piq_on_the_quantized_cropped_pair():
    """HaarPSI, DSS and MDSI of the benchmark against piq's modules (the oracle of tests/test_metrics_*)."""
    from _metrics_support import load_piq_module

    piq = {name: load_piq_module(name) for name in ("haarpsi", "dss", "mdsi")}
    if None in piq.values():
        pytest.skip("piq is not installed")
    g = torch.Generator().manual_seed(4)
    target = quantize(torch.rand(1, 3, 64, 56, generator=g, dtype=torch.float64))
    prediction = target + 0.05 * torch.randn(target.shape, generator=g, dtype=torch.float64)
    values = ImageMetrics(crop=4)(prediction, target)
    p = quantize(prediction.float())[..., 4:-4, 4:-4].double()
    t = target.float()[..., 4:-4, 4:-4].double()
    assert values["haarpsi"] == pytest.approx(float(piq["haarpsi"].haarpsi(p, t)), abs=1e-5)
    assert values["dss"] == pytest.approx(float(piq["dss"].dss(p, t)), abs=1e-5)
    assert values["mdsi"] == pytest.approx(float(piq["mdsi"].mdsi(p, t)), abs=1e-5)
