"""scripts/build_test_set.py: the crop rule and the manifest on synthetic images; the real set when its packages are there."""

from __future__ import annotations

import hashlib
import importlib.util
import json
import sys
from pathlib import Path

import numpy as np
import pytest

SCRIPT = Path(__file__).resolve().parents[1] / "scripts" / "build_test_set.py"


@pytest.fixture(scope="module")
def bts():
    spec = importlib.util.spec_from_file_location("build_test_set", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    sys.modules["build_test_set"] = module  # dataclasses look the module up
    spec.loader.exec_module(module)
    return module


def smooth_with_texture(h: int, w: int, top: int, left: int, size: int) -> np.ndarray:
    """A flat-ish gradient with a noisy square of ``size`` px at (top, left)."""
    y, x = np.mgrid[0:h, 0:w]
    image = np.stack([(x * 255 // w), (y * 255 // h), np.full_like(x, 128)], axis=-1).astype(np.uint8)
    rng = np.random.default_rng(0)
    image[top: top + size, left: left + size] = rng.integers(0, 256, (size, size, 3), dtype=np.uint8)
    return image


def test_crop_finds_the_detailed_region(bts):
    image = smooth_with_texture(300, 400, 64, 128, 64)
    top, left, energy = bts.choose_crop(image, 64)
    assert (top, left) == (64, 128) and energy > 0


def test_crop_grid_includes_the_far_edge_and_is_deterministic(bts):
    assert bts.grid_positions(300, 64, 16) == list(range(0, 237, 16)) + [236]
    assert bts.grid_positions(64, 64, 16) == [0]
    image = smooth_with_texture(300, 400, 236, 336, 64)  # flush with the bottom-right corner
    assert bts.choose_crop(image, 64)[:2] == (236, 336)
    flat = np.full((128, 128, 3), 77, np.uint8)
    assert bts.choose_crop(flat, 64)[:2] == (0, 0)  # ties go to the smallest (top, left)


def test_crop_too_small_image_is_a_clear_error(bts):
    with pytest.raises(bts.BuildError, match="smaller than the 64 px crop"):
        bts.choose_crop(np.zeros((32, 80, 3), np.uint8), 64)


def test_bicubic_psnr_detail_scores_lower_than_smooth(bts):
    smooth = smooth_with_texture(64, 64, 0, 0, 0)
    noisy = smooth_with_texture(64, 64, 0, 0, 64)
    assert bts.bicubic_x4_psnr(smooth) > 35 > 15 > bts.bicubic_x4_psnr(noisy)


def test_build_writes_pngs_manifest_and_licences(bts, tmp_path, monkeypatch):
    from PIL import Image

    src = tmp_path / "src.png"
    Image.fromarray(smooth_with_texture(200, 240, 96, 120, 64)).save(src)
    sources = (bts.Source("synthetic", "deb", "no-such-package", "no-such-package", str(src),
                          "CC0-1.0", "made by the test", reduce=2),)
    monkeypatch.setattr(bts, "deb_version", lambda package: "1.0-test")
    out = tmp_path / "out"
    entries, mean = bts.build(out, 64, sources)
    manifest = json.loads((out / "MANIFEST.json").read_text())
    (entry,) = manifest["images"]
    data = (out / "synthetic.png").read_bytes()
    assert entry["sha256"] == hashlib.sha256(data).hexdigest()
    assert entry["size"] == [64, 64] and entry["licence"] == "CC0-1.0"
    assert entry["source_version"] == "1.0-test" and entry["path_in_package"] == str(src)
    assert entry["pre_downscale"].startswith("x2 box mean")
    box = entry["crop_box"]  # the texture is rows 96-160, cols 120-184 in the source: halved after the reduction
    assert box["bottom"] - box["top"] == box["right"] - box["left"] == 64 and box["in"] == "reduced image"
    assert box["top"] <= 48 and box["bottom"] >= 80 and box["left"] <= 60 and box["right"] >= 92
    assert manifest["bicubic_x4_mean_psnr_db"] == pytest.approx(mean, abs=1e-3)
    assert "synthetic.png" in (out / "LICENSES.md").read_text()
    assert not [p for p in out.iterdir() if p.name.endswith(".tmp")]
    entries2, _ = bts.build(out, 64, sources)
    assert entries2 == entries  # rebuilding is byte-identical


def test_missing_sources_are_one_line_errors(bts, tmp_path):
    deb = bts.Source("x", "deb", "some-deb", "some-deb", str(tmp_path / "missing.jpg"), "CC0-1.0", "")
    with pytest.raises(bts.BuildError, match="apt-get install -y some-deb"):
        bts.locate(deb)
    pip = bts.Source("x", "pip", "no_such_module_xyz", "no-such-dist", "a.png", "CC0-1.0", "")
    with pytest.raises(bts.BuildError, match="pip install no-such-dist"):
        bts.locate(pip)


def _sources_missing(bts) -> str | None:
    for source in bts.SOURCES:
        try:
            bts.locate(source)
        except bts.BuildError as exc:
            return str(exc)
    return None


@pytest.mark.slow
def test_real_set_builds_and_is_hard_for_bicubic(bts, tmp_path):
    missing = _sources_missing(bts)
    if missing:
        pytest.skip(f"test-set sources not installed (make test-set installs them): {missing}")
    assert bts.main(["--out", str(tmp_path / "set")]) == 0
    manifest = json.loads((tmp_path / "set" / "MANIFEST.json").read_text())
    assert len(manifest["images"]) >= bts.MIN_IMAGES
    assert manifest["bicubic_x4_mean_psnr_db"] <= bts.MAX_MEAN_PSNR
