"""The benchmark's loss zoo: spec parsing, every loss against an independent float64 oracle,
gradients, devices and dtypes, and the errors it raises."""

from __future__ import annotations

import math

import pytest
import torch
from conftest import assert_close, make_pyramid, shared_path

from mdfloss import MDFLoss, save_pyramid
from mdfloss.functional import ms_ssim_window
from mdfloss.losses import LossTerm, WeightedSum, build_loss, parse_loss_spec
from mdfloss.losses.classic import MSSSIML1Loss, gaussian_weighted_l1

# ----------------------------------------------------------------------------- oracles


def gaussian_2d(width: int, sigma: float) -> torch.Tensor:
    """Normalised 2-D Gaussian from its formula, float64: (width, width)."""
    r = torch.arange(width, dtype=torch.float64) - (width - 1) / 2
    g = torch.exp(-(r[:, None] ** 2 + r[None, :] ** 2) / (2 * sigma**2))
    return g / g.sum()


def window_mean(x: torch.Tensor, kernel: torch.Tensor) -> torch.Tensor:
    """Weighted mean over every valid window position by explicit unfolding: (N, C, H', W')."""
    n, c, h, w = x.shape
    k = kernel.shape[0]
    patches = x.unfold(2, k, 1).unfold(3, k, 1)  # N, C, H', W', k, k
    return (patches * kernel).sum(dim=(-1, -2))


def oracle_ssim_and_cs(x, y, data_range, width, sigma=1.5):
    """Wang et al. SSIM and contrast-structure maps averaged per (sample, channel)."""
    kernel = gaussian_2d(width, sigma)
    c1, c2 = (0.01 * data_range) ** 2, (0.03 * data_range) ** 2
    mx, my = window_mean(x, kernel), window_mean(y, kernel)
    vx = window_mean(x * x, kernel) - mx**2
    vy = window_mean(y * y, kernel) - my**2
    cov = window_mean(x * y, kernel) - mx * my
    cs = (2 * cov + c2) / (vx + vy + c2)
    luminance = (2 * mx * my + c1) / (mx**2 + my**2 + c1)
    return (luminance * cs).mean(dim=(-1, -2)), cs.mean(dim=(-1, -2))


def oracle_ms_ssim(x, y, data_range, width):
    """5-scale MS-SSIM (weights of Wang et al. 2003); inputs with sides divisible by 16."""
    weights = [0.0448, 0.2856, 0.3001, 0.2363, 0.1333]
    value = torch.ones(x.shape[:2], dtype=torch.float64)
    for level, weight in enumerate(weights):
        ssim_value, cs = oracle_ssim_and_cs(x, y, data_range, width)
        term = ssim_value if level == len(weights) - 1 else cs
        value = value * term.clamp(min=0) ** weight
        if level == len(weights) - 1:
            break
        x = 0.25 * (x[..., ::2, ::2] + x[..., 1::2, ::2] + x[..., ::2, 1::2] + x[..., 1::2, 1::2])
        y = 0.25 * (y[..., ::2, ::2] + y[..., 1::2, ::2] + y[..., ::2, 1::2] + y[..., 1::2, 1::2])
    return value.mean(dim=1)


def oracle_gaussian_l1(x, y, width, sigma=8.0):
    return window_mean((x - y).abs(), gaussian_2d(width, sigma)).mean(dim=(1, 2, 3))


def pair(shape, seed=0, dtype=torch.float64, device="cpu", closeness=0.3):
    g = torch.Generator().manual_seed(seed)
    target = torch.rand(shape, generator=g, dtype=torch.float64)
    prediction = (target + closeness * torch.randn(shape, generator=g, dtype=torch.float64)).clamp(0, 1)
    return prediction.to(device, dtype), target.to(device, dtype)


