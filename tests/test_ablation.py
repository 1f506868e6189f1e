"""``mdfloss ablate``: the plans, and one tiny ablation end to end (seeds made, losses trained, bench run)."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from test_bench_data import write_images

from mdfloss import read_metadata
from mdfloss.ablation.plans import bench_config, seed_count_plan, seeds_plan
from mdfloss.cli import main


def test_the_seeds_plan_trains_each_natural_seed_and_three_synthetic_ones(tmp_path):
    plan = seeds_plan([Path("a.png"), Path("b.png")], "sisr", tmp_path)
    assert [loss.label for loss in plan.losses] == ["a", "b", "pink-noise", "contrast-rings", "pyramid-permutation"]
    assert plan.losses[2].seeds == (tmp_path / "seeds" / "pink-noise.png",)
    assert plan.synthetic["pyramid-permutation.png"] == {"kind": "pyramid-permutation", "like": Path("a.png")}


def test_the_seed_count_plan_takes_the_first_n_photos():
    photos = [Path(f"p{i}.png") for i in range(8)]
    plan = seed_count_plan(photos, [1, 2, 4, 8], "denoise")
    assert [(loss.label, len(loss.seeds)) for loss in plan.losses] == [("seeds-1", 1), ("seeds-2", 2),
                                                                         ("seeds-4", 4), ("seeds-8", 8)]
    assert plan.losses[2].seeds == tuple(photos[:4])
    with pytest.raises(ValueError, match="--seeds: expected at least 8 photos"):
        seed_count_plan(photos[:5], [1, 8], "denoise")


def test_the_bench_config_is_the_cpu_protocol_with_one_label_per_loss(tmp_path):
    config = bench_config(seed_count_plan([Path("p.png")] * 2, [1, 2], "jpeg"), tmp_path)
    experiment = config["experiments"]["jpeg-dncnn"]
    assert experiment["losses"] == ["seeds-1", "seeds-2", "l2"]
    assert experiment["loss_aliases"]["seeds-2"] == f"mdf:{tmp_path / 'losses' / 'seeds-2.safetensors'}"
    assert config["common"]["train"]["optimizer"] == {"type": "adam", "lr": 1.0e-3, "betas": [0.9, 0.999]}
    assert "losses" not in config["common"]
    assert config["common"]["report"]["references"] == ["seeds-2"]
    assert bench_config(seeds_plan([Path("a.png")], "sisr", tmp_path), tmp_path)["common"]["report"]["references"] == ["a"]


@pytest.mark.slow
def test_a_tiny_seeds_ablation_makes_seeds_trains_losses_and_benchmarks_them(tmp_path):
    data = tmp_path / "data"
    write_images(data / "train", 3, (64, 56), seed=0)
    write_images(data / "val", 1, (48, 48), seed=1)
    write_images(data / "test", 1, (48, 48), seed=2)
    write_images(data / "natural", 1, (72, 60), seed=3)
    out = tmp_path / "out"
    args = ["ablate", "seeds", "--natural", str(data / "natural" / "im0.png"), "--task", "denoise",
            "--train-dir", str(data / "train"), "--val-dir", str(data / "val"), "--test-dir", str(data / "test"),
            "--loss-iters", "2", "--jobs", "1", "--out", str(out),
            "--set", "train.iters=2", "--set", "train.val_every=1", "--set", "data.patch_size=24",
            "--set", "data.val_crop=32", "--set", "model.depth=3", "--set", "model.features=4", "--set", "train.threads=1"]
    assert main(args) == 0
    labels = ["im0", "pink-noise", "contrast-rings", "pyramid-permutation"]
    assert sorted(p.name for p in (out / "seeds").iterdir()) == sorted(f"{k}.png" for k in labels[1:])
    for label in labels:
        metadata = read_metadata(out / "losses" / f"{label}.safetensors")
        assert metadata["training"]["iters"] == 2 and "--seed" in metadata["training"]["command"]
    with open(out / "results.csv", newline="") as stream:
        assert [row["loss"] for row in csv.DictReader(stream)][::3] == [*labels, "l2"]  # 3 noise levels each
    assert "im0 against each other loss" in (out / "report.md").read_text()  # the natural seed, t-tested
    with Image.open(out / "seeds-preview.png") as preview:  # the 4 seeds in 320x180 cells, whole above cropped
        assert preview.size == (4 * 320 + 3 * 8, 2 * 180 + 8)
        below = np.asarray(preview.convert("RGB"))[180 + 8 : 180 + 8 + 60, :72]  # smaller than a cell: whole
    with Image.open(data / "natural" / "im0.png") as natural:
        assert np.array_equal(below, np.asarray(natural.convert("RGB")))
    assert main(args) == 0  # the same command again: everything is there, nothing is redone


def test_the_task_and_scales_ablations_pass_reuse_and_no_progress_on_to_bench(monkeypatch, tmp_path):
    from mdfloss import cli

    seen = []
    real_main = cli.main

    def fake_main(argv):
        if argv[0] == "bench":
            seen.append(argv)
            return 0
        return real_main(argv)

    monkeypatch.setattr(cli, "main", fake_main)
    for name in ("task", "scales"):
        assert real_main(["ablate", name, "--train-dir", "T", "--val-dir", "V", "--test-dir", "X",
                          "--reuse", "docs/results/cpu", "--no-progress", "--out", str(tmp_path / name)]) == 0
    for name, argv in zip(("task", "scales"), seen):
        assert argv[argv.index("--preset") + 1] == f"ablation-{name}"
        assert argv[argv.index("--reuse") + 1] == "docs/results/cpu" and "--no-progress" in argv
