"""``mdfloss bench --reuse DIR``: finished trainings taken over only when nothing that matters differs."""

from __future__ import annotations

import json

import torch
from conftest import make_pyramid
from test_bench_command import bench_args, finished, folders, read_rows  # noqa: F401 (fixtures)

from mdfloss import save_pyramid
from mdfloss.bench.reuse import loss_digest
from mdfloss.cli import main
from mdfloss.losses import build_loss


def runs(out):
    return json.loads((out / "manifest.json").read_text())["experiments"]["sisr-edsr"]["runs"]


def test_runs_with_the_same_settings_are_taken_over_and_tested_again(folders, finished, tmp_path):
    arguments = ["--losses", "l2,mdf", "--mdf", str(folders / "tiny.safetensors"), "--reuse", str(finished)]
    assert main(bench_args(folders, tmp_path, *arguments)) == 0
    for label in ("l2", "mdf"):
        record = runs(tmp_path)[label]
        assert record["reused_from"] == str(finished / "sisr-edsr" / label)
        assert record["loss_digest"] == runs(finished)[label]["loss_digest"]
        for name in ("checkpoint.pt", "best-val-loss.safetensors", "train_log.csv", "val_log.csv"):
            assert (tmp_path / "sisr-edsr" / label / name).read_bytes() == (finished / "sisr-edsr" / label / name).read_bytes()
    original = [row for row in read_rows(finished / "results.csv") if row["loss"] in ("l2", "mdf")]
    assert read_rows(tmp_path / "results.csv") == original


def test_other_training_or_validation_settings_are_trained_anew(folders, finished, tmp_path):
    for index, change in enumerate(["train.optimizer.lr=5e-5", "data.val_crop=32"]):
        out = tmp_path / str(index)
        assert main(bench_args(folders, out, "--losses", "l2", "--set", change, "--reuse", str(finished))) == 0
        assert "reused_from" not in runs(out)["l2"]


def test_a_loss_file_with_other_weights_under_the_same_path_is_trained_anew(folders, tmp_path):
    weights = tmp_path / "loss.safetensors"
    save_pyramid(weights, make_pyramid([4, 4], seed=0), {"task": "sisr"})
    arguments = ["--losses", "mdf", "--mdf", str(weights)]
    assert main(bench_args(folders, tmp_path / "first", *arguments)) == 0
    save_pyramid(weights, make_pyramid([4, 4], seed=1), {"task": "sisr"})
    assert main(bench_args(folders, tmp_path / "second", *arguments, "--reuse", str(tmp_path / "first"))) == 0
    assert "reused_from" not in runs(tmp_path / "second")["mdf"]
    assert runs(tmp_path / "second")["mdf"]["loss_digest"] != runs(tmp_path / "first")["mdf"]["loss_digest"]


def test_loss_digest_follows_the_weights_only():
    first, same, other = (build_loss("mdf:denoise") for _ in range(3))
    with torch.no_grad():
        next(other.parameters()).view(-1)[0] += 1e-6
    assert loss_digest(first) == loss_digest(same) != loss_digest(other)
    assert loss_digest(build_loss("l2")) == ""


def test_reuse_needs_a_benchmark_folder(folders, tmp_path, capsys):
    assert main(bench_args(folders, tmp_path / "out", "--losses", "l2", "--reuse", str(tmp_path))) == 2
    error = capsys.readouterr().err
    assert "--reuse" in error and "manifest.json" in error
