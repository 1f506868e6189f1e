"""mdfloss analyze sensitivity: matched-PSNR probes, the ratio table, the command."""

from __future__ import annotations

import csv
import math

import numpy as np
import pytest
import torch
from conftest import make_pyramid
from PIL import Image
from scipy import ndimage

from mdfloss.analysis.probes import (
    MATCH_TOLERANCE_DB,
    BrightnessShift,
    ContrastReduction,
    GaussianBlur,
    GaussianNoise,
    SinusoidalGrating,
    jpeg_compress,
    match_psnr,
    matched_probes,
)
from mdfloss.analysis.runs.sensitivity import labelled_specs
from mdfloss.analysis.sensitivity import Measurement, per_unit_mse_ratios
from mdfloss.cli import main
from mdfloss.losses.spec import loss_label, loss_spec
from mdfloss.weights import save_pyramid

NAN = math.nan


def numpy_psnr(distorted: torch.Tensor, reference: torch.Tensor) -> float:
    a, b = distorted.cpu().numpy().astype(np.float64), reference.cpu().numpy().astype(np.float64)
    return 10 * np.log10(1.0 / np.mean((a - b) ** 2))


def textured_image(height: int = 40, width: int = 48, seed: int = 0) -> torch.Tensor:
    """(3, H, W) in about [0.05, 0.95]: a diagonal sinusoid, a gradient and uniform noise."""
    rng = np.random.default_rng(seed)
    v, u = np.mgrid[0:height, 0:width]
    base = 0.5 + 0.25 * np.sin(u / 3.0 + v / 5.0) + 0.1 * (u / width - 0.5)
    image = base[None] + 0.08 * rng.uniform(-1, 1, size=(3, height, width))
    return torch.from_numpy(np.clip(image, 0, 1))


@pytest.mark.parametrize("probe", matched_probes(seed=3), ids=lambda p: p.name)
@pytest.mark.parametrize("target", [20.0, 30.0, 40.0])
def test_each_probe_hits_its_target_psnr(probe, target):
    image = textured_image()
    result = match_psnr(image, probe, target)
    assert result.matched
    assert abs(numpy_psnr(result.image, image) - target) <= MATCH_TOLERANCE_DB
    assert abs(result.psnr - numpy_psnr(result.image, image)) < 1e-9
    assert result.image.shape == image.shape and 0 <= result.image.min() and result.image.max() <= 1


@pytest.mark.parametrize("probe", matched_probes(), ids=lambda p: p.name)
def test_probes_run_on_the_image_device(probe, device):
    image = textured_image(24, 24).to(device)
    result = match_psnr(image, probe, 30.0)
    assert result.image.device == image.device and result.matched


@pytest.mark.parametrize("probe", matched_probes(), ids=lambda p: p.name)
def test_mse_never_decreases_with_strength(probe):
    image = textured_image()
    top = min(probe.max_strength(image), 8.0)
    errors = [float((probe.distort(image, s) - image).square().mean()) for s in np.linspace(0, top, 25)]
    assert errors[0] == 0
    assert all(later >= earlier - 1e-15 for earlier, later in zip(errors, errors[1:]))
    assert errors[-1] > errors[1] > 0


@pytest.mark.parametrize("probe", matched_probes(), ids=lambda p: p.name)
def test_lower_target_psnr_needs_a_stronger_distortion(probe):
    image = textured_image()
    strengths = [match_psnr(image, probe, target).strength for target in (40.0, 35.0, 30.0, 25.0)]
    assert strengths == sorted(strengths) and len(set(strengths)) == 4


def test_contrast_reduction_matches_the_closed_form():
    image = textured_image()
    result = match_psnr(image, ContrastReduction(), 30.0)
    mean = image.mean(dim=(1, 2), keepdim=True)
    variance = float((image - mean).square().mean())
    expected = math.sqrt(1e-3 / variance)  # MSE = s^2 * variance = 10^(-30/10)
    assert result.strength == pytest.approx(expected, rel=1e-3)
    assert torch.allclose(result.image, mean + (1 - result.strength) * (image - mean))


def test_brightness_shift_without_clamping_is_the_rms_error_towards_more_headroom():
    dark = 0.2 + 0.3 * textured_image()  # in [0.2, 0.5]: mean below 0.5, nothing clamps
    result = match_psnr(dark, BrightnessShift(), 25.0)
    assert result.strength == pytest.approx(10 ** (-25 / 20), rel=1e-3)
    assert torch.allclose(result.image - dark, torch.full_like(dark, result.strength))
    bright = 1 - dark
    down = match_psnr(bright, BrightnessShift(), 25.0)
    assert torch.allclose(down.image - bright, torch.full_like(bright, -down.strength))


