"""VGG16 perceptual and LPIPS-style losses against direct re-implementations, plus weight loading."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from mdfloss.losses.perceptual import (
    LPIPSVGGLoss,
    VGG16Features,
    VGGPerceptualLoss,
    vgg16_weight_path,
)

# torchvision's vgg16().features: convolutions at these indices, ReLU after each, max-pools at 4, 9, 16, 23, 30.
CONV_INDICES = (0, 2, 5, 7, 10, 12, 14, 17, 19, 21, 24, 26, 28)
CONV_CHANNELS = (64, 64, 128, 128, 256, 256, 256, 512, 512, 512, 512, 512, 512)
BLOCK_END_CONVS = (2, 7, 14, 21, 28)  # the convolution before relu1_2, relu2_2, relu3_3, relu4_3, relu5_3


def image_pair(shape=(2, 3, 16, 16), seed=0, dtype=torch.float32):
    g = torch.Generator().manual_seed(seed)
    target = torch.rand(shape, generator=g, dtype=dtype)
    prediction = (target + 0.1 * torch.randn(shape, generator=g, dtype=dtype)).clamp(0, 1)
    return prediction, target


def direct_vgg_block_ends(x, state):
    """relu1_2 ... relu5_3 by an explicit F.conv2d / relu / max_pool2d chain over the state dict."""
    outputs, h = [], x
    for index in CONV_INDICES:
        if index in (5, 10, 17, 24):
            h = F.max_pool2d(h, 2)
        h = F.relu(F.conv2d(h, state[f"features.{index}.weight"], state[f"features.{index}.bias"], padding=1))
        if index in BLOCK_END_CONVS:
            outputs.append(h)
    return outputs


def save_lpips_heads(path, seed=0):
    g = torch.Generator().manual_seed(seed)
    heads = {f"lin{k}.model.1.weight": torch.rand(1, c, 1, 1, generator=g) for k, c in enumerate((64, 128, 256, 512, 512))}
    torch.save(heads, path)
    return heads


def test_state_dict_keys_and_shapes_are_torchvision_vgg16_features():
    state = VGG16Features().state_dict()
    expected = [f"features.{i}.{kind}" for i in CONV_INDICES for kind in ("weight", "bias")]
    assert list(state) == expected
    inputs = (3,) + CONV_CHANNELS[:-1]
    for i, c_in, c_out in zip(CONV_INDICES, inputs, CONV_CHANNELS):
        assert state[f"features.{i}.weight"].shape == (c_out, c_in, 3, 3)
    assert sum(t.numel() for t in state.values()) == 14_714_688  # the paper's 58.9 MB at 4 bytes each
    assert len(VGG16Features().features) == 31


def test_perceptual_loss_equals_a_direct_conv_chain():
    crit = VGGPerceptualLoss(weights="random", reduction="none")
    state = crit.vgg.state_dict()
    prediction, target = image_pair()
    mean = torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1)
    std = torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1)
    a = direct_vgg_block_ends((prediction - mean) / std, state)
    b = direct_vgg_block_ends((target - mean) / std, state)
    expected = sum(((fa - fb) ** 2).mean(dim=(1, 2, 3)) for fa, fb in zip(a, b))
    torch.testing.assert_close(crit(prediction, target), expected, rtol=1e-5, atol=1e-8)


def test_lpips_loss_equals_the_lpips_formula_written_out(tmp_path):
    heads = save_lpips_heads(tmp_path / "vgg.pth")
    crit = LPIPSVGGLoss(weights="random", heads=tmp_path / "vgg.pth", reduction="none")
    state = crit.vgg.state_dict()
    prediction, target = image_pair()
    shift = torch.tensor([-0.030, -0.088, -0.188]).view(1, 3, 1, 1)
    scale = torch.tensor([0.458, 0.448, 0.450]).view(1, 3, 1, 1)
    a = direct_vgg_block_ends(((prediction * 2 - 1) - shift) / scale, state)
    b = direct_vgg_block_ends(((target * 2 - 1) - shift) / scale, state)
    expected = torch.zeros(2)
    for k, (fa, fb) in enumerate(zip(a, b)):
        na = fa / (torch.sqrt((fa**2).sum(dim=1, keepdim=True)) + 1e-10)
        nb = fb / (torch.sqrt((fb**2).sum(dim=1, keepdim=True)) + 1e-10)
        weighted = ((na - nb) ** 2 * heads[f"lin{k}.model.1.weight"]).sum(dim=1)
        expected += weighted.mean(dim=(1, 2))
    torch.testing.assert_close(crit(prediction, target), expected, rtol=1e-5, atol=1e-8)


def test_identical_images_give_zero_and_different_images_a_positive_loss():
    prediction, target = image_pair()
    for crit in (VGGPerceptualLoss(weights="random"), LPIPSVGGLoss(weights="random", heads="uniform")):
        assert crit(target, target) == 0
        assert crit(prediction, target) > 0


def test_reductions_agree_and_none_returns_one_value_per_sample():
    prediction, target = image_pair(shape=(3, 3, 8, 8))
    crit = VGGPerceptualLoss(weights="random", layers=("relu1_2", "relu2_2"), reduction="none")
    per_sample = crit(prediction, target)
    assert per_sample.shape == (3,)
    crit.reduction = "sum"
    torch.testing.assert_close(crit(prediction, target), per_sample.sum())
    crit.reduction = "mean"
    torch.testing.assert_close(crit(prediction, target), per_sample.mean())


def test_grayscale_input_is_repeated_to_three_channels():
    crit = LPIPSVGGLoss(weights="random", heads="uniform")
    prediction, target = image_pair(shape=(2, 1, 16, 16))
    torch.testing.assert_close(crit(prediction, target), crit(prediction.repeat(1, 3, 1, 1), target.repeat(1, 3, 1, 1)))


def test_data_range_scales_the_input():
    crit = VGGPerceptualLoss(weights="random", layers=("relu2_2",))
    prediction, target = image_pair()
    in_255 = VGGPerceptualLoss(weights="random", layers=("relu2_2",), data_range=255.0)
    in_255.load_state_dict(crit.state_dict())
    torch.testing.assert_close(in_255(prediction * 255, target * 255), crit(prediction, target))


def test_perceptual_gradient_matches_finite_differences_in_float64():
    crit = VGGPerceptualLoss(weights="random", layers=("relu1_2", "relu2_2"), check_range=False).double()
    prediction, target = image_pair(shape=(1, 1, 4, 4), dtype=torch.float64)
    prediction.requires_grad_(True)
    assert torch.autograd.gradcheck(lambda p: crit(p, target), (prediction,), fast_mode=True)


def test_lpips_gradient_matches_finite_differences_in_float64():
    crit = LPIPSVGGLoss(weights="random", heads="uniform", check_range=False).double()
    prediction, target = image_pair(shape=(1, 3, 16, 16), dtype=torch.float64)
    prediction.requires_grad_(True)
    assert torch.autograd.gradcheck(lambda p: crit(p, target), (prediction,), fast_mode=True)


def test_torchvision_state_dict_file_loads_from_a_path_and_from_the_hub_cache(tmp_path, monkeypatch):
    source = VGG16Features()
    state = {**source.state_dict(), "classifier.0.weight": torch.zeros(2, 2), "classifier.0.bias": torch.zeros(2)}
    torch.save(state, tmp_path / "vgg16.pth")
    from_path = VGGPerceptualLoss(weights=tmp_path / "vgg16.pth")
    assert all(torch.equal(from_path.vgg.state_dict()[k], v) for k, v in source.state_dict().items())
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    cached = tmp_path / "torch" / "hub" / "checkpoints" / "vgg16-397923af.pth"
    assert vgg16_weight_path() == cached
    cached.parent.mkdir(parents=True)
    torch.save(state, cached)
    from_cache = VGGPerceptualLoss()
    assert torch.equal(from_cache.vgg.features[28].bias, source.features[28].bias)


def test_missing_weights_name_the_file_looked_for_and_how_to_supply_it(tmp_path, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    with pytest.raises(FileNotFoundError) as error:
        VGGPerceptualLoss()
    message = str(error.value)
    assert str(tmp_path / "hub" / "checkpoints" / "vgg16-397923af.pth") in message
    assert "weights=" in message and "TORCH_HOME" in message
    with pytest.raises(FileNotFoundError, match="nothing.pth"):
        LPIPSVGGLoss(weights=tmp_path / "nothing.pth")
    with pytest.raises(FileNotFoundError, match="heads="):
        LPIPSVGGLoss(weights="random", heads=tmp_path / "nothing.pth")


def test_foreign_or_corrupt_weight_files_are_refused(tmp_path):
    (tmp_path / "junk.pth").write_bytes(b"not a torch file")
    with pytest.raises(ValueError, match="junk.pth"):
        VGGPerceptualLoss(weights=tmp_path / "junk.pth")
    torch.save({"features.0.weight": torch.zeros(64, 3, 3, 3)}, tmp_path / "partial.pth")
    with pytest.raises(ValueError, match="missing"):
        VGGPerceptualLoss(weights=tmp_path / "partial.pth")
    heads = save_lpips_heads(tmp_path / "heads.pth")
    heads["lin2.model.1.weight"][0, 0] = -1.0
    torch.save(heads, tmp_path / "negative.pth")
    with pytest.raises(ValueError, match="non-negative"):
        LPIPSVGGLoss(weights="random", heads=tmp_path / "negative.pth")


@pytest.mark.parametrize("prediction, target, error, message", [
    (torch.rand(1, 3, 15, 16), torch.rand(1, 3, 15, 16), ValueError, "at least 16 px"),
    (torch.rand(1, 3, 16, 16) * 2, torch.rand(1, 3, 16, 16), ValueError, "data_range"),
    (torch.rand(1, 2, 16, 16), torch.rand(1, 2, 16, 16), ValueError, "1 or 3 channels"),
    (torch.rand(1, 3, 16, 16), torch.rand(1, 3, 16, 17), ValueError, "same shape"),
    ([0.5], torch.rand(1, 3, 16, 16), TypeError, "torch.Tensor"),
])
def test_bad_input_raises_a_clear_error(prediction, target, error, message):
    with pytest.raises(error, match=message):
        VGGPerceptualLoss(weights="random")(prediction, target)


@pytest.mark.parametrize("options, message", [
    ({"layers": ("relu9_9",)}, "layers"), ({"layers": "relu1_2"}, "layers"), ({"reduction": "avg"}, "reduction"),
    ({"data_range": 0}, "data_range"),
])
def test_bad_options_raise_a_clear_error(options, message):
    with pytest.raises(ValueError, match=message):
        VGGPerceptualLoss(weights="random", **options)


def test_shallow_layers_accept_smaller_images():
    crit = VGGPerceptualLoss(weights="random", layers=("relu2_2",))
    assert crit.min_size == 2
    prediction, target = image_pair(shape=(1, 3, 2, 2))
    assert crit(prediction, target) >= 0


def test_vgg_is_frozen_and_stays_in_eval_mode():
    crit = VGGPerceptualLoss(weights="random", layers=("relu2_2",)).train()
    assert crit.training and not crit.vgg.training
    assert not any(p.requires_grad for p in crit.parameters())
    prediction, target = image_pair()
    prediction.requires_grad_(True)
    crit(prediction, target).backward()
    assert prediction.grad is not None and target.grad is None


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_losses_run_on_every_device_and_dtype(device, dtype):
    prediction, target = image_pair(dtype=dtype)
    for crit in (VGGPerceptualLoss(weights="random", layers=("relu3_3",)), LPIPSVGGLoss(weights="random", heads="uniform")):
        expected = crit.double()(prediction.double(), target.double())
        crit = crit.to(device=device, dtype=dtype)
        value = crit(prediction.to(device), target.to(device))
        assert value.dtype == dtype and value.device.type == device
        torch.testing.assert_close(value.cpu().double(), expected, rtol=1e-4, atol=1e-6)
