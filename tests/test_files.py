"""mdfloss._files.read_rgb: the one image reader (grey, alpha, palette, streams)."""

from __future__ import annotations

import io

import numpy as np
from PIL import Image

from mdfloss._files import read_rgb


def test_rgb_is_read_as_it_is(tmp_path):
    pixels = np.random.default_rng(0).integers(0, 256, (5, 7, 3), dtype=np.uint8)
    Image.fromarray(pixels).save(tmp_path / "rgb.png")
    read = read_rgb(tmp_path / "rgb.png")
    assert read.dtype == np.uint8 and read.shape == (5, 7, 3) and np.array_equal(read, pixels)


def test_grey_is_repeated_and_alpha_dropped(tmp_path):
    grey = np.arange(12, dtype=np.uint8).reshape(3, 4) * 20
    Image.fromarray(grey, mode="L").save(tmp_path / "grey.png")
    assert np.array_equal(read_rgb(tmp_path / "grey.png"), np.repeat(grey[..., None], 3, axis=-1))
    rgba = np.dstack([np.full((3, 4, 3), 200, np.uint8), np.zeros((3, 4), np.uint8)])
    Image.fromarray(rgba, mode="RGBA").save(tmp_path / "rgba.png")
    assert np.array_equal(read_rgb(tmp_path / "rgba.png"), rgba[..., :3])


def test_a_palette_image_from_a_stream_is_expanded():
    image = Image.new("P", (2, 1))
    image.putpalette([10, 20, 30, 40, 50, 60] + [0] * 762)
    image.putpixel((1, 0), 1)
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    buffer.seek(0)
    assert read_rgb(buffer).tolist() == [[[10, 20, 30], [40, 50, 60]]]