# ----------------------------------------------------------------------------- parsing


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        ("l2", [(1.0, "l2")]),
        ("l2+0.1*lpips", [(1.0, "l2"), (0.1, "lpips")]),
        ("msssim+l1", [(1.0, "msssim+l1")]),
        (" MS-SSIM ".replace("-", "") + "+ L1", [(1.0, "msssim+l1")]),
        ("0.5*msssim+l1", [(0.5, "msssim+l1")]),
        ("l1+msssim", [(1.0, "l1"), (1.0, "msssim")]),
        ("msssim+1*l1", [(1.0, "msssim"), (1.0, "l1")]),
        ("1e-3*vgg+l2", [(1e-3, "vgg"), (1.0, "l2")]),
        ("2E+1*ssim", [(20.0, "ssim")]),
        ("mdf:denoise", [(1.0, "mdf:denoise")]),
        ("l1+mdf:/a/B/Ds_SISR.pth", [(1.0, "l1"), (1.0, "mdf:/a/B/Ds_SISR.pth")]),
        ("mse+mae+msssim_l1", [(1.0, "l2"), (1.0, "l1"), (1.0, "msssim+l1")]),
    ],
)
def test_specs_parse_into_weighted_terms(spec, expected):
    assert parse_loss_spec(spec) == [LossTerm(w, n) for w, n in expected]


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("", "terms joined by"),
        ("l1+", "terms joined by"),
        ("l1++l2", "terms joined by"),
        ("foo", "'foo'"),
        ("mdf", "bare 'mdf'"),
        ("0*l1", "positive finite weights"),
        ("-1*l1", "WEIGHT*NAME"),
        ("l1*2", "WEIGHT*NAME"),
        ("0.1*0.2*l1", "WEIGHT*NAME"),
    ],
)
def test_bad_specs_raise_value_errors_that_quote_them(spec, message):
    with pytest.raises(ValueError, match=message.replace("*", r"\*").replace("+", r"\+")):
        parse_loss_spec(spec)


def test_a_non_string_spec_is_a_type_error():
    with pytest.raises(TypeError, match="spec"):
        build_loss(["l1"])  # type: ignore[arg-type]


def test_weighted_specs_build_a_weighted_sum_and_single_terms_build_the_loss_itself():
    assert isinstance(build_loss("l2+0.5*l1"), WeightedSum)
    assert isinstance(build_loss("msssim+l1"), MSSSIML1Loss)
    assert isinstance(build_loss("2*ssim"), WeightedSum)


# ----------------------------------------------------------------------------- oracle values


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_pixel_losses_match_their_formulas(reduction):
    p, t = pair((3, 1, 9, 7))
    l1 = (p - t).abs().mean(dim=(1, 2, 3))
    l2 = ((p - t) ** 2).mean(dim=(1, 2, 3))
    reduce = {"mean": torch.mean, "sum": torch.sum, "none": lambda v: v}[reduction]
    torch.testing.assert_close(build_loss("l1", reduction=reduction)(p, t), reduce(l1))
    torch.testing.assert_close(build_loss("l2", reduction=reduction)(p, t), reduce(l2))
    torch.testing.assert_close(build_loss("l2+0.5*l1", reduction=reduction)(p, t), reduce(l2 + 0.5 * l1))


def test_ssim_loss_is_one_minus_an_independent_ssim():
    p, t = pair((2, 3, 23, 30), seed=1)
    expected = 1 - oracle_ssim_and_cs(p, t, 1.0, 11)[0].mean(dim=1)
    torch.testing.assert_close(build_loss("ssim", reduction="none")(p, t), expected, rtol=0, atol=1e-6)


@pytest.mark.parametrize(("side", "window"), [(176, 11), (96, 5), (48, 3)])
def test_ms_ssim_loss_matches_an_independent_ms_ssim_with_the_documented_window(side, window):
    # 16 * (w - 1) < side: 160 < 176 keeps w = 11; 96 allows 5 (64 < 96, 96 !< 96); 48 allows 3.
    assert ms_ssim_window(side) == window
    p, t = pair((1, 3, side, side), seed=2, closeness=0.1)
    expected = 1 - oracle_ms_ssim(p, t, 1.0, window)
    torch.testing.assert_close(build_loss("msssim", reduction="none")(p, t), expected, rtol=0, atol=1e-6)


@pytest.mark.parametrize(("side", "l1_window"), [(96, 49), (48, 47)])
def test_zhao_mix_matches_its_formula(side, l1_window):
    p, t = pair((2, 3, side, side), seed=3, closeness=0.1)
    expected = 0.84 * (1 - oracle_ms_ssim(p, t, 1.0, ms_ssim_window(side))) + 0.16 * oracle_gaussian_l1(p, t, l1_window)
    torch.testing.assert_close(build_loss("msssim+l1", reduction="none")(p, t), expected, rtol=0, atol=1e-6)


@pytest.mark.parametrize("name", ["ssim", "msssim", "msssim+l1"])
def test_structural_losses_scale_with_data_range(name):
    p, t = pair((2, 3, 48, 48), seed=4)
    unit = build_loss(name)(p, t)
    torch.testing.assert_close(build_loss(name, data_range=255.0)(p * 255, t * 255), unit)


