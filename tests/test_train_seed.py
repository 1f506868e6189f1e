"""Seed image loading (modes, errors) and its Lanczos pyramid."""

from __future__ import annotations

import hashlib
import struct
import warnings
import zlib

import numpy as np
import pytest
import torch
from PIL import Image

from mdfloss.train.seed import (
    CoarseScaleWarning,
    SeedImage,
    check_seed_size,
    default_scale_count,
    largest_scale_count,
    load_seed,
    minimum_short_side,
    pyramid_sizes,
    seed_pyramid,
    shrink_to_max_side,
    warn_if_coarsest_is_small,
)


def smooth_rgb(width: int, height: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:height, 0:width]
    base = np.stack([np.sin(x / 5.0), np.cos(y / 7.0), np.sin((x + y) / 9.0)], axis=-1)
    return ((base * 0.4 + 0.5 + rng.normal(0, 0.03, base.shape)).clip(0, 1) * 255).round().astype(np.uint8)


def save(tmp_path, name, image: Image.Image):
    path = tmp_path / name
    image.save(path)
    return path


def png_16bit_rgb(array: np.ndarray) -> bytes:
    """A minimal 16-bit RGB PNG written by hand (Pillow cannot write one)."""
    height, width, _ = array.shape
    raw = b"".join(b"\x00" + array[row].astype(">u2").tobytes() for row in range(height))

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    header = struct.pack(">IIBBBBB", width, height, 16, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b"")


def test_rgb_seed_is_read_as_float_in_unit_range_with_its_sha256(tmp_path):
    array = smooth_rgb(20, 12)
    path = save(tmp_path, "rgb.png", Image.fromarray(array))
    seed = load_seed(path)
    assert seed.pixels.shape == (3, 12, 20) and seed.pixels.dtype == torch.float32
    assert torch.equal(seed.pixels, torch.from_numpy(array).permute(2, 0, 1).float() / 255)
    assert seed.sha256 == hashlib.sha256(path.read_bytes()).hexdigest()
    assert seed.describe() == {"name": "rgb.png", "sha256": seed.sha256, "size": [20, 12], "mode": "RGB"}


def test_grayscale_is_repeated_to_three_channels(tmp_path):
    gray = smooth_rgb(16, 12)[..., 0]
    seed = load_seed(save(tmp_path, "gray.png", Image.fromarray(gray, mode="L")))
    expected = torch.from_numpy(gray).float() / 255
    for channel in seed.pixels:
        assert torch.equal(channel, expected)


def test_16_bit_grayscale_keeps_its_precision(tmp_path):
    values = np.array([[0, 1000, 65535, 257 * 7]], dtype=np.uint16).repeat(3, axis=0)
    seed = load_seed(save(tmp_path, "g16.png", Image.fromarray(values)))
    assert seed.mode.startswith("I")
    expected = torch.tensor([0, 1000 / 65535, 1.0, 7 / 255], dtype=torch.float32)
    torch.testing.assert_close(seed.pixels[1, 0], expected, rtol=0, atol=1e-7)


def test_16_bit_rgb_png_warns_that_pillow_reduces_it_to_8_bits(tmp_path):
    array = np.full((4, 5, 3), 257 * 100, dtype=np.uint16)
    path = tmp_path / "rgb16.png"
    path.write_bytes(png_16bit_rgb(array))
    with pytest.warns(UserWarning, match="16-bit RGB"):
        seed = load_seed(path)
    torch.testing.assert_close(seed.pixels, torch.full((3, 4, 5), 100 / 255))


def test_opaque_alpha_is_dropped_and_transparency_is_refused(tmp_path):
    array = smooth_rgb(16, 12)
    rgba = np.concatenate([array, np.full((12, 16, 1), 255, np.uint8)], axis=-1)
    seed = load_seed(save(tmp_path, "opaque.png", Image.fromarray(rgba, mode="RGBA")))
    assert torch.equal(seed.pixels, torch.from_numpy(array).permute(2, 0, 1).float() / 255)
    rgba[3, 4, 3] = 0
    with pytest.raises(ValueError, match="transparent pixels"):
        load_seed(save(tmp_path, "transparent.png", Image.fromarray(rgba, mode="RGBA")))


def test_palette_image_becomes_rgb(tmp_path):
    image = Image.fromarray(smooth_rgb(16, 12)).convert("P")
    seed = load_seed(save(tmp_path, "palette.png", image))
    expected = torch.from_numpy(np.array(image.convert("RGB"))).permute(2, 0, 1).float() / 255
    assert torch.equal(seed.pixels, expected)


