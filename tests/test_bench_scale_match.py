"""Scale-matched losses (``A@B``): the constant against a hand-computed gradient norm, Adam's indifference,
and the run that records it."""

from __future__ import annotations

import json

import pytest
import torch
from test_bench_repeats import bench_args, folders  # noqa: F401  (the fixture)

from mdfloss.bench.fit import build_optimizer
from mdfloss.bench.scale_match import mean_gradient_norm, scale_constant
from mdfloss.cli import main
from mdfloss.losses import WeightedSum, build_loss


class Scalar(torch.nn.Module):
    """f(x) = w * x with one parameter w."""

    def __init__(self, w: float) -> None:
        super().__init__()
        self.w = torch.nn.Parameter(torch.tensor(w, dtype=torch.float64))

    def forward(self, x):
        return self.w * x


def test_gradient_norm_and_constant_by_hand():
    # one batch x = [1, 2], y = [0, 0], w = 1:
    #   L2 = mean((w x)^2) = (1 + 4) / 2 w^2, dL2/dw = 5 w = 5
    #   L1 = mean(|w x|) = 3 / 2 w, dL1/dw = 1.5
    x = torch.tensor([1.0, 2.0], dtype=torch.float64)
    batches = [(x, torch.zeros(2, dtype=torch.float64))]
    l2 = lambda a, b: ((a - b) ** 2).mean()  # noqa: E731
    l1 = lambda a, b: (a - b).abs().mean()  # noqa: E731
    model = Scalar(1.0)
    assert mean_gradient_norm(l2, model, batches) == pytest.approx(5.0)
    assert mean_gradient_norm(l1, model, batches) == pytest.approx(1.5)
    assert scale_constant(l1, l2, model, batches) == pytest.approx(5.0 / 1.5)
    # a second batch x = [3, 0]: dL2/dw = 9, dL1/dw = 1.5; the means of the norms: 7 and 1.5
    batches.append((torch.tensor([3.0, 0.0], dtype=torch.float64), torch.zeros(2, dtype=torch.float64)))
    assert scale_constant(l1, l2, model, batches) == pytest.approx(7.0 / 1.5)
    assert model.w.grad is None  # the model itself is left untouched


def test_a_loss_without_gradient_cannot_be_scaled():
    batches = [(torch.zeros(2, dtype=torch.float64), torch.zeros(2, dtype=torch.float64))]
    with pytest.raises(ValueError, match="zero gradient at initialisation"):
        scale_constant(lambda a, b: ((a - b) ** 2).mean(), lambda a, b: (a - b).abs().mean(), Scalar(1.0), batches)


def train(loss_fn, optimizer_options, steps=20):
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3, padding=1), torch.nn.ReLU(), torch.nn.Conv2d(4, 3, 3, padding=1))
    optimizer = build_optimizer(optimizer_options, model.parameters())
    generator = torch.Generator().manual_seed(1)
    for _ in range(steps):
        inputs = torch.rand(2, 3, 8, 8, generator=generator)
        loss = loss_fn(model(inputs), inputs)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    return torch.cat([p.detach().flatten() for p in model.parameters()])


def test_under_adam_a_constant_factor_changes_almost_nothing_under_sgd_everything():
    l2 = build_loss("l2")
    scaled = WeightedSum([l2], [1000.0], ["l2"])
    adam = {"type": "adam", "lr": 1e-3, "eps": 1e-12}
    assert torch.allclose(train(l2, adam), train(scaled, adam), rtol=1e-3, atol=1e-6)
    sgd = {"type": "sgd", "lr": 1e-4}
    assert not torch.allclose(train(l2, sgd), train(scaled, sgd), rtol=1e-2, atol=1e-4)


def test_a_scale_matched_run_records_its_constant(folders, tmp_path):  # noqa: F811
    out = tmp_path / "scaled"
    args = bench_args(folders, out, "--repeats", "1", "--mdf", str(folders / "draw0.safetensors"),
                      "--losses", "l2,l2@mdf")
    assert main(args) == 0
    run = json.loads((out / "manifest.json").read_text())["experiments"]["denoise-dncnn"]["runs"]["l2@mdf"]
    saved = json.loads((out / "denoise-dncnn" / "l2_mdf" / "loss_scale.json").read_text())
    assert run["loss_scale"] == saved["constant"] > 0 and run["scale_to"].endswith("draw0.safetensors")
    assert run["spec"] == "l2"
    assert "(scaled to mdf:" in (out / "report.md").read_text()