@pytest.mark.parametrize("name", ["l1", "l2", "ssim", "msssim", "msssim+l1", "l2+0.1*ssim"])
def test_losses_are_zero_for_equal_images_and_grow_with_the_error(name):
    _, t = pair((2, 3, 48, 48), seed=5)
    noise = torch.randn(t.shape, generator=torch.Generator().manual_seed(9), dtype=t.dtype)
    loss = build_loss(name, reduction="none")
    assert torch.allclose(loss(t, t), torch.zeros(2, dtype=t.dtype), atol=1e-7)
    small, large = loss(t + 0.02 * noise, t), loss(t + 0.2 * noise, t)
    assert (small > 1e-6).all() and (large > small).all()


def test_ms_ssim_of_anti_correlated_images_has_finite_loss_and_gradients():
    t = torch.rand(1, 3, 64, 64, dtype=torch.float64)
    p = (1 - t).requires_grad_(True)
    for name in ("msssim", "msssim+l1"):
        value = build_loss(name)(p, t)
        (grad,) = torch.autograd.grad(value, p)
        assert torch.isfinite(value) and torch.isfinite(grad).all()


# ----------------------------------------------------------------------------- MDF routes


def test_mdf_weight_file_spec_equals_mdf_loss_from_that_file(tmp_path):
    path = save_pyramid(tmp_path / "tiny.safetensors", make_pyramid([4, 4, 6]), {"task": "test"})
    p, t = pair((2, 3, 24, 24), seed=6, dtype=torch.float32)
    p = p * 1.2 - 0.1  # unclamped, as a network's output
    built = build_loss(f"mdf:{path}", reduction="none")
    assert isinstance(built, MDFLoss) and built.check_range is False
    reference = MDFLoss.from_file(path, check_range=False, reduction="none")
    torch.testing.assert_close(built(p, t), reference(p, t))
    combined = build_loss(f"l1+0.5*mdf:{path}")
    torch.testing.assert_close(combined(p, t), (p - t).abs().mean() + 0.5 * reference(p, t).mean())


def test_mdf_options_reach_the_loss(tmp_path):
    path = save_pyramid(tmp_path / "tiny.safetensors", make_pyramid([4, 4, 6]), {})
    built = build_loss(f"mdf:{path}", mdf_options={"scales": 2, "features": "official"})
    assert built.scale_indices == [0, 1] and built.features == "official"


def test_official_pth_spec_is_read_through_from_official():
    path = shared_path("anchors", "mdf-official", "Ds_JPEG.pth")
    p, t = pair((1, 3, 24, 24), seed=7, dtype=torch.float32)
    reference = MDFLoss.from_official(path, check_range=False)
    torch.testing.assert_close(build_loss(f"mdf:{path}")(p, t), reference(p, t))


def test_unknown_pretrained_mdf_name_lists_the_known_names():
    with pytest.raises(ValueError, match="pretrained MDF loss name"):
        build_loss("mdf:no-such-loss")


def test_missing_mdf_weight_file_is_a_file_not_found_error_naming_it(tmp_path):
    with pytest.raises(FileNotFoundError, match="missing.safetensors"):
        build_loss(f"mdf:{tmp_path / 'missing.safetensors'}")


# ----------------------------------------------------------------------------- VGG and LPIPS


RANDOM_VGG = {"vgg": {"weights": "random"}, "lpips": {"weights": "random", "heads": "uniform"}}


@pytest.mark.parametrize(("spec", "weight", "name"), [("l2+vgg", 1.0, "vgg"), ("l2+0.1*lpips", 0.1, "lpips")])
def test_perceptual_terms_are_the_perceptual_module_plus_l2(spec, weight, name):
    from mdfloss.losses.perceptual import LPIPSVGGLoss, VGGPerceptualLoss

    p, t = pair((2, 3, 16, 16), seed=15, dtype=torch.float32)
    torch.manual_seed(3)
    built = build_loss(spec, perceptual_options=RANDOM_VGG, reduction="none")
    torch.manual_seed(3)
    if name == "vgg":
        reference = VGGPerceptualLoss("random", reduction="none", check_range=False)
    else:
        reference = LPIPSVGGLoss("random", heads="uniform", reduction="none", check_range=False)
    expected = ((p - t) ** 2).mean(dim=(1, 2, 3)) + weight * reference(p, t)
    torch.testing.assert_close(built(p, t), expected)
    assert built(p * 1.3 - 0.1, t).isfinite().all()  # unclamped outputs are accepted


