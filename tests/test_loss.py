"""MDFLoss against an independent functional oracle, plus its properties and its input checks."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from conftest import assert_close, make_pyramid

from mdfloss import DiscriminatorPyramid, MDFLoss, mdf_loss, pretrained_names


def oracle_loss(prediction, target, pyramid, *, features, scales, input_range=(-1.0, 1.0), data_range=1.0):
    """Direct re-implementation from the raw state dict: conv -> batch_norm(eval) -> leaky_relu.

    Per-sample mean over (C, H, W) of squared feature differences, summed over features and
    the chosen discriminators; returns (N,).
    """
    low, high = input_range
    x = prediction / data_range * (high - low) + low
    y = target / data_range * (high - low) + low
    if x.shape[1] == 1:
        x, y = x.repeat(1, 3, 1, 1), y.repeat(1, 3, 1, 1)
    state = pyramid.state_dict()
    total = torch.zeros(x.shape[0], dtype=x.dtype)
    for k in scales:
        def run(image):
            outputs = []
            h = image
            for block in ("head", "body.0", "body.1", "body.2"):
                p = f"discriminators.{k}.{block}"
                h = F.conv2d(h, state[f"{p}.conv.weight"].to(h.dtype), state[f"{p}.conv.bias"].to(h.dtype))
                h = F.batch_norm(
                    h, state[f"{p}.norm.running_mean"].to(h.dtype), state[f"{p}.norm.running_var"].to(h.dtype),
                    state[f"{p}.norm.weight"].to(h.dtype), state[f"{p}.norm.bias"].to(h.dtype),
                    training=False, eps=1e-5,
                )
                h = F.leaky_relu(h, 0.2)
                outputs.append(h)
            p = f"discriminators.{k}.tail"
            outputs.append(F.conv2d(h, state[f"{p}.weight"].to(h.dtype), state[f"{p}.bias"].to(h.dtype)))
            return [outputs[0], outputs[3], outputs[4]] if features == "official" else outputs

        for a, b in zip(run(x), run(y)):
            total = total + ((a - b) ** 2).mean(dim=(1, 2, 3))
    return total


def image_pair(shape=(2, 3, 24, 20), seed=0, dtype=torch.float32):
    g = torch.Generator().manual_seed(seed)
    target = torch.rand(shape, generator=g, dtype=dtype)
    prediction = (target + 0.1 * torch.randn(shape, generator=g, dtype=dtype)).clamp(0, 1)
    return prediction, target


@pytest.mark.parametrize("features", ["paper", "official"])
def test_loss_equals_the_direct_functional_definition(features):
    pyramid = make_pyramid([4, 4, 6])
    prediction, target = image_pair()
    crit = MDFLoss(pyramid, features=features, reduction="none")
    expected = oracle_loss(prediction, target, pyramid, features=features, scales=[0, 1, 2])
    torch.testing.assert_close(crit(prediction, target), expected, rtol=1e-5, atol=1e-7)


def test_paper_features_include_every_activation_and_official_features_a_subset():
    pyramid = make_pyramid([4, 6])
    prediction, target = image_pair()
    paper = MDFLoss(pyramid, features="paper")(prediction, target)
    official = MDFLoss(pyramid, features="official")(prediction, target)
    assert paper > official > 0


def test_input_range_and_data_range_map_the_images_linearly():
    pyramid = make_pyramid([4, 4])
    prediction, target = image_pair()
    identity = MDFLoss(pyramid, input_range=(0, 1), reduction="none")(prediction, target)
    expected = oracle_loss(prediction, target, pyramid, features="paper", scales=[0, 1], input_range=(0, 1))
    torch.testing.assert_close(identity, expected, rtol=1e-5, atol=1e-7)
    in_255 = MDFLoss(pyramid, data_range=255.0)(prediction * 255, target * 255)
    in_1 = MDFLoss(pyramid)(prediction, target)
    torch.testing.assert_close(in_255, in_1, rtol=1e-4, atol=1e-7)


def test_scales_select_the_coarsest_n_or_listed_discriminators():
    pyramid = make_pyramid([4, 4, 6])
    prediction, target = image_pair()

    def loss(scales):
        return MDFLoss(pyramid, scales=scales)(prediction, target)

    single = [loss([k]) for k in range(3)]
    torch.testing.assert_close(loss(2), single[0] + single[1])
    torch.testing.assert_close(loss([2, 0]), single[2] + single[0])
    torch.testing.assert_close(loss(None), sum(single))


def test_loss_of_identical_images_is_zero():
    _, target = image_pair()
    assert MDFLoss(make_pyramid([4, 6]))(target, target.clone()).item() == 0.0


def test_loss_is_symmetric():
    crit = MDFLoss(make_pyramid([4, 6]), reduction="none")
    prediction, target = image_pair()
    torch.testing.assert_close(crit(prediction, target), crit(target, prediction))


def test_reductions_agree_and_none_returns_one_value_per_sample():
    pyramid = make_pyramid([4, 6])
    prediction, target = image_pair(shape=(3, 3, 16, 16))
    per_sample = MDFLoss(pyramid, reduction="none")(prediction, target)
    assert per_sample.shape == (3,)
    torch.testing.assert_close(MDFLoss(pyramid, reduction="mean")(prediction, target), per_sample.mean())
    torch.testing.assert_close(MDFLoss(pyramid, reduction="sum")(prediction, target), per_sample.sum())
    single = MDFLoss(pyramid, reduction="none")(prediction[:1], target[:1])
    assert single.shape == (1,)
    torch.testing.assert_close(single, per_sample[:1])


def test_grayscale_input_is_repeated_to_three_channels():
    crit = MDFLoss(make_pyramid([4]))
    prediction, target = image_pair(shape=(2, 1, 16, 16))
    torch.testing.assert_close(
        crit(prediction, target), crit(prediction.repeat(1, 3, 1, 1), target.repeat(1, 3, 1, 1))
    )


def test_gradient_matches_finite_differences_in_float64():
    crit = MDFLoss(make_pyramid([2, 3]), input_range=(0, 1), check_range=False).double()
    prediction, target = image_pair(shape=(1, 3, 12, 13), dtype=torch.float64)
    prediction.requires_grad_(True)
    assert torch.autograd.gradcheck(lambda p: crit(p, target), (prediction,), fast_mode=True)
    target.requires_grad_(True)
    assert torch.autograd.gradcheck(lambda p, t: crit(p, t), (prediction, target), fast_mode=True)


@pytest.mark.parametrize("features", ["paper", "official"])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_hand_written_backward_equals_autograd_through_the_oracle(features, dtype):
    # A target without grad takes the fused path with its own backward; the oracle is plain autograd.
    pyramid = make_pyramid([4, 6]).to(dtype)
    prediction, target = image_pair(shape=(3, 3, 17, 14), dtype=dtype)
    weights = torch.tensor([1.0, -2.0, 0.5], dtype=dtype)  # per-sample incoming gradients
    fused = prediction.clone().requires_grad_(True)
    (MDFLoss(pyramid, features=features, reduction="none")(fused, target) * weights).sum().backward()
    direct = prediction.clone().requires_grad_(True)
    (oracle_loss(direct, target, pyramid, features=features, scales=[0, 1]) * weights).sum().backward()
    tolerance = {"rtol": 1e-4, "atol": 1e-6} if dtype == torch.float32 else {"rtol": 1e-10, "atol": 1e-12}
    torch.testing.assert_close(fused.grad, direct.grad, **tolerance)


def test_fused_path_runs_exactly_when_it_applies(monkeypatch):
    # Guards the oracle comparisons above: they must exercise the hand-written backward.
    from mdfloss import loss as loss_module

    calls = []
    original = loss_module._PairDistance.apply
    monkeypatch.setattr(loss_module._PairDistance, "apply", lambda *a: calls.append(1) or original(*a))
    crit = MDFLoss(make_pyramid([4, 6]))
    prediction, target = image_pair()
    crit(prediction.requires_grad_(True), target).backward()
    assert len(calls) == 2  # one per discriminator
    calls.clear()
    crit(prediction, target.clone().requires_grad_(True))  # a target with grad: plain autograd
    with torch.autocast("cpu", dtype=torch.bfloat16):
        crit(prediction, target)
    assert calls == []


def test_second_derivatives_match_finite_differences_in_float64():
    crit = MDFLoss(make_pyramid([2, 3]), input_range=(0, 1), check_range=False).double()
    prediction, target = image_pair(shape=(1, 3, 12, 12), dtype=torch.float64)
    prediction.requires_grad_(True)
    assert torch.autograd.gradgradcheck(lambda p: crit(p, target), (prediction,), fast_mode=True)


def test_torch_func_grad_equals_backward():
    crit = MDFLoss(make_pyramid([4, 6]))
    prediction, target = image_pair()
    leaf = prediction.clone().requires_grad_(True)
    crit(leaf, target).backward()
    torch.testing.assert_close(torch.func.grad(lambda p: crit(p, target))(prediction), leaf.grad, rtol=1e-4, atol=1e-7)


def test_value_without_grad_equals_value_with_grad():
    crit = MDFLoss(make_pyramid([4, 6]), reduction="none")
    prediction, target = image_pair()
    with torch.no_grad():
        without = crit(prediction, target)
    assert without.grad_fn is None
    torch.testing.assert_close(without, crit(prediction.requires_grad_(True), target).detach())


def test_target_without_grad_gets_no_graph_and_with_grad_gets_the_mirrored_gradient():
    crit = MDFLoss(make_pyramid([4, 6]))
    prediction, target = image_pair()
    prediction.requires_grad_(True)
    crit(prediction, target).backward()
    assert target.grad is None and prediction.grad is not None
    p2, t2 = prediction.detach().clone().requires_grad_(True), target.clone().requires_grad_(True)
    crit(p2, t2).backward()
    torch.testing.assert_close(p2.grad, prediction.grad)
    swapped = target.clone().requires_grad_(True)
    crit(swapped, prediction.detach()).backward()
    torch.testing.assert_close(t2.grad, swapped.grad)


def test_discriminators_are_frozen_and_stay_in_eval_mode():
    crit = MDFLoss(make_pyramid([4, 6]))
    prediction, target = image_pair()
    before = crit(prediction, target)
    crit.train()
    assert crit.training and not crit.pyramid.training
    assert not any(m.training for m in crit.pyramid.modules())
    assert not any(p.requires_grad for p in crit.parameters())
    torch.testing.assert_close(crit(prediction, target), before)
    running = crit.pyramid[0].head.norm.running_mean.clone()
    crit(prediction, target)
    assert torch.equal(running, crit.pyramid[0].head.norm.running_mean)


def test_module_follows_to_and_appears_in_state_dict():
    crit = MDFLoss(make_pyramid([4]))
    assert "pyramid.discriminators.0.head.conv.weight" in crit.state_dict()
    assert "pyramid.discriminators.0.head.norm.running_var" in crit.state_dict()
    crit64 = crit.double()
    assert all(p.dtype == torch.float64 for p in crit64.parameters())
    prediction, target = image_pair(dtype=torch.float64)
    assert crit64(prediction, target).dtype == torch.float64


def test_loss_runs_on_every_device_and_dtype(device, dtype):
    """float16 and bfloat16 tensors go straight in (no autocast); distances are summed in float32."""
    pyramid = make_pyramid([4, 6])
    prediction, target = (x.to(dtype) for x in image_pair(dtype=torch.float64))
    expected = oracle_loss(prediction.double(), target.double(), pyramid, features="paper", scales=[0, 1]).mean()
    crit = MDFLoss(pyramid).to(device)
    value = crit(prediction.to(device), target.to(device))
    assert value.dtype == torch.promote_types(dtype, torch.float32) and value.device.type == torch.device(device).type
    assert_close(value, expected, dtype=dtype)


def test_cpu_autocast_bfloat16_stays_close_to_float32():
    crit = MDFLoss(make_pyramid([8, 8]))
    prediction, target = image_pair(shape=(2, 3, 32, 32))
    reference = crit(prediction, target)
    prediction.requires_grad_(True)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        value = crit(prediction, target)
    value.backward()
    assert value.dtype == torch.float32
    torch.testing.assert_close(value.detach(), reference, rtol=0.05, atol=1e-6)
    assert torch.isfinite(prediction.grad).all()


@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device")
def test_cuda_autocast_float16_stays_close_to_float32():
    crit = MDFLoss(make_pyramid([8, 8])).cuda()
    prediction, target = (t.cuda() for t in image_pair(shape=(2, 3, 32, 32)))
    reference = crit(prediction, target)
    with torch.autocast("cuda", dtype=torch.float16):
        value = crit(prediction, target)
    torch.testing.assert_close(value.float(), reference, rtol=0.02, atol=1e-6)


@pytest.mark.slow
def test_torch_compile_gives_the_eager_value_and_gradient():
    crit = MDFLoss(make_pyramid([4, 6]))
    prediction, target = image_pair()
    compiled = torch.compile(crit)
    p1 = prediction.clone().requires_grad_(True)
    p2 = prediction.clone().requires_grad_(True)
    eager, fast = crit(p1, target), compiled(p2, target)
    eager.backward()
    fast.backward()
    torch.testing.assert_close(fast, eager, rtol=1e-5, atol=1e-7)
    torch.testing.assert_close(p2.grad, p1.grad, rtol=1e-4, atol=1e-7)


def test_functional_form_equals_module():
    pyramid = make_pyramid([4, 6])
    prediction, target = image_pair()
    torch.testing.assert_close(
        mdf_loss(prediction, target, pyramid, features="official", scales=1),
        MDFLoss(pyramid, features="official", scales=1)(prediction, target),
    )


def test_pretrained_unknown_name_lists_the_known_names():
    with pytest.raises(ValueError, match="name: expected a pretrained MDF loss name") as error:
        MDFLoss.pretrained("no-such-loss")
    for name in pretrained_names():
        assert repr(name) in str(error.value)


def _bad(shape=(1, 3, 16, 16), dtype=torch.float32, fill=None):
    x = torch.rand(shape).to(dtype)
    if fill is not None:
        x[0, 0, 0, 0] = fill
    return x


GOOD = _bad()
BAD_INPUTS = [
    ("not a tensor", [[0.5]], GOOD, TypeError, "prediction: expected a torch.Tensor, got list"),
    ("3-D", torch.rand(3, 16, 16), torch.rand(3, 16, 16), ValueError, r"expected a 4-D tensor .* got shape \(3, 16, 16\)"),
    ("5 channels", _bad((1, 5, 16, 16)), _bad((1, 5, 16, 16)), ValueError, "expected 1 or 3 channels"),
    ("too small", _bad((1, 3, 10, 16)), _bad((1, 3, 10, 16)), ValueError, "at least 11 px .*receptive field"),
    ("shape mismatch", GOOD, _bad((1, 3, 16, 17)), ValueError, r"same shape, got \(1, 3, 16, 16\) and \(1, 3, 16, 17\)"),
    ("integer", GOOD, (GOOD * 255).to(torch.uint8), TypeError, "target: expected a floating-point tensor, got .*uint8"),
    ("bool", GOOD > 0.5, GOOD, TypeError, "prediction: expected a floating-point tensor, got .*bool"),
    ("NaN", _bad(fill=float("nan")), GOOD, ValueError, "prediction: expected finite values, got NaN or Inf"),
    ("Inf", GOOD, _bad(fill=float("inf")), ValueError, "target: expected finite values, got NaN or Inf"),
    ("above range", _bad(fill=1.5), GOOD, ValueError, r"prediction: expected values in \[0, data_range=1\], got .*max 1.5"),
    ("below range", GOOD, _bad(fill=-0.25), ValueError, r"target: expected values in \[0, data_range=1\], got min -0.25"),
    ("device mismatch", GOOD.to("meta"), GOOD, ValueError, "same device, got meta and cpu"),
    ("empty batch", _bad((0, 3, 16, 16)), _bad((0, 3, 16, 16)), ValueError, "non-empty batch"),
]


@pytest.mark.parametrize(
    ("prediction", "target", "error", "message"),
    [case[1:] for case in BAD_INPUTS], ids=[case[0] for case in BAD_INPUTS],
)
def test_bad_input_raises_a_clear_error(prediction, target, error, message):
    with pytest.raises(error, match=message):
        MDFLoss(make_pyramid([4]))(prediction, target)


def test_range_check_can_be_switched_off_for_unclamped_outputs():
    crit = MDFLoss(make_pyramid([4]), check_range=False)
    assert torch.isfinite(crit(_bad(fill=1.5), GOOD))
    with pytest.raises(ValueError, match="finite"):
        crit(_bad(fill=float("nan")), GOOD)


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"features": "vgg"}, "features: expected one of"),
        ({"reduction": "max"}, "reduction: expected one of"),
        ({"data_range": 0}, "data_range: expected a positive number"),
        ({"input_range": (1, -1)}, "input_range: expected"),
        ({"scales": 5}, r"scales: expected an int in \[1, 2\]"),
        ({"scales": [0, 2]}, r"scales\[1\]: expected an int in \[0, 1\], got 2"),
        ({"scales": [1, 1]}, "scales: expected distinct indices"),
        ({"scales": []}, "scales: expected at least one"),
        ({"scales": "all"}, "scales: expected None, an int or a list"),
    ],
)
def test_bad_options_raise_a_clear_error(options, message):
    with pytest.raises((ValueError, TypeError), match=message):
        MDFLoss(make_pyramid([4, 4]), **options)


def test_empty_or_wrong_pyramid_is_refused():
    with pytest.raises(TypeError, match="pyramid: expected a non-empty DiscriminatorPyramid"):
        MDFLoss(DiscriminatorPyramid([]))
    with pytest.raises(TypeError, match="pyramid"):
        MDFLoss(torch.nn.Identity())


def test_disabled_checks_skip_the_value_checks_only():
    """NaN and out-of-range values pass unchecked (no host sync); shapes are still checked."""
    import mdfloss

    crit = MDFLoss(make_pyramid([4]))
    prediction, target = image_pair()
    with pytest.raises(ValueError, match="prediction: expected values in"):
        crit(prediction + 2, target)
    mdfloss.disable_checks()
    try:
        assert not mdfloss.checks_enabled()
        assert torch.isfinite(crit(prediction + 2, target))
        assert torch.isnan(crit(prediction * float("nan"), target))
        with pytest.raises(ValueError, match="expected the same shape"):
            crit(prediction, target[..., :-1])
    finally:
        mdfloss.enable_checks()
    assert mdfloss.checks_enabled()


def test_the_environment_can_turn_the_value_checks_off():
    import os
    import subprocess
    import sys

    code = "import mdfloss; print(mdfloss.checks_enabled())"
    for value, expected in (("0", "False"), ("1", "True")):
        env = {**os.environ, "MDFLOSS_CHECKS": value}
        result = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
        assert result.stdout.strip() == expected


def test_scale_parts_are_single_discriminators_that_add_up_to_the_loss():
    crit = MDFLoss(make_pyramid([4, 4, 6]), scales=[0, 2], reduction="none")
    prediction, target = image_pair()
    parts = crit.scale_parts()
    assert sorted(parts) == [0, 2] and all(part.scale_indices == [k] for k, part in parts.items())
    torch.testing.assert_close(sum(part(prediction, target) for part in parts.values()), crit(prediction, target))


def test_feature_maps_are_what_the_loss_compares():
    """The loss of a pair is the sum over scales and maps of the mean squared difference of its feature maps."""
    crit = MDFLoss(make_pyramid([4, 6]), input_range=(-1, 1), reduction="none")
    prediction, target = image_pair(dtype=torch.float64)
    crit = crit.double()
    a, b = crit.feature_maps(prediction), crit.feature_maps(target)
    assert sorted(a) == [0, 1] and len(a[0]) == 5  # paper features: 4 LeakyReLU outputs and the tail
    summed = sum((fa - fb).square().flatten(1).mean(dim=1) for k in a for fa, fb in zip(a[k], b[k]))
    torch.testing.assert_close(summed, crit(prediction, target))
