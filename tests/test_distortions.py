"""Task distortions: statistics of each built-in one, the registry's configuration, plugins."""

from __future__ import annotations

import io
import textwrap

import numpy as np
import pytest
import torch
from PIL import Image

from mdfloss.train.distortions import (
    REGISTRY,
    GaussianBlur,
    GaussianNoise,
    JPEGCompression,
    NoDistortion,
    make_distortion,
    parse_params,
)


def images(count=4, size=48, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.rand(count, 3, size, size, generator=g) * 0.6 + 0.2


def rng(seed=0):
    return torch.Generator().manual_seed(seed)


def test_registry_has_the_paper_tasks_with_the_paper_ranges():
    assert set(REGISTRY) == {"sisr", "denoise", "jpeg", "blur"}
    assert make_distortion("sisr").params == {}
    assert make_distortion("denoise").params == {"sigma_min": 0.0, "sigma_max": 55.0}
    assert make_distortion("jpeg").params == {"quality_min": 7, "quality_max": 10}


def test_sisr_leaves_the_batch_unchanged():
    batch = images()
    assert torch.equal(NoDistortion()(batch, rng()), batch)


def test_noise_of_fixed_sigma_has_that_standard_deviation():
    batch = torch.full((2, 3, 128, 128), 0.5)
    out = GaussianNoise(sigma_min=25.0, sigma_max=25.0)(batch, rng())
    residual = out - batch
    assert abs(residual.std().item() - 25 / 255) < 0.02 * 25 / 255
    assert abs(residual.mean().item()) < 1e-3


def test_noise_sigma_is_drawn_per_image_within_the_range():
    batch = torch.full((200, 3, 32, 32), 0.5)
    residual = GaussianNoise(sigma_min=10.0, sigma_max=30.0)(batch, rng()) - batch
    sigmas = residual.flatten(1).std(dim=1) * 255
    assert sigmas.min() > 10 * 0.9 and sigmas.max() < 30 * 1.1
    assert abs(sigmas.mean().item() - 20) < 1.0  # mean of U[10, 30]
    assert sigmas.std() > 4  # U[10, 30] has std 5.8: the sigmas really vary


def test_noise_is_reproducible_from_the_generator():
    batch = images()
    noise = GaussianNoise()
    assert torch.equal(noise(batch, rng(3)), noise(batch, rng(3)))
    assert not torch.equal(noise(batch, rng(3)), noise(batch, rng(4)))


def pillow_jpeg(image: torch.Tensor, quality: int) -> torch.Tensor:
    """Oracle: Pillow's encode/decode of the 8-bit image, written out independently."""
    array = (image.permute(1, 2, 0).numpy() * 255).round().astype(np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(array).save(buffer, format="JPEG", quality=quality)
    decoded = np.array(Image.open(io.BytesIO(buffer.getvalue())).convert("RGB"))
    return torch.from_numpy(decoded).permute(2, 0, 1).float() / 255


def test_jpeg_equals_pillows_own_roundtrip_at_that_quality():
    batch = images(count=2)
    out = JPEGCompression(quality_min=8, quality_max=8)(batch, rng())
    for image, result in zip(batch, out):
        assert torch.equal(result, pillow_jpeg(image, 8))
        assert (result - image).abs().mean() > 0.01


def test_jpeg_quality_is_drawn_from_the_whole_integer_range():
    batch = images(count=1).expand(40, -1, -1, -1)
    out = JPEGCompression()(batch, rng())
    candidates = {q: pillow_jpeg(batch[0], q) for q in range(7, 11)}
    used = set()
    for result in out:
        matches = [q for q, reference in candidates.items() if torch.equal(result, reference)]
        assert len(matches) == 1
        used.add(matches[0])
    assert used == {7, 8, 9, 10}


def test_blur_matches_scipy_gaussian_filter():
    scipy_ndimage = pytest.importorskip("scipy.ndimage")
    batch = images(count=2, size=40).double()
    out = GaussianBlur(sigma_min=1.5, sigma_max=1.5)(batch, rng())
    # torch 'reflect' (no edge repeat) is scipy 'mirror'; radius ceil(3 sigma) = int(3 sigma + 0.5) here.
    reference = scipy_ndimage.gaussian_filter(batch.numpy(), sigma=(0, 0, 1.5, 1.5), mode="mirror", truncate=3.0)
    torch.testing.assert_close(out, torch.from_numpy(reference), rtol=0, atol=1e-10)


def test_blur_preserves_the_mean_and_smooths():
    batch = images(count=3)
    out = make_distortion("blur")(batch, rng())
    torch.testing.assert_close(out.mean(dim=(2, 3)), batch.mean(dim=(2, 3)), rtol=0, atol=5e-3)
    assert out.diff(dim=-1).abs().mean() < 0.7 * batch.diff(dim=-1).abs().mean()


def test_params_configure_the_registered_distortions_and_are_checked():
    noise = make_distortion("denoise", {"sigma_max": "30"})
    assert noise.params == {"sigma_min": 0.0, "sigma_max": 30.0}
    assert make_distortion("denoise", {"sigma_max": 30}).params["sigma_max"] == 30.0
    with pytest.raises(ValueError, match=r"takes \['sigma_max', 'sigma_min'\]"):
        make_distortion("denoise", {"sigma": 3})
    with pytest.raises(ValueError, match="min <= max"):
        make_distortion("jpeg", {"quality_min": 20, "quality_max": 10})
    with pytest.raises(ValueError, match="quality_min"):
        make_distortion("jpeg", {"quality_min": 0})
    with pytest.raises(ValueError, match="sigma_max"):
        make_distortion("blur", {"sigma_max": float("nan")})


def test_parse_params_reads_json_values():
    assert parse_params(["sigma_max=30", "name=abc", "flag=true"]) == {"sigma_max": 30, "name": "abc", "flag": True}
    with pytest.raises(ValueError, match="KEY=VALUE"):
        parse_params(["novalue"])


@pytest.fixture
def plugin_module(tmp_path, monkeypatch):
    (tmp_path / "my_degradations.py").write_text(textwrap.dedent("""
        import numpy as np
        import torch

        def darken(batch, generator, factor=0.5):
            return batch * factor

        def noisy(batch, generator):
            return batch + 0.1 * torch.randn(batch.shape, generator=generator)

        def wrong_shape(batch, generator):
            return batch[..., 1:]

        def wrong_type(batch, generator):
            return batch.numpy()

        def wrong_dtype(batch, generator):
            return batch.double()

        def not_finite(batch, generator):
            return batch / 0

        NOT_CALLABLE = 3
    """))
    monkeypatch.syspath_prepend(str(tmp_path))
    return "my_degradations"


def test_plugin_is_loaded_called_with_its_params_and_named(plugin_module):
    darken = make_distortion(f"{plugin_module}:darken", {"factor": 0.25})
    assert darken.name == "my_degradations:darken" and darken.params == {"factor": 0.25}
    batch = images()
    torch.testing.assert_close(darken(batch, rng()), batch * 0.25)
    noisy = make_distortion(f"{plugin_module}:noisy")
    assert torch.equal(noisy(batch, rng(1)), noisy(batch, rng(1)))


@pytest.mark.parametrize(
    ("function", "error", "message"),
    [
        ("wrong_shape", ValueError, "shape"),
        ("wrong_type", TypeError, "torch.Tensor"),
        ("wrong_dtype", TypeError, "dtype"),
        ("not_finite", ValueError, "NaN or Inf"),
    ],
)
def test_plugin_results_are_validated(plugin_module, function, error, message):
    plugin = make_distortion(f"{plugin_module}:{function}")
    with pytest.raises(error, match=message):
        plugin(images(), rng())


def test_bad_plugin_specs_give_clear_errors(plugin_module):
    with pytest.raises(ValueError, match="registered name"):
        make_distortion("gaussian")
    with pytest.raises(ValueError, match="cannot import module 'no_such_module_xyz'"):
        make_distortion("no_such_module_xyz:f")
    with pytest.raises(ValueError, match="no attribute 'missing'"):
        make_distortion(f"{plugin_module}:missing")
    with pytest.raises(TypeError, match="expected a callable"):
        make_distortion(f"{plugin_module}:NOT_CALLABLE")
    with pytest.raises(ValueError, match="JSON-serialisable"):
        make_distortion(f"{plugin_module}:darken", {"factor": object()})
    with pytest.raises(TypeError, match="distortion"):
        make_distortion(42)  # type: ignore[arg-type]