def test_missing_imagenet_weights_name_the_file(tmp_path):
    missing = tmp_path / "vgg16-397923af.pth"
    with pytest.raises(FileNotFoundError, match="vgg16-397923af.pth"):
        build_loss("l2+vgg", perceptual_options={"vgg": {"weights": str(missing)}})


# ----------------------------------------------------------------------------- gradients, devices, dtypes


@pytest.mark.parametrize(
    ("name", "side"), [("l1", 6), ("l2", 6), ("ssim", 12), ("msssim", 34), ("msssim+l1", 34), ("l2+0.3*ssim", 12)]
)
def test_gradcheck_in_float64(name, side):
    p, t = pair((1, 1, side, side), seed=8)
    p.requires_grad_(True)
    loss = build_loss(name)
    assert torch.autograd.gradcheck(lambda x: loss(x, t), (p,), fast_mode=side > 6)


def test_gradcheck_of_an_mdf_term(tmp_path):
    path = save_pyramid(tmp_path / "tiny.safetensors", make_pyramid([2, 3]), {})
    loss = build_loss(f"0.5*mdf:{path}", device="cpu").double()
    p, t = pair((1, 3, 12, 12), seed=10)
    p.requires_grad_(True)
    assert torch.autograd.gradcheck(lambda x: loss(x, t), (p,), fast_mode=True)


@pytest.mark.dtypes(torch.float32, torch.float64)
@pytest.mark.parametrize("name", ["l1", "l2", "ssim", "msssim", "msssim+l1"])
def test_losses_run_on_every_device_and_float_dtype(device, dtype, name):
    p, t = pair((2, 3, 40, 40), seed=11)
    expected = build_loss(name)(p, t)
    value = build_loss(name, device=device)(p.to(device, dtype), t.to(device, dtype))
    assert value.device.type == torch.device(device).type and value.dtype == dtype
    assert_close(value, expected, factor=10)  # pytorch_msssim computes float32 inputs in float32


@pytest.mark.parametrize("name", ["ssim", "msssim", "msssim+l1"])
def test_structural_losses_compute_half_precision_inputs_in_float32(name):
    p, t = pair((1, 3, 40, 40), seed=12)
    expected = build_loss(name)(p, t)
    value = build_loss(name)(p.bfloat16(), t.bfloat16())
    assert value.dtype == torch.float32
    torch.testing.assert_close(value.double(), expected, rtol=0, atol=0.02)


def test_grayscale_images_are_accepted():
    p, t = pair((2, 1, 40, 40), seed=13)
    for name in ("l1", "ssim", "msssim", "msssim+l1"):
        assert build_loss(name, reduction="none")(p, t).shape == (2,)


# ----------------------------------------------------------------------------- errors


def test_too_small_inputs_name_the_minimum_size():
    p, t = pair((1, 3, 32, 40))
    with pytest.raises(ValueError, match="at least 33 px"):
        build_loss("msssim")(p, t)
    with pytest.raises(ValueError, match="at least 11 px"):
        build_loss("ssim")(p[..., :10, :10], t[..., :10, :10])


@pytest.mark.parametrize("name", ["l1", "ssim", "msssim+l1"])
def test_mismatched_or_malformed_inputs_are_refused(name):
    p, t = pair((1, 3, 40, 40))
    loss = build_loss(name)
    with pytest.raises(ValueError, match="same shape"):
        loss(p, t[..., :-1])
    with pytest.raises(ValueError, match="4-D"):
        loss(p[0], t[0])
    with pytest.raises(TypeError, match="prediction"):
        loss(p.numpy(), t)
    with pytest.raises(ValueError, match="finite"):
        loss(p * math.nan, t)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [({"reduction": "avg"}, "reduction"), ({"data_range": 0}, "data_range"), ({"data_range": True}, "data_range")],
)
def test_bad_options_are_value_errors_naming_the_argument(kwargs, message):
    with pytest.raises(ValueError, match=message):
        build_loss("l1", **kwargs)


def test_zhao_mix_refuses_bad_parameters():
    with pytest.raises(ValueError, match="alpha"):
        MSSSIML1Loss(alpha=1.5)
    with pytest.raises(ValueError, match="l1_sigma"):
        MSSSIML1Loss(l1_sigma=0)


def test_gaussian_l1_window_shrinks_to_fit_small_inputs():
    # 3 sigma truncation gives 49 taps; a 40 px input gets the widest odd width that fits, 39.
    p, t = pair((1, 3, 40, 44), seed=14)
    torch.testing.assert_close(gaussian_weighted_l1(p, t, 8.0), oracle_gaussian_l1(p, t, 39), rtol=0, atol=1e-12)

