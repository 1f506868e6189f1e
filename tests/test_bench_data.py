"""Image folders, augmentation, the three degradations, sample addressing and the eval cache."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from mdfloss._files import list_images
from mdfloss.bench.data import (
    IterationSampler,
    TrainPatches,
    augment,
    center_crop,
    eval_set,
)
from mdfloss.bench.degradations import (
    Condition,
    Denoising,
    JPEGArtifacts,
    SuperResolution,
    bicubic_downscale,
    build_degradation,
    mod_crop,
)


def write_images(folder: Path, count: int, size: tuple[int, int], seed: int = 0) -> Path:
    """``count`` smooth-plus-noise RGB PNGs of ``size`` (width, height) in ``folder``."""
    from PIL import Image

    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    width, height = size
    y, x = np.mgrid[:height, :width]
    for index in range(count):
        image = np.stack([128 + 90 * np.sin(x / (4 + index) + y / 7), 128 + 80 * np.cos(y / (3 + index)),
                          (3 * x + 2 * y + 40 * index) % 256], axis=-1)
        image = np.clip(image + rng.normal(0, 6, image.shape), 0, 255).astype(np.uint8)
        Image.fromarray(image).save(folder / f"im{index}.png")
    return folder


def test_list_images_is_sorted_and_skips_other_files(tmp_path):
    write_images(tmp_path, 3, (20, 16))
    (tmp_path / "notes.txt").write_text("x")
    assert [p.name for p in list_images(tmp_path)] == ["im0.png", "im1.png", "im2.png"]
    with pytest.raises(FileNotFoundError, match="not a directory"):
        list_images(tmp_path / "missing")
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(ValueError, match="found none"):
        list_images(empty)


def test_the_eight_augmentations_are_the_dihedral_group():
    patch = np.arange(12, dtype=np.uint8).reshape(3, 4, 1).repeat(3, axis=2)
    outputs = [augment(patch, mode) for mode in range(8)]
    assert np.array_equal(outputs[0], patch)
    assert np.array_equal(outputs[1], np.rot90(patch))
    assert np.array_equal(outputs[6], np.rot90(patch, 2)[:, ::-1])
    assert len({o.tobytes() + bytes(o.shape) for o in outputs}) == 8


def test_bicubic_downscale_keeps_constants_and_divides_the_size():
    flat = np.full((16, 12, 3), 77, dtype=np.uint8)
    small = bicubic_downscale(flat, 4)
    assert small.shape == (4, 3, 3) and (small == 77).all()
    assert mod_crop(np.zeros((17, 14, 3)), 4).shape == (16, 12, 3)


def test_eval_noise_is_deterministic_per_image_and_has_the_condition_sigma():
    image = np.full((256, 256, 3), 128, dtype=np.uint8)
    task = Denoising(test_sigmas=(25.0,))
    condition = task.eval_conditions("test")[0]
    assert condition == Condition("sigma25", {"sigma": 25.0})
    a, clean = task.eval_pair(image, condition, "a.png")
    b, _ = task.eval_pair(image, condition, "a.png")
    c, _ = task.eval_pair(image, condition, "c.png")
    assert torch.equal(a, b) and not torch.equal(a, c)
    std = float((a - clean).std())
    assert abs(std - 25 / 255) < 0.002  # 196,608 samples: the standard error is 0.16 % of sigma
    dark, _ = task.eval_pair(np.zeros((8, 8, 3), dtype=np.uint8), condition, "a.png")
    assert dark.min() < 0  # not clipped, as DnCNN


def test_training_noise_sigma_stays_in_its_range():
    patch = np.full((64, 64, 3), 128, dtype=np.uint8)
    task = Denoising(sigma_range=(10.0, 20.0))
    pairs = [task.train_pair(patch, torch.Generator().manual_seed(seed)) for seed in range(20)]
    stds = [float((noisy - clean).std()) for noisy, clean in pairs]
    assert 9.0 / 255 < min(stds) and max(stds) < 21.0 / 255 and np.ptp(stds) > 2.0 / 255


def test_conditions_follow_the_paper_settings():
    assert [c.name for c in JPEGArtifacts().eval_conditions("test")] == ["q10", "q7"]
    assert [c.name for c in JPEGArtifacts().eval_conditions("val")] == ["q10"]
    assert [c.name for c in SuperResolution(4).eval_conditions("test")] == ["x4"]
    assert [c.name for c in Denoising().eval_conditions("test")] == ["sigma15", "sigma25", "sigma50"]


@pytest.mark.parametrize(
    ("task", "options", "message"),
    [("blur", {}, "task"), ("sisr", {"scale": 1}, "scale"), ("jpeg", {"test_qualities": [0]}, r"degradation.test_qualities: expected an int in \[1, 95\], got 0"),
     ("denoise", {"sigma_range": [5, 1]}, "sigma_range"), ("denoise", {"strength": 3}, "degradation options")],
)
def test_bad_degradation_options_are_refused(task, options, message):
    with pytest.raises(ValueError, match=message):
        build_degradation(task, options)


def test_training_samples_depend_only_on_their_index():
    images = [np.random.default_rng(i).integers(0, 256, (40, 36, 3), dtype=np.uint8) for i in range(3)]
    patches = TrainPatches(images, SuperResolution(4), patch_size=16, seed=5)
    first, again = patches[7], patches[7]
    assert first[0].shape == (3, 4, 4) and first[1].shape == (3, 16, 16)
    assert torch.equal(first[0], again[0]) and torch.equal(first[1], again[1])
    assert not torch.equal(patches[8][1], first[1])
    other_seed = TrainPatches(images, SuperResolution(4), patch_size=16, seed=6)
    assert not torch.equal(other_seed[7][1], first[1])


def test_training_patches_refuse_bad_sizes():
    images = [np.zeros((30, 30, 3), dtype=np.uint8)]
    with pytest.raises(ValueError, match="multiple of the scale 4"):
        TrainPatches(images, SuperResolution(4), patch_size=18)
    with pytest.raises(ValueError, match="larger than training image"):
        TrainPatches(images, Denoising(), patch_size=32, names=["tiny.png"])


def test_ranks_share_each_iteration_batch_and_resume_continues_the_sequence():
    single = list(IterationSampler(0, 3, batch_size=4))
    assert single == list(range(12))
    ranks = [list(IterationSampler(0, 3, batch_size=4, rank=r, world_size=2)) for r in range(2)]
    assert ranks[0] == [0, 1, 4, 5, 8, 9] and ranks[1] == [2, 3, 6, 7, 10, 11]
    assert list(IterationSampler(2, 3, batch_size=4)) == single[8:]
    with pytest.raises(ValueError, match="multiple of the number of processes"):
        IterationSampler(0, 1, batch_size=3, world_size=2)


def test_eval_sets_are_cached_and_reused(tmp_path):
    paths = list_images(write_images(tmp_path / "val", 2, (30, 26)))
    task = Denoising(val_sigma=30)
    condition = task.eval_conditions("val")[0]
    fresh = eval_set(paths, task, condition, cache_dir=tmp_path / "cache", crop=24)
    cached_files = sorted((tmp_path / "cache").iterdir())
    assert len(cached_files) == 2
    again = eval_set(paths, task, condition, cache_dir=tmp_path / "cache", crop=24)
    assert all(torch.equal(a.input, b.input) and torch.equal(a.target, b.target) for a, b in zip(fresh, again))
    assert fresh[0].target.shape == (3, 24, 24)
    other = eval_set(paths, Denoising(val_sigma=10), Condition("sigma10", {"sigma": 10.0}),
                     cache_dir=tmp_path / "cache", crop=24)
    assert len(list((tmp_path / "cache").iterdir())) == 4 and not torch.equal(other[0].input, fresh[0].input)


def test_center_crop_is_centred_and_a_multiple_of_the_scale():
    image = np.arange(10 * 14).reshape(10, 14, 1)
    crop = center_crop(image, 7, multiple=2)
    assert crop.shape == (6, 6, 1) and crop[0, 0, 0] == image[2, 4, 0]
