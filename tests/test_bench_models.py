"""The benchmark's networks: sizes counted by hand, shapes, residual structure, errors."""

from __future__ import annotations

import pytest
import torch

from mdfloss.bench.models import EDSR, DnCNN, SRResNet, build_model


def conv(cin: int, cout: int, k: int, bias: bool = True) -> int:
    return cin * cout * k * k + (cout if bias else 0)


def test_paper_sizes_have_the_published_parameter_counts():
    # EDSR baseline x4: head, 16 blocks of 2 convs, body conv, 2 x (conv 64->256), tail.
    edsr = conv(3, 64, 3) + 16 * 2 * conv(64, 64, 3) + conv(64, 64, 3) + 2 * conv(64, 256, 3) + conv(64, 3, 3)
    # SRResNet x4: 9x9 head + PReLU(64); blocks of 2 convs, 2 BN (2 x 64 each), PReLU; conv + BN;
    # 2 x (conv 64->256 + PReLU(64)); 9x9 tail.
    srresnet = (conv(3, 64, 9) + 64 + 16 * (2 * conv(64, 64, 3) + 2 * 128 + 64) + conv(64, 64, 3) + 128
                + 2 * (conv(64, 256, 3) + 64) + conv(64, 3, 9))
    # DnCNN depth 20: conv+ReLU, 18 x (bias-free conv + BN), conv.
    dncnn = conv(3, 64, 3) + 18 * (conv(64, 64, 3, bias=False) + 128) + conv(64, 3, 3)
    for name, task, expected in (("edsr", "sisr", edsr), ("srresnet", "sisr", srresnet), ("dncnn", "denoise", dncnn)):
        model = build_model(name, task=task, size="paper")
        assert sum(p.numel() for p in model.parameters()) == expected


@pytest.mark.parametrize(("name", "task", "factor"), [("edsr", "sisr", 4), ("srresnet", "sisr", 4), ("dncnn", "jpeg", 1)])
def test_small_models_map_shapes_by_their_scale(device, name, task, factor):
    model = build_model(name, task=task, size="small").to(device)
    out = model(torch.rand(2, 3, 10, 13, device=device))
    assert out.shape == (2, 3, 10 * factor, 13 * factor) and out.device.type == torch.device(device).type
    out.mean().backward()
    assert all(p.grad is not None for p in model.parameters())


def test_dncnn_learns_the_residual_so_a_zero_last_layer_is_the_identity():
    model = DnCNN(depth=5, features=8).eval()
    torch.nn.init.zeros_(model.body[-1].weight)
    torch.nn.init.zeros_(model.body[-1].bias)
    x = torch.rand(1, 3, 9, 9)
    torch.testing.assert_close(model(x), x)


def test_edsr_with_a_zero_tail_outputs_the_div2k_mean():
    model = EDSR(blocks=1, features=8, scale=2)
    torch.nn.init.zeros_(model.tail.weight)
    torch.nn.init.zeros_(model.tail.bias)
    out = model(torch.rand(1, 3, 5, 5))
    expected = torch.tensor([0.4488, 0.4371, 0.4040]).view(1, 3, 1, 1).expand(1, 3, 10, 10)
    torch.testing.assert_close(out, expected)


def test_overrides_reach_the_constructor():
    model = build_model("edsr", task="sisr", size="small", scale=2, blocks=1)
    assert model.scale == 2 and len(model.body) == 2
    assert isinstance(build_model("srresnet", task="sisr", size="small"), SRResNet)


@pytest.mark.parametrize(
    ("kwargs", "error", "message"),
    [
        ({"name": "unet", "task": "sisr"}, ValueError, "model.type: expected one of"),
        ({"name": "dncnn", "task": "sisr"}, ValueError, "model.type: expected a model for task .sisr., got .dncnn."),
        ({"name": "edsr", "task": "sisr", "size": "huge"}, ValueError, "size"),
        ({"name": "edsr", "task": "sisr", "scale": 3}, ValueError, "power of two"),
        ({"name": "edsr", "task": "sisr", "blocks": 0}, ValueError, "blocks"),
        ({"name": "dncnn", "task": "denoise", "width": 3}, TypeError, "model options"),
    ],
)
def test_bad_model_requests_are_refused(kwargs, error, message):
    with pytest.raises(error, match=message):
        build_model(**kwargs)


@pytest.mark.parametrize(("name", "task"), [("edsr", "sisr"), ("srresnet", "sisr"), ("dncnn", "denoise")])
def test_start_from_input_returns_the_input_or_its_bicubic_upsampling(name, task):
    model = build_model(name, task=task, size="small", start_from_input=True).eval()
    x = torch.rand(2, 3, 6, 7, generator=torch.Generator().manual_seed(0))
    if name == "dncnn":
        torch.testing.assert_close(model(x), x)
    else:  # PyTorch's bicubic, as documented; a flat image stays flat at 4x the size
        expected = torch.nn.functional.interpolate(x, scale_factor=4, mode="bicubic", align_corners=False)
        torch.testing.assert_close(model(x), expected)
        torch.testing.assert_close(model(torch.full((1, 3, 5, 5), 0.3)), torch.full((1, 3, 20, 20), 0.3))
