"""Shared fixtures: devices, tiny pyramids with non-trivial BatchNorm statistics, shared data."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from mdfloss import DiscriminatorPyramid

SHARED = Path(__file__).resolve().parents[2] / "shared"

DEVICES = [
    "cpu",
    pytest.param("cuda", marks=pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device")),
]


def randomize_batchnorm(pyramid: DiscriminatorPyramid, generator: torch.Generator) -> DiscriminatorPyramid:
    """Give every BatchNorm random affine parameters and running statistics, as after training."""
    with torch.no_grad():
        for module in pyramid.modules():
            if isinstance(module, torch.nn.BatchNorm2d):
                n = module.num_features
                module.weight.copy_(1 + 0.3 * torch.randn(n, generator=generator))
                module.bias.copy_(0.2 * torch.randn(n, generator=generator))
                module.running_mean.copy_(0.1 * torch.randn(n, generator=generator))
                module.running_var.copy_(0.5 + torch.rand(n, generator=generator))
            elif isinstance(module, torch.nn.Conv2d):
                module.weight.copy_(0.2 * torch.randn(module.weight.shape, generator=generator))
                module.bias.copy_(0.1 * torch.randn(module.bias.shape, generator=generator))
    return pyramid


def make_pyramid(widths: list[int], seed: int = 0) -> DiscriminatorPyramid:
    return randomize_batchnorm(DiscriminatorPyramid(widths), torch.Generator().manual_seed(seed)).eval()


@pytest.fixture
def tiny_pyramid() -> DiscriminatorPyramid:
    return make_pyramid([4, 4, 6])


def shared_path(*parts: str) -> Path:
    """A path under the shared folder beside the repository; skips the test when it is absent."""
    path = SHARED.joinpath(*parts)
    if not path.exists():
        pytest.skip(f"shared data not found: {path}")
    return path


@pytest.fixture(autouse=True, scope="session")
def one_thread():
    """Tiny tensors on a shared 2-core machine: intra-op threads only add contention
    (pytest -n 2 runs one worker per core)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
