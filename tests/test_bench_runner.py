"""A tiny benchmark run learns: the trained network's test PSNR is above its input's."""

from __future__ import annotations

import pytest
from test_bench_data import write_images

from mdfloss._files import read_csv
from mdfloss.cli import main


@pytest.mark.slow
def test_a_tiny_denoising_run_beats_its_noisy_input(tmp_path):
    write_images(tmp_path / "train", 2, (64, 64), seed=0)
    write_images(tmp_path / "test", 1, (48, 48), seed=2)
    out = tmp_path / "out"
    assert main([
        "bench", "--preset", "cpu", "--task", "denoise", "--losses", "l2", "--iters", "40",
        "--train-dir", str(tmp_path / "train"), "--val-dir", str(tmp_path / "test"), "--test-dir", str(tmp_path / "test"),
        "--set", "train.val_every=20", "--set", "data.val_crop=32", "--no-progress", "--out", str(out),
    ]) == 0
    inputs = {r["dataset"]: float(r["psnr"]) for r in read_csv(out / "denoise-dncnn" / "input_results.csv")}
    trained = {r["dataset"]: float(r["psnr"]) for r in read_csv(out / "results.csv")}
    assert sorted(trained) == sorted(inputs) == ["test/sigma15", "test/sigma25", "test/sigma50"]
    assert all(trained[level] > inputs[level] + 0.2 for level in inputs), (inputs, trained)