def test_noise_is_one_fixed_realisation_scaled_and_clamped():
    image = textured_image()
    a = match_psnr(image, GaussianNoise(seed=5), 30.0)
    b = match_psnr(image, GaussianNoise(seed=5), 30.0)
    assert torch.equal(a.image, b.image)
    realisation = torch.randn(image.shape, generator=torch.Generator().manual_seed(5), dtype=torch.float64)
    expected = np.clip(image.numpy() + a.strength * realisation.numpy(), 0, 1)
    np.testing.assert_allclose(a.image.numpy(), expected, atol=1e-12)
    assert not torch.equal(a.image, match_psnr(image, GaussianNoise(seed=6), 30.0).image)


def test_grating_is_a_sinusoid_of_the_given_period_and_orientation():
    image = 0.3 + 0.4 * textured_image()  # headroom: no clamping at 35 dB
    probe = SinusoidalGrating(period=6.0, angle_degrees=30.0)
    result = match_psnr(image, probe, 35.0)
    v, u = np.mgrid[0:image.shape[1], 0:image.shape[2]]
    pattern = np.sin(2 * np.pi * (u * np.cos(np.pi / 6) + v * np.sin(np.pi / 6)) / 6.0)
    amplitude = math.sqrt(10 ** (-3.5) / np.mean(pattern**2))
    assert result.strength == pytest.approx(amplitude, rel=1e-3)
    np.testing.assert_allclose((result.image - image).numpy(), np.broadcast_to(result.strength * pattern, image.shape),
                               atol=1e-12)


@pytest.mark.parametrize("sigma", [0.7, 1.5, 2.0, 20.0])
def test_blur_matches_scipy_gaussian_filter_with_mirror_boundaries(sigma):
    image = textured_image(24, 30)
    ours = GaussianBlur().distort(image, sigma).numpy()
    # scipy's radius is int(4 sigma + 0.5), ours ceil(4 sigma): equal for these sigmas
    theirs = np.stack([ndimage.gaussian_filter(c, sigma, mode="mirror", truncate=4.0) for c in image.numpy()])
    np.testing.assert_allclose(ours, theirs, atol=1e-10)


def test_an_unreachable_target_is_flagged_not_hidden():
    flat = torch.full((3, 24, 24), 0.4, dtype=torch.float64)
    for probe in (GaussianBlur(), ContrastReduction()):
        result = match_psnr(flat, probe, 30.0)
        assert not result.matched and result.psnr > 100  # MSE 0 up to rounding
    smooth = textured_image()
    result = match_psnr(smooth, ContrastReduction(), 5.0)  # variance << 10^-0.5
    assert not result.matched and result.psnr > 5.0 and result.strength == 1.0


def test_jpeg_psnr_rises_with_quality():
    image = torch.from_numpy(np.round(textured_image().numpy() * 255) / 255)
    psnrs = [numpy_psnr(jpeg_compress(image, q), image) for q in (10, 50, 90)]
    assert psnrs == sorted(psnrs) and psnrs[0] < 40
    assert jpeg_compress(image, 90).shape == image.shape


@pytest.mark.parametrize(
    ("call", "error", "argument"),
    [
        (lambda: match_psnr(textured_image(), GaussianBlur(), 0.0), ValueError, "target_psnr"),
        (lambda: match_psnr(textured_image(), GaussianBlur(), math.nan), ValueError, "target_psnr"),
        (lambda: match_psnr(textured_image()[None], GaussianBlur(), 30.0), TypeError, "image"),
        (lambda: match_psnr(np.zeros((3, 8, 8)), GaussianBlur(), 30.0), TypeError, "image"),
        (lambda: jpeg_compress(textured_image(), 0), ValueError, "quality"),
        (lambda: SinusoidalGrating(period=0), ValueError, "period"),
    ],
)
def test_bad_probe_arguments_raise_naming_the_argument(call, error, argument):
    with pytest.raises(error, match=argument):
        call()


def _row(loss, image, distortion, target, mse, value, parameter=0.0):
    return Measurement(loss, image, distortion, target, -10 * math.log10(mse), mse, value, parameter, True)


