"""Load piq's metric modules without running ``piq/__init__.py`` (which imports torchvision).

``import piq`` fails beside the CPU torch build used here ("operator torchvision::nms does not
exist"), but ``piq/haarpsi.py``, ``piq/dss.py`` and ``piq/mdsi.py`` and the subpackages they use
(``piq.utils``, ``piq.functional``) import only torch and numpy. A stub module named ``piq``
with the installed package's ``__path__`` lets ``importlib`` import exactly those submodules.
The stub stays in ``sys.modules`` (the loaded submodules refer to it); a real ``piq`` that is
already imported is used as it is. No test of this project imports ``piq`` itself.
"""

from __future__ import annotations

import importlib
import importlib.util
import sys
import types
from pathlib import Path


def load_piq_module(name: str) -> types.ModuleType | None:
    """``piq.<name>`` (e.g. "haarpsi"), or None when piq is not installed."""
    if "piq" in sys.modules and getattr(sys.modules["piq"], "__file__", None):
        return importlib.import_module(f"piq.{name}")  # the real package is loaded already
    spec = importlib.util.find_spec("piq") if "piq" not in sys.modules else None
    if spec is None and "piq" not in sys.modules:
        return None
    if "piq" not in sys.modules:
        assert spec is not None and spec.submodule_search_locations is not None
        stub = types.ModuleType("piq")
        stub.__path__ = list(spec.submodule_search_locations)  # type: ignore[attr-defined]
        stub.__package__ = "piq"
        stub.__spec__ = importlib.util.spec_from_loader("piq", loader=None, is_package=True)
        stub.__spec__.submodule_search_locations = stub.__path__  # type: ignore[union-attr]
        sys.modules["piq"] = stub
    return importlib.import_module(f"piq.{name}")


def piq_version() -> str | None:
    spec = importlib.util.find_spec("piq") if "piq" not in sys.modules else None
    location = spec.origin if spec else getattr(sys.modules.get("piq"), "__path__", [None])[0]
    if location is None:
        return None
    init = Path(location) if str(location).endswith(".py") else Path(location) / "__init__.py"
    for line in init.read_text().splitlines():
        if line.startswith("__version__"):
            return line.split("=")[1].strip().strip("\"'")
    return None


# ----------------------------------------------------------------------------------------------
# Shared cases for tests/test_metrics_*.py: natural photos, distortions, and a suite of property,
# dtype, device and bad-input tests that each metric's test file runs through a subclass.

import contextlib  # noqa: E402
import io  # noqa: E402
import re  # noqa: E402
from collections.abc import Callable, Iterator  # noqa: E402

import pytest  # noqa: E402
import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402
from conftest import shared_path  # noqa: E402

CUDA = pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device")


def photo(name: str, size: tuple[int, int] | None = None) -> torch.Tensor:
    """(1, 3, H, W) float64 in [0, 1], cropped at the top left to ``size``; skips without the photos
    or PIL, and fails without the photos under CI (:func:`conftest.shared_path`)."""
    path = shared_path("data", "photos", "val", name)
    image_module = pytest.importorskip("PIL.Image", reason="Pillow is needed to read the photos")
    with image_module.open(path) as im:
        data = torch.frombuffer(bytearray(im.convert("RGB").tobytes()), dtype=torch.uint8)
        t = data.reshape(im.height, im.width, 3).permute(2, 0, 1)[None].double() / 255
    return t if size is None else t[..., : size[0], : size[1]].contiguous()


def jpeg(x: torch.Tensor, quality: int) -> torch.Tensor:
    image_module = pytest.importorskip("PIL.Image")
    out = []
    for img in x:
        arr = (img.permute(1, 2, 0) * 255).round().to(torch.uint8).numpy()
        buf = io.BytesIO()
        image_module.fromarray(arr).save(buf, format="JPEG", quality=quality)
        buf.seek(0)
        with image_module.open(buf) as im:
            data = torch.frombuffer(bytearray(im.convert("RGB").tobytes()), dtype=torch.uint8)
            out.append(data.reshape(im.height, im.width, 3).permute(2, 0, 1).to(x.dtype) / 255)
    return torch.stack(out)


