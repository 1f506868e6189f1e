"""``mdfloss analyze manifold``: the four versions, the separability measure, and the command end to end."""

from __future__ import annotations

import csv

import numpy as np
import torch
import torch.nn.functional as F
from conftest import make_pyramid
from test_bench_data import write_images

from mdfloss import save_pyramid
from mdfloss.analysis.manifold import VERSIONS, four_versions, separability
from mdfloss.cli import main
from mdfloss.functional import jpeg_roundtrip_uint8


def test_the_four_versions_of_a_crop():
    crop = torch.rand(3, 32, 48, generator=torch.Generator().manual_seed(0))
    versions = four_versions(crop, torch.Generator().manual_seed(1))
    assert list(versions) == list(VERSIONS) and all(v.shape == crop.shape for v in versions.values())
    assert torch.equal(versions["original"], crop)
    small = F.interpolate(crop[None], size=(8, 12), mode="bilinear", align_corners=False)
    expected = F.interpolate(small, size=(32, 48), mode="bilinear", align_corners=False)[0].clamp(0, 1)
    torch.testing.assert_close(versions["blur"], expected)
    pixels = (crop * 255).round().to(torch.uint8).permute(1, 2, 0).numpy()
    candidates = [torch.from_numpy(jpeg_roundtrip_uint8(pixels, q).astype(np.float32) / 255).permute(2, 0, 1)
                  for q in range(7, 11)]
    assert sum(torch.equal(versions["jpeg"], c) for c in candidates) >= 1  # Pillow's JPEG at a quality of 7-10
    for version in ("jpeg", "permuted"):
        assert 0 <= float(versions[version].min()) and float(versions[version].max()) <= 1


def test_separability_is_high_for_separate_classes_and_chance_for_the_same_one():
    rng = np.random.default_rng(0)
    photos = [i for i in range(20) for _ in range(2)]
    versions = ["original", "blur"] * 20
    same = rng.normal(size=(40, 5))
    shifted = same + np.array([[0.0] * 5, [3.0] * 5] * 20)
    assert separability(shifted, versions, photos, "blur") > 0.95
    assert abs(separability(same, versions, photos, "blur") - 0.5) < 0.25


def test_the_command_writes_accuracies_per_loss_and_scale_and_the_tsne_plots(tmp_path):
    write_images(tmp_path / "photos", 4, (64, 64), seed=4)
    save_pyramid(tmp_path / "tiny.safetensors", make_pyramid([4, 4]), {"task": "sisr"})
    out = tmp_path / "out"
    assert main(["analyze", "manifold", "--loss", str(tmp_path / "tiny.safetensors"), "--images",
                 str(tmp_path / "photos"), "--crop", "32", "--crops-per-image", "2", "--out", str(out)]) == 0
    with open(out / "separability.csv", newline="") as stream:
        rows = list(csv.DictReader(stream))
    assert [(r["scale"], r["version"]) for r in rows] == [(s, v) for s in ("all", "0", "1")
                                                          for v in ("jpeg", "blur", "permuted")]
    assert all(0 <= float(r["accuracy"]) <= 1 for r in rows)
    assert "| scale | jpeg | blur | permuted |" in (out / "separability.md").read_text()
    for name in ("tsne-mdf_tiny-2d.png", "tsne-mdf_tiny-3d.png"):
        assert (out / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_a_loss_that_is_not_mdf_is_refused(tmp_path, capsys):
    write_images(tmp_path / "photos", 2, (64, 64))
    assert main(["analyze", "manifold", "--loss", "l2", "--images", str(tmp_path / "photos"),
                 "--out", str(tmp_path / "out")]) == 2
    assert "--loss: expected an MDF loss" in capsys.readouterr().err


def test_one_photo_cannot_be_cross_validated(tmp_path, capsys):
    write_images(tmp_path / "photos", 1, (64, 64))
    save_pyramid(tmp_path / "tiny.safetensors", make_pyramid([4]), {"task": "sisr"})
    assert main(["analyze", "manifold", "--loss", str(tmp_path / "tiny.safetensors"), "--images",
                 str(tmp_path / "photos"), "--crop", "32", "--out", str(tmp_path / "out")]) == 2
    assert "expected at least 2 photos" in capsys.readouterr().err


def test_a_gan_discriminator_is_described_by_its_last_feature_maps(tmp_path):
    from mdfloss.bench.gan import save_discriminator
    from mdfloss.bench.models import build_discriminator

    write_images(tmp_path / "photos", 3, (64, 64), seed=5)
    torch.manual_seed(0)
    save_discriminator(tmp_path / "run" / "discriminator.safetensors", build_discriminator("small"), 0)
    out = tmp_path / "out"
    assert main(["analyze", "manifold", "--discriminator", str(tmp_path / "run" / "discriminator.safetensors"),
                 "--images", str(tmp_path / "photos"), "--crop", "32", "--crops-per-image", "2",
                 "--out", str(out)]) == 0
    with open(out / "separability.csv", newline="") as stream:
        rows = list(csv.DictReader(stream))
    assert {r["loss"] for r in rows} == {"gan:run"} and [r["scale"] for r in rows] == ["all"] * 3 + ["0"] * 3