def test_per_unit_mse_ratio_on_a_hand_computed_case():
    rows = [
        # per unit MSE (value / mse): brightness 2 and 4, noise 1 and 8, jpeg q10 2 and 1
        _row("a", "x", "brightness", 30.0, 1e-3, 2e-3),
        _row("a", "y", "brightness", 30.0, 1e-3, 4e-3),
        _row("a", "x", "noise", 30.0, 1e-3, 1e-3),
        _row("a", "y", "noise", 30.0, 1e-3, 8e-3),
        _row("a", "x", "jpeg", NAN, 4e-3, 8e-3, parameter=10),
        _row("a", "y", "jpeg", NAN, 2e-3, 2e-3, parameter=10),
        _row("a", "x", "noise", 25.0, 1e-3 * 10**0.5, 99.0),  # another level: ignored at 30 dB
    ]
    table = per_unit_mse_ratios(rows, 30.0)["a"]
    assert set(table) == {"brightness", "noise", "jpeg q10"}
    noise = table["noise"]  # per-image ratios 1/2 = 0.5 and 8/4 = 2
    assert (noise.median, noise.low, noise.high, noise.count) == pytest.approx((1.25, 0.5, 2.0, 2))
    jpeg = table["jpeg q10"]  # 2/2 = 1 and 1/4 = 0.25
    assert (jpeg.median, jpeg.low, jpeg.high) == pytest.approx((0.625, 0.25, 1.0))
    assert table["brightness"].median == 1.0
    at_25 = per_unit_mse_ratios(rows, 25.0)
    assert at_25 == {}  # no brightness reference at 25 dB


def test_loss_arguments_become_build_loss_specs(monkeypatch):
    monkeypatch.setattr("mdfloss.loss.pretrained_names", lambda: ["denoise"])
    assert loss_spec("runs/my.safetensors") == "mdf:runs/my.safetensors"
    assert loss_spec("/x/Ds_SISR.pth") == "mdf:/x/Ds_SISR.pth"
    assert loss_spec("denoise") == "mdf:denoise"
    assert loss_spec("mdf:sisr") == "mdf:sisr"
    assert loss_spec("l1") == "l1"
    assert loss_label("mdf:/x/Ds_SISR.pth") == "mdf:Ds_SISR"
    assert list(labelled_specs(["l2", "/x/a.pth", "/y/a.pth"])) == ["l2", "mdf:a", "mdf:/y/a.pth", "ssim"]


@pytest.fixture
def tiny_images(tmp_path):
    folder = tmp_path / "images"
    folder.mkdir()
    for index in range(2):
        pixels = np.round(textured_image(20, 24, seed=index).permute(1, 2, 0).numpy() * 255).astype(np.uint8)
        Image.fromarray(pixels).save(folder / f"img{index}.png")
    (folder / "notes.txt").write_text("not an image")
    return folder


@pytest.fixture
def tiny_weights(tmp_path):
    return save_pyramid(tmp_path / "tiny.safetensors", make_pyramid([4, 4]), {"input_range": [-1.0, 1.0]})