def test_unreadable_missing_and_float_files_give_clear_errors(tmp_path):
    bad = tmp_path / "not-an-image.png"
    bad.write_text("hello")
    with pytest.raises(ValueError, match="not-an-image.png"):
        load_seed(bad)
    with pytest.raises(FileNotFoundError, match="missing.png"):
        load_seed(tmp_path / "missing.png")
    floats = save(tmp_path, "float.tiff", Image.fromarray(np.ones((12, 12), np.float32)))
    with pytest.raises(ValueError, match="floating-point"):
        load_seed(floats)


def test_pyramid_sizes_divide_by_powers_of_two_and_round_down():
    assert pyramid_sizes(45, 100, 3) == [(11, 25), (22, 50), (45, 100)]
    assert pyramid_sizes(1440, 2560, 8)[0] == (11, 20)
    assert pyramid_sizes(1440, 2560, 8)[-1] == (1440, 2560)


def test_every_level_is_a_direct_lanczos_resize_of_the_original(tmp_path):
    array = smooth_rgb(100, 45)
    seed = load_seed(save(tmp_path, "s.png", Image.fromarray(array)))
    levels = seed_pyramid(seed, 3)
    assert [tuple(level.shape) for level in levels] == [(3, 11, 25), (3, 22, 50), (3, 45, 100)]
    assert torch.equal(levels[-1], seed.pixels)
    for level in levels[:-1]:
        height, width = level.shape[-2:]
        # Oracle: Pillow's own 8-bit Lanczos of the original (rounds to 1/255; fixed-point coefficients).
        pillow = np.array(Image.fromarray(array).resize((width, height), Image.Resampling.LANCZOS))
        reference = torch.from_numpy(pillow).permute(2, 0, 1).float() / 255
        assert (level - reference).abs().max() <= 1.5 / 255
        assert level.min() >= 0 and level.max() <= 1


def test_minimum_size_and_largest_scale_count_hand_computed():
    assert minimum_short_side(8) == 11 * 128 == 1408
    assert largest_scale_count(1408) == 8 and largest_scale_count(1407) == 7
    assert largest_scale_count(22) == 2 and largest_scale_count(21) == 1
    assert largest_scale_count(11) == 1 and largest_scale_count(10) == 0


def test_too_small_seed_names_the_minimum_size_and_the_largest_k(tmp_path):
    seed = load_seed(save(tmp_path, "small.png", Image.fromarray(smooth_rgb(64, 48))))
    check_seed_size(seed, 3)
    with pytest.raises(ValueError, match=r"at least 88 px.*allows is 3; use --scales 3"):
        check_seed_size(seed, 4)


def test_shrink_to_max_side_keeps_the_aspect_ratio(tmp_path):
    seed = load_seed(save(tmp_path, "s.png", Image.fromarray(smooth_rgb(100, 50))))
    shrunk = shrink_to_max_side(seed, 40)
    assert shrunk.size == (40, 20) and shrunk.sha256 == seed.sha256
    assert shrink_to_max_side(seed, 200) is seed
    with pytest.raises(ValueError, match="max_side"):
        shrink_to_max_side(seed, 5)


def test_a_coarsest_scale_under_25_px_warns_and_names_the_advised_scale_count():
    seed = SeedImage(torch.zeros(3, 1440, 2560), "wide.png", "0" * 64, "RGB")
    # 1440 / 2**7 = 11.25 -> an 11x20 px coarsest scale; 1440 / 2**5 = 45 >= 25 > 1440 / 2**6 = 22.5
    with pytest.warns(CoarseScaleWarning, match=r"coarsest scale of wide.png is 11x20 px.*--scales 6 keeps it"):
        warn_if_coarsest_is_small(seed, 8)
    assert largest_scale_count(1440, coarsest=25) == 6
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        warn_if_coarsest_is_small(seed, 6)  # 45x80 px: no warning


@pytest.mark.parametrize(("short", "expected"), [(3200, 8), (6400, 8), (1440, 6), (60, 2), (25, 1), (20, 1), (10, 0)])
def test_the_default_scale_count_keeps_the_coarsest_scale_at_25_px(short, expected):
    """short / 2**(k-1) >= 25 for the k chosen (at most 8); under 25 px, >= 11 px; none under 11 px."""
    seed = SeedImage(torch.zeros(3, short, short + 7), "s.png", "0" * 64, "RGB")
    assert default_scale_count(seed, 8) == expected
    if expected:
        coarsest = short // 2 ** (expected - 1)
        assert coarsest >= (25 if short >= 25 else 11)
        assert expected == 8 or short // 2**expected < (25 if short >= 25 else 11)
