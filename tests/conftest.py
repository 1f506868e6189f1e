"""Shared test harness: devices, dtypes and tolerances; tiny pyramids; the shared data.

* ``device`` and ``dtype`` fixtures: a test that takes them runs on every device of
  ``--device`` (default ``cpu,cuda``; CUDA cases skip cleanly without a GPU) and every dtype of
  ``--dtype`` (default all four) that its ``@pytest.mark.dtypes(...)`` allows (default: all).
* :func:`assert_close`: one tolerance table (:data:`TOLERANCES`) for every such comparison.
* :func:`shared_path`: ``../shared`` data; skips without it, except under ``CI=true`` (or
  ``MDFLOSS_REQUIRE_SHARED=1``), where a missing oracle must fail, not pass silently.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch

from mdfloss import DiscriminatorPyramid

SHARED = Path(__file__).resolve().parents[2] / "shared"
DTYPES = {"float64": torch.float64, "float32": torch.float32, "float16": torch.float16, "bfloat16": torch.bfloat16}
TOLERANCES = {
    torch.float64: {"rtol": 1e-7, "atol": 1e-9},
    torch.float32: {"rtol": 1e-4, "atol": 1e-6},
    torch.float16: {"rtol": 1e-2, "atol": 1e-3},
    torch.bfloat16: {"rtol": 5e-2, "atol": 1e-2},
}
"""(rtol, atol) of a value computed in a dtype against an exact (float64) oracle."""


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption("--device", default="cpu,cuda", help="devices of the device fixture, comma-separated")
    parser.addoption("--dtype", default=",".join(DTYPES), help="dtypes of the dtype fixture, comma-separated")


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "dtypes(*dtypes): the dtypes a test taking the dtype fixture supports")


def _parametrized_by_the_test(metafunc: pytest.Metafunc, name: str) -> bool:
    for marker in metafunc.definition.iter_markers("parametrize"):
        names = marker.args[0]
        if name in ([n.strip() for n in names.split(",")] if isinstance(names, str) else names):
            return True
    return False


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """A test's own ``@pytest.mark.parametrize("dtype", ...)`` (or device) wins over the options."""
    if "device" in metafunc.fixturenames and not _parametrized_by_the_test(metafunc, "device"):
        devices = [d.strip() for d in metafunc.config.getoption("--device").split(",") if d.strip()]
        no_cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device")
        metafunc.parametrize("device", [pytest.param(d, marks=no_cuda) if d.startswith("cuda") else d
                                        for d in devices])
    if "dtype" in metafunc.fixturenames and not _parametrized_by_the_test(metafunc, "dtype"):
        chosen = [DTYPES[name.strip()] for name in metafunc.config.getoption("--dtype").split(",") if name.strip()]
        marker = metafunc.definition.get_closest_marker("dtypes")
        allowed = marker.args if marker else tuple(DTYPES.values())
        dtypes = [dtype for dtype in chosen if dtype in allowed]
        metafunc.parametrize("dtype", dtypes, ids=[str(d).removeprefix("torch.") for d in dtypes])


def assert_close(actual: torch.Tensor, expected: torch.Tensor, *, dtype: torch.dtype | None = None,
                 factor: float = 1.0) -> None:
    """``actual`` (computed in ``dtype``, by default its own) against an exact ``expected``, on the CPU
    in float64, with :data:`TOLERANCES` of that dtype times ``factor``."""
    tolerance = TOLERANCES[dtype or actual.dtype]
    torch.testing.assert_close(actual.detach().cpu().double(), expected.detach().cpu().double(),
                               rtol=tolerance["rtol"] * factor, atol=tolerance["atol"] * factor)


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


def shared_required() -> bool:
    return os.environ.get("CI", "").lower() == "true" or os.environ.get("MDFLOSS_REQUIRE_SHARED", "") == "1"


def shared_path(*parts: str) -> Path:
    """A path under the shared folder beside the repository; skips the test when it is absent,
    and fails instead under CI (the authors'-loss oracles must not turn into silent skips)."""
    path = SHARED.joinpath(*parts)
    if not path.exists():
        message = f"shared data not found: {path}"
        if shared_required():
            pytest.fail(f"{message} (CI=true or MDFLOSS_REQUIRE_SHARED=1: the shared data is required)")
        pytest.skip(message)
    return path


@pytest.fixture(autouse=True, scope="session")
def one_thread():
    """Tiny tensors on a shared 2-core machine: intra-op threads only add contention
    (pytest -n 2 runs one worker per core)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