def test_cli_end_to_end_writes_csv_figure_and_ratios(tiny_images, tiny_weights, tmp_path):
    out = tmp_path / "out"
    threads = torch.get_num_threads()
    code = main(["analyze", "sensitivity", "--loss", str(tiny_weights), "--loss", "l2", "--images", str(tiny_images),
                 "--out", str(out), "--levels", "25,30", "--jpeg-qualities", "10,50", "--size", "16", "--threads", "1"])
    assert code == 0
    assert torch.get_num_threads() == threads  # --threads applies to the run only
    with open(out / "sensitivity.csv", newline="") as stream:
        rows = list(csv.DictReader(stream))
    assert len(rows) == 3 * 2 * (5 * 2 + 2)  # losses (tiny, l2, ssim) x images x (probes x levels + jpeg)
    assert {r["loss"] for r in rows} == {"mdf:tiny", "l2", "ssim"}
    assert {r["distortion"] for r in rows} == {"noise", "blur", "grating", "contrast", "brightness", "jpeg"}
    for r in rows:
        mse = float(r["mse"])
        assert float(r["achieved_psnr"]) == pytest.approx(-10 * math.log10(mse), abs=1e-3)
        if r["distortion"] != "jpeg" and r["matched"] == "true":
            assert abs(float(r["achieved_psnr"]) - float(r["target_psnr"])) <= MATCH_TOLERANCE_DB
        if r["loss"] == "l2":
            assert float(r["value"]) == pytest.approx(mse, rel=1e-4)
        assert float(r["value"]) > 0
    assert (out / "sensitivity.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    ratios = (out / "ratios.md").read_text()
    assert "| loss | noise | blur | grating | contrast | jpeg q10 | jpeg q50 |" in ratios
    assert "| l2 | 1 (1-1) | 1 (1-1) |" in ratios and "| mdf:tiny |" in ratios
    assert not [p.name for p in out.iterdir() if p.name.startswith(".")]  # no temporary files left


def test_missing_image_folder_is_an_error(tmp_path, capsys):
    code = main(["analyze", "sensitivity", "--images", str(tmp_path / "nowhere"), "--out", str(tmp_path / "o")])
    assert code == 2
    assert "not a directory" in capsys.readouterr().err
    assert not (tmp_path / "o").exists()


def test_folder_without_images_is_an_error(tmp_path, capsys):
    (tmp_path / "readme.txt").write_text("no images here")
    code = main(["analyze", "sensitivity", "--images", str(tmp_path), "--out", str(tmp_path / "o")])
    assert code == 2
    assert "found none" in capsys.readouterr().err


@pytest.mark.parametrize("levels", ["20,abc", "0,30", "30,30", "-5", "200"])
def test_bad_levels_are_usage_errors(tiny_images, tmp_path, capsys, levels):
    with pytest.raises(SystemExit) as exit_info:
        main(["analyze", "sensitivity", "--images", str(tiny_images), "--out", str(tmp_path / "o"), "--levels", levels])
    assert exit_info.value.code == 2
    assert "PSNR levels" in capsys.readouterr().err


def test_ratio_level_must_be_one_of_the_levels(tiny_images, tmp_path, capsys):
    code = main(["analyze", "sensitivity", "--images", str(tiny_images), "--out", str(tmp_path / "o"),
                 "--levels", "25,35", "--ratio-level", "30"])
    assert code == 2
    assert "--ratio-level" in capsys.readouterr().err


def test_unknown_loss_is_an_error(tiny_images, tmp_path, capsys):
    code = main(["analyze", "sensitivity", "--loss", "no-such-loss", "--images", str(tiny_images),
                 "--out", str(tmp_path / "o")])
    assert code == 2
    assert "no-such-loss" in capsys.readouterr().err


def test_curves_put_probes_at_their_target_and_jpeg_at_the_psnr_of_its_mean_mse():
    from mdfloss.analysis.report import curves

    rows = [
        _row("a", "x", "noise", 30.0, 1e-3, 2.0),
        _row("a", "y", "noise", 30.0, 1e-3, 4.0),
        _row("a", "x", "jpeg", NAN, 1e-3, 1.0, parameter=10),
        _row("a", "y", "jpeg", NAN, 3e-3, 5.0, parameter=10),
        _row("b", "x", "noise", 30.0, 1e-3, 99.0),
    ]
    lines = curves(rows, "a")
    assert lines["noise"] == [(30.0, 3.0, 2.0, 4.0)]
    ((psnr, mean, low, high),) = lines["jpeg"]
    assert psnr == pytest.approx(10 * math.log10(1 / 2e-3)) and (mean, low, high) == (3.0, 1.0, 5.0)


def test_an_image_below_the_receptive_field_is_an_error(tmp_path, capsys):
    Image.fromarray(np.zeros((8, 30, 3), dtype=np.uint8)).save(tmp_path / "thin.png")
    code = main(["analyze", "sensitivity", "--images", str(tmp_path), "--out", str(tmp_path / "o")])
    assert code == 2
    assert "at least 11 x 11 px" in capsys.readouterr().err


def test_per_scale_parts_sum_to_the_whole_loss_and_their_shares_are_tabulated(tiny_images, tiny_weights, tmp_path):
    out = tmp_path / "out"
    code = main(["analyze", "sensitivity", "--loss", str(tiny_weights), "--images", str(tiny_images),
                 "--out", str(out), "--levels", "30", "--jpeg-qualities", "10", "--size", "16", "--per-scale"])
    assert code == 0
    with open(out / "sensitivity.csv", newline="") as stream:
        rows = list(csv.DictReader(stream))
    value = {(r["loss"], r["image"], r["distortion"], r["parameter"]): float(r["value"]) for r in rows}
    assert {r["loss"] for r in rows} == {"mdf:tiny", "mdf:tiny[0]", "mdf:tiny[1]", "l2", "ssim"}
    for (loss, *key), whole in value.items():
        if loss == "mdf:tiny":  # the loss is the sum of its discriminators' losses
            assert value[("mdf:tiny[0]", *key)] + value[("mdf:tiny[1]", *key)] == pytest.approx(whole, rel=1e-4)
    ratios = (out / "ratios.md").read_text()
    assert "## Each discriminator's share of its loss at 30 dB" in ratios
    table = [line for line in ratios.splitlines() if line.startswith("| mdf:tiny[")][-2:]
    shares = [[float(cell) for cell in line.strip("|").split("|")[1:]] for line in table]
    assert [sum(column) for column in zip(*shares)] == pytest.approx([100.0] * len(shares[0]), abs=1.0)
