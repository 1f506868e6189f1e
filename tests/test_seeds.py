"""Synthetic seeds: each tested for the property that defines it, and the command that writes them."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from PIL import Image

from mdfloss.cli import main
from mdfloss.seeds.synthetic import (
    collapse,
    contrast_rings,
    laplacian_pyramid,
    permute_levels,
    pink_noise,
    pyramid_permutation,
    synthesize,
)


def spectral_slope(image: np.ndarray) -> float:
    """Least-squares slope of log radially averaged power against log frequency, 4 to H/4 cycles."""
    grey = image.mean(axis=0)
    power = np.abs(np.fft.fft2(grey - grey.mean())) ** 2
    h, w = grey.shape
    u = np.fft.fftfreq(h)[:, None] * h
    v = np.fft.fftfreq(w)[None, :] * w
    radius = np.rint(np.sqrt(u**2 + v**2)).astype(int)
    frequencies = np.arange(4, min(h, w) // 4)
    mean_power = [power[radius == f].mean() for f in frequencies]
    return float(np.polyfit(np.log(frequencies), np.log(mean_power), 1)[0])


def test_pink_noise_has_a_power_spectrum_falling_as_one_over_f_squared():
    image = pink_noise(256, 320, torch.Generator().manual_seed(0))
    assert image.shape == (3, 256, 320) and float(image.min()) == 0 and float(image.max()) == 1
    assert spectral_slope(image.numpy()) == pytest.approx(-2.0, abs=0.15)
    white = torch.rand(3, 256, 320, generator=torch.Generator().manual_seed(0)).numpy()
    assert spectral_slope(white) == pytest.approx(0.0, abs=0.15)  # the estimator itself: flat for white noise


def test_pink_noise_depends_only_on_the_generator():
    first = pink_noise(64, 64, torch.Generator().manual_seed(5))
    assert torch.equal(first, pink_noise(64, 64, torch.Generator().manual_seed(5)))
    assert not torch.equal(first, pink_noise(64, 64, torch.Generator().manual_seed(6)))


def test_ring_contrast_falls_towards_the_centre():
    image = contrast_rings(257, 301)[0].numpy()
    y, x = np.mgrid[0:257, 0:301]
    radius = np.hypot(y + 0.5 - 257 / 2, x + 0.5 - 301 / 2)
    contrasts = [np.ptp(image[(radius >= r) & (radius < r + 16)]) for r in range(16, 160, 16)]
    assert all(inner < outer for inner, outer in zip(contrasts, contrasts[1:]))
    assert contrasts[0] < 0.2 and contrasts[-1] > 0.7  # r / R with R the half diagonal, 198 px
    assert np.allclose(image.mean(), 0.5, atol=0.02)


def test_rings_have_edges_of_every_orientation():
    grey = contrast_rings(256, 256)[0].numpy()
    gy, gx = np.gradient(grey)
    strong = np.hypot(gx, gy) > 0.05
    angles = np.degrees(np.arctan2(gy[strong], gx[strong])) % 180
    counts, _ = np.histogram(angles, bins=12, range=(0, 180))
    assert counts.min() > 0.4 * counts.mean()


def photo_like(seed: int = 0) -> torch.Tensor:
    """A structured test image: smooth gradients plus a few edges (strong autocorrelation)."""
    y, x = torch.meshgrid(torch.linspace(0, 1, 96, dtype=torch.float64), torch.linspace(0, 1, 128, dtype=torch.float64),
                          indexing="ij")
    g = torch.Generator().manual_seed(seed)
    image = torch.stack([0.5 + 0.3 * torch.sin(6 * x), 0.4 + 0.3 * y, (x > 0.6).double() * 0.5 + 0.2])
    return (image + 0.02 * torch.randn(image.shape, generator=g, dtype=torch.float64)).clamp(0, 1)


def lag_one_correlation(level: torch.Tensor) -> float:
    a = level[:, :, :-1].flatten() - level.mean()
    b = level[:, :, 1:].flatten() - level.mean()
    return float((a * b).mean() / level.var())


def test_the_laplacian_pyramid_collapses_back_to_the_image():
    image = photo_like()
    levels = laplacian_pyramid(image)
    assert len(levels) == 4 and min(levels[-1].shape[-2:]) >= 8
    torch.testing.assert_close(collapse(levels), image, rtol=0, atol=1e-12)


def test_permutation_keeps_each_levels_histogram_and_energy_but_not_its_autocorrelation():
    levels = laplacian_pyramid(photo_like())
    permuted = permute_levels(levels, torch.Generator().manual_seed(1))
    for before, after in zip(levels, permuted):
        for channel in range(3):
            assert torch.equal(before[channel].flatten().sort().values, after[channel].flatten().sort().values)
        assert float(after.square().sum()) == pytest.approx(float(before.square().sum()), rel=1e-12)
    residual_before, residual_after = lag_one_correlation(levels[-1]), lag_one_correlation(permuted[-1])
    assert residual_before > 0.8 and abs(residual_after) < 0.3


def test_pyramid_permutation_is_an_image_in_range_with_other_structure():
    photo = photo_like()
    permuted = pyramid_permutation(photo, torch.Generator().manual_seed(2))
    assert permuted.shape == photo.shape and 0 <= float(permuted.min()) and float(permuted.max()) <= 1
    for channel in range(3):  # the spatial layout is gone: no correlation with the photo, pixel by pixel
        assert abs(float(torch.corrcoef(torch.stack([permuted[channel].flatten(), photo[channel].flatten()]))[0, 1])) < 0.25


@pytest.mark.parametrize(("kind", "like", "message"), [
    ("plaid", None, "kind: expected one of"),
    ("pyramid-permutation", None, "like: a photo is needed"),
    ("pink-noise", torch.zeros(3, 64, 64), "like: a photo is needed"),
])
def test_bad_requests_are_refused(kind, like, message):
    with pytest.raises(ValueError, match=message):
        synthesize(kind, 64, 64, torch.Generator(), like=like)


def test_a_too_small_photo_is_refused():
    with pytest.raises(ValueError, match=r"like: expected a photo of at least 80x64 px, got 64x64"):
        synthesize("pyramid-permutation", 64, 80, torch.Generator(), like=torch.zeros(3, 64, 64))


def test_the_command_writes_each_kind_as_a_png(tmp_path, capsys):
    photo = tmp_path / "photo.png"
    Image.fromarray((photo_like().permute(1, 2, 0).numpy() * 255).round().astype(np.uint8)).save(photo)
    for kind in ("pink-noise", "contrast-rings", "pyramid-permutation"):
        out = tmp_path / f"{kind}.png"
        extra = ["--like", str(photo)] if kind == "pyramid-permutation" else []
        assert main(["seed", "synth", "--kind", kind, "--size", "120x90", "--rng-seed", "3", "--out", str(out), *extra]) == 0
        with Image.open(out) as written:
            assert written.size == (120, 90) and written.mode == "RGB"
    assert main(["seed", "synth", "--kind", "pyramid-permutation", "--size", "120x90", "--out", str(tmp_path / "x.png")]) == 2
    assert "mdfloss seed synth: error: like: a photo is needed" in capsys.readouterr().err
    assert not math.isnan(spectral_slope(np.asarray(Image.open(tmp_path / "pink-noise.png"), float).transpose(2, 0, 1)))
