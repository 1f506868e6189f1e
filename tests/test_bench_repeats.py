"""``mdfloss bench --repeats``: a run per (loss, repeat) with its own seed, resumable, reported over runs."""

from __future__ import annotations

import csv
import json

import pytest
from conftest import make_pyramid
from test_bench_data import write_images

from mdfloss import save_pyramid
from mdfloss.cli import main
from mdfloss.runtime import EXIT_INTERRUPTED


@pytest.fixture(scope="module")
def folders(tmp_path_factory):
    root = tmp_path_factory.mktemp("repeat-data")
    write_images(root / "train", 3, (40, 40), seed=0)
    write_images(root / "val", 1, (32, 32), seed=1)
    write_images(root / "test", 2, (32, 32), seed=2)
    for draw in range(2):
        save_pyramid(root / f"draw{draw}.safetensors", make_pyramid([4, 4], seed=draw), {"task": "denoise"})
    return root


def bench_args(folders, out, *extra):
    return [
        "bench", "--task", "denoise", "--model", "dncnn", "--train-dir", str(folders / "train"),
        "--val-dir", str(folders / "val"), "--test-dir", str(folders / "test"), "--iters", "4",
        "--set", "model.size=small", "--set", "model.depth=3", "--set", "model.features=4",
        "--set", "data.patch_size=16", "--set", "data.batch_size=2", "--set", "train.val_every=2",
        "--set", "train.checkpoint_every=2", "--set", "degradation.test_sigmas=[25]",
        "--set", "eval.save_images=false", "--losses", "l2,mdf",
        "--mdf", f"{folders / 'draw0.safetensors'},{folders / 'draw1.safetensors'}",
        "--repeats", "2", "--no-progress", "--out", str(out), *extra,
    ]


def rows(path):
    with open(path, newline="") as stream:
        return list(csv.DictReader(stream))


@pytest.fixture(scope="module")
def uninterrupted(folders, tmp_path_factory):
    out = tmp_path_factory.mktemp("repeats")
    assert main(bench_args(folders, out)) == 0
    return out


def test_each_loss_and_repeat_is_a_run_with_its_own_seed_and_phase1_draw(uninterrupted):
    manifest = json.loads((uninterrupted / "manifest.json").read_text())
    entry = manifest["experiments"]["denoise-dncnn"]
    assert sorted(entry["runs"]) == ["l2", "l2#1", "mdf", "mdf#1"]
    assert entry["runs"]["mdf#1"]["folder"] == "denoise-dncnn/mdf-repeat1"
    assert entry["runs"]["mdf"]["spec"].endswith("draw0.safetensors")
    assert entry["runs"]["mdf#1"]["spec"].endswith("draw1.safetensors")
    assert entry["losses"] == ["l2", "mdf"] and entry["repeats"] == 2
    assert any("phase-1 draw" in source for source in entry["variation"])
    results = rows(uninterrupted / "results.csv")
    assert [(r["loss"], r["repeat"]) for r in results] == [("l2", "0"), ("l2", "0"), ("l2", "1"), ("l2", "1"),
                                                          ("mdf", "0"), ("mdf", "0"), ("mdf", "1"), ("mdf", "1")]
    l2 = [r["psnr"] for r in results if r["loss"] == "l2"]
    assert l2[:2] != l2[2:], "two repeats with different seeds gave the same network"


def test_the_report_gives_intervals_over_runs_and_the_probability_of_outperforming(uninterrupted):
    report = (uninterrupted / "report.md").read_text()
    assert "### Over runs and images" in report
    assert "P(mdf > other) over runs:" in report
    assert "Runs per loss: l2 2, mdf 2." in report
    assert "these tests hold for the given runs only" in report


def test_the_validation_figure_draws_every_run_of_every_loss(uninterrupted, monkeypatch, tmp_path):
    from mdfloss.bench.report import plots

    drawn = {}

    def keep_axes(figure, path):
        drawn["axes"] = figure.axes[0]
        return path

    monkeypatch.setattr(plots, "save_figure", keep_axes)
    entry = json.loads((uninterrupted / "manifest.json").read_text())["experiments"]["denoise-dncnn"]
    assert plots.validation_plot(uninterrupted, tmp_path, entry, ["l2", "mdf"]) is not None
    lines = drawn["axes"].get_lines()
    assert [line.get_linestyle() for line in lines] == ["-", "--", "-", "--"]
    assert [line.get_label() for line in lines if not line.get_label().startswith("_")] == ["l2", "mdf"]
    assert lines[0].get_color() == lines[1].get_color() != lines[2].get_color()
    logged = rows(uninterrupted / "denoise-dncnn" / "mdf-repeat1" / "val_log.csv")
    assert list(lines[3].get_ydata()) == [float(row["val_psnr"]) for row in logged]


def test_interrupted_and_resumed_equals_uninterrupted(folders, uninterrupted, tmp_path):
    out = tmp_path / "resumed"
    assert main(bench_args(folders, out, "--stop-after", "2")) == EXIT_INTERRUPTED
    assert main(bench_args(folders, out, "--resume")) == 0
    assert rows(out / "results.csv") == rows(uninterrupted / "results.csv")


def test_parallel_jobs_give_the_same_results(folders, uninterrupted, tmp_path):
    # a fresh process may pick other convolution kernels: equal to float32 precision, not bit for bit
    out = tmp_path / "parallel"
    assert main(bench_args(folders, out, "--jobs", "2")) == 0
    parallel, serial = rows(out / "results.csv"), rows(uninterrupted / "results.csv")
    assert [(r["loss"], r["repeat"], r["image"]) for r in parallel] == [(r["loss"], r["repeat"], r["image"]) for r in serial]
    for a, b in zip(parallel, serial):
        assert float(a["psnr"]) == pytest.approx(float(b["psnr"]), rel=1e-5)
        assert float(a["ssim"]) == pytest.approx(float(b["ssim"]), rel=1e-4)


def test_one_weight_file_per_repeat_or_one_for_all(folders, tmp_path, capsys):
    args = bench_args(folders, tmp_path / "x", "--repeats", "3")
    assert main(args) == 2
    assert "mdf.weights: expected one name or file, or one per repeat (3)" in capsys.readouterr().err


def test_a_single_run_says_that_run_to_run_variation_was_not_sampled(folders, tmp_path):
    out = tmp_path / "single"
    assert main(bench_args(folders, out, "--repeats", "1", "--mdf", str(folders / "draw0.safetensors"))) == 0
    report = (out / "report.md").read_text()
    assert "Each loss was trained once: run-to-run variation" in report
    assert "Over runs and images" not in report