def noisy(x: torch.Tensor, sigma: float, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return (x + sigma * torch.randn(x.shape, generator=g, dtype=torch.float64).to(x.dtype)).clamp(0, 1)


def blurred(x: torch.Tensor, k: int = 5) -> torch.Tensor:
    c = x.shape[1]
    w = torch.full((c, 1, k, k), 1.0 / k**2, dtype=x.dtype)
    return F.conv2d(F.pad(x, (k // 2,) * 4, mode="replicate"), w, groups=c)


def distortions(x: torch.Tensor) -> dict[str, torch.Tensor]:
    shift = torch.tensor([0.92, 1.0, 1.05], dtype=x.dtype).view(1, 3, 1, 1)
    return {
        "noise": noisy(x, 0.05),
        "blur": blurred(x),
        "jpeg": jpeg(x, 20),
        "colour": (x * shift).clamp(0, 1),
    }


def random_pair(shape: tuple[int, ...], dtype: torch.dtype, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """A smooth-ish random image (so the metrics are far from their floor) and a noisy copy."""
    g = torch.Generator().manual_seed(seed)
    n, c, h, w = shape
    low = torch.rand(n, c, (h + 3) // 4, (w + 3) // 4, generator=g, dtype=torch.float64)
    base = F.interpolate(low, size=(h, w), mode="bilinear", align_corners=False)
    x = (0.7 * base + 0.3 * torch.rand(shape, generator=g, dtype=torch.float64)).clamp(0, 1)
    y = (x + 0.08 * torch.randn(shape, generator=g, dtype=torch.float64)).clamp(0, 1)
    return x.to(dtype), y.to(dtype)


@contextlib.contextmanager
def default_dtype(dtype: torch.dtype) -> Iterator[None]:
    """piq's dss allocates its score matrix with the default dtype; let float64 cases run in float64."""
    old = torch.get_default_dtype()
    torch.set_default_dtype(dtype if dtype in (torch.float32, torch.float64) else torch.float32)
    try:
        yield
    finally:
        torch.set_default_dtype(old)


class MetricSuite:
    """Tests every metric must pass; a subclass sets the class attributes below."""

    metric: Callable[..., torch.Tensor]
    module: types.ModuleType
    piq_module: str
    channels: tuple[int, ...] = (1, 3)
    symmetric: bool = True
    min_size: int = 16
    sizes: tuple[tuple[int, int, int, int], ...] = ()
    gradcheck_shape: tuple[int, int, int, int] = (1, 3, 16, 16)
    tol64: float = 1e-12  # float64 inputs against piq in float64
    tol32: float = 1e-6  # float32 inputs against piq in float64 on the same values
    tol32_piq32: float = 2e-5  # float32 against piq in float32 (piq's own float32 rounding dominates)
    tol64_full_photo: float = 1e-13  # float64 on two full 768x480 photos

    # piq's function with the same argument order and meaning as ours
    def piq(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        module = load_piq_module(self.piq_module)
        if module is None:
            pytest.skip("piq is not installed (pip install piq, or the [test] extra)")
        with default_dtype(x.dtype):
            return getattr(module, self.piq_module)(x, y, reduction="none")

    @property
    def perfect(self) -> float:
        return self.module.PERFECT_VALUE

    def better(self, a: float, b: float) -> bool:
        return a > b if self.module.HIGHER_IS_BETTER else a < b

    # --- oracle ---------------------------------------------------------------------------
    def check_oracle(self, x: torch.Tensor, y: torch.Tensor, label: str) -> None:
        """float64 and float32 inputs; float32 against piq in float64 and in float32."""
        x64, y64 = x.double(), y.double()
        ours64 = self.metric(x64, y64, reduction="none")
        assert ours64.shape == (x.shape[0],) and ours64.dtype == torch.float64
        torch.testing.assert_close(ours64, self.piq(x64, y64), rtol=0, atol=self.tol64, msg=f"{label} float64")
        x32, y32 = x.float(), y.float()
        ours32 = self.metric(x32, y32, reduction="none")
        assert ours32.dtype == torch.float32
        ref = self.piq(x32.double(), y32.double())
        torch.testing.assert_close(ours32.double(), ref, rtol=0, atol=self.tol32, msg=f"{label} float32 vs piq float64")
        ref32 = self.piq(x32, y32).float()
        torch.testing.assert_close(ours32, ref32, rtol=0, atol=self.tol32_piq32, msg=f"{label} float32 vs piq float32")

    def test_oracle_random(self) -> None:
        for i, shape in enumerate(self.sizes):
            x, y = random_pair(shape, torch.float64, seed=i)
            self.check_oracle(x, y, str(shape))

    def test_oracle_photos(self) -> None:
        x = photo("LadyBird.png", (136, 200))
        for name, y in distortions(x).items():
            self.check_oracle(y, x, name)

    def test_oracle_full_photo_batch(self) -> None:
        # two full 768x480 photos in one batch (MDSI downsamples by 2 at this size)
        x = torch.cat([photo("Path.png"), photo("TwoWings.png")])
        y = jpeg(x, 30)
        torch.testing.assert_close(self.metric(y, x, reduction="none"), self.piq(y, x), rtol=0, atol=self.tol64_full_photo)

    # --- properties without piq -------------------------------------------------------------
    @pytest.mark.parametrize("dtype", [torch.float64, torch.float32, torch.float16, torch.bfloat16])
    def test_identical_images_give_the_perfect_value_exactly(self, dtype: torch.dtype) -> None:
        for c in self.channels:
            x, _ = random_pair((2, c, 41, 37), torch.float64, seed=3)
            x = x.to(dtype)
            value = self.metric(x, x.clone(), reduction="none")
            assert value.tolist() == [self.perfect, self.perfect], (c, dtype, value)

    def test_symmetry(self) -> None:
        x, y = random_pair((2, self.channels[-1], 40, 48), torch.float64, seed=4)
        forward, backward = self.metric(x, y, reduction="none"), self.metric(y, x, reduction="none")
        if self.symmetric:
            torch.testing.assert_close(forward, backward, rtol=0, atol=1e-15)
        else:
            assert (forward - backward).abs().min() > 1e-6

    def test_monotone_in_noise(self) -> None:
        x, _ = random_pair((1, self.channels[-1], 64, 80), torch.float64, seed=5)
        values = [self.metric(noisy(x, s, seed=1), x).item() for s in (0.01, 0.03, 0.06, 0.12, 0.25)]
        assert all(self.better(a, b) for a, b in zip(values, values[1:])), values
        assert all(self.better(self.perfect, v) for v in values), values

    def test_reductions(self) -> None:
        x, y = random_pair((3, self.channels[-1], 40, 40), torch.float64, seed=6)
        none = self.metric(x, y, reduction="none")
        assert none.shape == (3,)
        torch.testing.assert_close(self.metric(x, y), none.mean())
        torch.testing.assert_close(self.metric(x, y, reduction="sum"), none.sum())
        assert self.metric(x, y).shape == ()
        # each image on its own gives the same value as in the batch
        torch.testing.assert_close(self.metric(x[1:2], y[1:2], reduction="none"), none[1:2])

    def test_data_range(self) -> None:
        x, y = random_pair((1, self.channels[-1], 40, 40), torch.float64, seed=8)
        torch.testing.assert_close(self.metric(x * 255, y * 255, data_range=255), self.metric(x, y), rtol=0, atol=1e-12)

    def test_gradcheck(self) -> None:
        x, y = random_pair(self.gradcheck_shape, torch.float64, seed=9)
        x.requires_grad_(True)
        assert torch.autograd.gradcheck(lambda a: self.metric(a, y), (x,), eps=1e-6, atol=1e-5, fast_mode=True)

    def test_gradient_is_finite_at_a_perfect_match(self) -> None:
        x, _ = random_pair(self.gradcheck_shape, torch.float64, seed=10)
        x.requires_grad_(True)
        self.metric(x, x.detach().clone()).backward()
        assert torch.isfinite(x.grad).all()

    @pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
    def test_half_inputs_are_computed_in_float32(self, dtype: torch.dtype) -> None:
        x, y = random_pair((2, self.channels[-1], 40, 48), torch.float64, seed=11)
        xh, yh = x.to(dtype), y.to(dtype)
        value = self.metric(xh, yh, reduction="none")
        assert value.dtype == torch.float32
        torch.testing.assert_close(value.double(), self.metric(xh.double(), yh.double(), reduction="none"), rtol=0, atol=2e-6)

    def test_autocast_does_not_lower_the_precision(self) -> None:
        x, y = random_pair((1, self.channels[-1], 40, 48), torch.float32, seed=12)
        with torch.autocast("cpu", dtype=torch.bfloat16):
            inside = self.metric(x, y)
        assert inside.dtype == torch.float32
        torch.testing.assert_close(inside, self.metric(x, y))

    @CUDA
    def test_cuda_matches_cpu(self) -> None:
        x, y = random_pair((2, self.channels[-1], 64, 72), torch.float64, seed=13)
        on_gpu = self.metric(x.cuda(), y.cuda(), reduction="none")
        assert on_gpu.device.type == "cuda"
        torch.testing.assert_close(on_gpu.cpu(), self.metric(x, y, reduction="none"), rtol=0, atol=1e-10)
        half = self.metric(x.cuda().half(), y.cuda().half(), reduction="none")
        assert half.dtype == torch.float32 and torch.isfinite(half).all()

    # --- bad inputs -------------------------------------------------------------------------
    def bad_inputs(self) -> list[tuple[str, tuple, dict, type, str]]:
        c = self.channels[-1]
        s = max(self.min_size, 40)
        good = torch.rand(1, c, s, s)
        nan = good.clone()
        nan[0, 0, 1, 1] = float("nan")
        inf = good.clone()
        inf[0, 0, 2, 2] = float("inf")
        wrong_c = 2
        return [
            ("not a tensor", (good.numpy(), good), {}, TypeError, r"^x: expected a torch\.Tensor, got ndarray"),
            ("integer dtype", ((good * 255).to(torch.uint8), good), {}, TypeError, r"^x: expected a floating-point tensor.*torch\.uint8"),
            ("3-D", (good[0], good[0]), {}, ValueError, r"^x: expected a 4-D tensor \(N, C, H, W\), got shape \(3, "),
            ("5-D", (good[None], good[None]), {}, ValueError, r"^x: expected a 4-D tensor .* got shape \(1, 1, "),
            ("channels", (torch.rand(1, wrong_c, s, s), torch.rand(1, wrong_c, s, s)), {}, ValueError, r"^x: expected .*channel.*got shape \(1, %d," % wrong_c),
            ("empty batch", (good[:0], good[:0]), {}, ValueError, r"^x: expected a non-empty batch"),
            ("too small", (torch.rand(1, c, self.min_size - 1, s), torch.rand(1, c, self.min_size - 1, s)), {}, ValueError, r"^x: expected height and width of at least %d px" % self.min_size),
            ("shape mismatch", (good, torch.rand(1, c, s, s + 8)), {}, ValueError, r"^x and y: expected the same shape"),
            ("y not a tensor", (good, [1.0]), {}, TypeError, r"^y: expected a torch\.Tensor, got list"),
            ("y integer", (good, torch.zeros(1, c, s, s, dtype=torch.int64)), {}, TypeError, r"^y: expected a floating-point tensor"),
            ("NaN", (nan, good), {}, ValueError, r"^x: expected finite values, got NaN or Inf"),
            ("Inf in y", (good, inf), {}, ValueError, r"^y: expected finite values, got NaN or Inf"),
            ("above range", (good * 2 + 0.01, good), {}, ValueError, r"^x: expected values in \[0, data_range=1\], got min .* and max 2\.0"),
            ("negative", (good, good - 0.5), {}, ValueError, r"^y: expected values in \[0, data_range=1\], got min -"),
            ("range vs data_range", (good * 255, good * 255), {}, ValueError, r"^x: expected values in \[0, data_range=1\]"),
            ("data_range 0", (good, good), {"data_range": 0}, ValueError, r"^data_range: expected a positive number, got 0"),
            ("data_range bool", (good, good), {"data_range": True}, ValueError, r"^data_range: expected a positive number"),
            ("reduction", (good, good), {"reduction": "avg"}, ValueError, r"^reduction: expected one of \('mean', 'sum', 'none'\), got 'avg'"),
        ]

    def test_bad_inputs(self) -> None:
        for label, args, kwargs, error, pattern in self.bad_inputs():
            with pytest.raises(error) as info:
                self.metric(*args, **kwargs)
            assert re.search(pattern, str(info.value)), (label, str(info.value))

    @CUDA
    def test_device_mismatch(self) -> None:
        good = torch.rand(1, self.channels[-1], 40, 40)
        with pytest.raises(ValueError, match=r"^x and y: expected the same device"):
            self.metric(good, good.cuda())
