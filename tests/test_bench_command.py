"""``mdfloss bench`` end to end on tiny images: results, report, resume, reuse, estimate, skipped losses."""

from __future__ import annotations

import csv
import json
import re

import pytest
import torch
from conftest import make_pyramid, shared_path
from test_bench_data import write_images

from mdfloss import read_metadata, save_pyramid
from mdfloss.bench.run_folder import loss_digest
from mdfloss.cli import main
from mdfloss.losses import build_loss
from mdfloss.runtime import EXIT_INTERRUPTED
from mdfloss.train.checkpoint import load_checkpoint


@pytest.fixture(scope="module")
def folders(tmp_path_factory):
    root = tmp_path_factory.mktemp("bench-data")
    write_images(root / "train", 3, (60, 52), seed=0)
    write_images(root / "val", 2, (40, 40), seed=1)
    write_images(root / "test", 2, (56, 48), seed=2)
    save_pyramid(root / "tiny.safetensors", make_pyramid([4, 4]), {"task": "sisr"})
    return root


def bench_args(folders, out, *extra):
    return [
        "bench", "--task", "sisr", "--model", "edsr", "--train-dir", str(folders / "train"),
        "--val-dir", str(folders / "val"), "--test-dir", str(folders / "test"), "--iters", "4",
        "--set", "model.size=small", "--set", "model.blocks=1", "--set", "model.features=8",
        "--set", "data.patch_size=36", "--set", "data.batch_size=2", "--set", "train.val_every=2",
        "--set", "data.val_crop=36", "--no-progress", "--out", str(out), *extra,
    ]


LOSSES = ["--losses", "l2,msssim+l1,mdf,vgg", "--mdf", "PLACEHOLDER", "--vgg-weights", "/nonexistent/vgg16.pth",
          "--set", "optional_losses=[vgg]"]


def losses_for(folders):
    return [str(folders / "tiny.safetensors") if a == "PLACEHOLDER" else a for a in LOSSES]


@pytest.fixture(scope="module")
def finished(folders, tmp_path_factory):
    out = tmp_path_factory.mktemp("bench-out")
    assert main(bench_args(folders, out, *losses_for(folders))) == 0
    return out


def read_rows(path):
    with open(path, newline="") as stream:
        return list(csv.DictReader(stream))


def test_results_have_the_specified_columns_and_a_row_per_loss_and_image(finished):
    with open(finished / "results.csv") as stream:
        header = stream.readline().strip()
    assert header == "task,model,loss,repeat,dataset,image,psnr,psnr_y,ssim,ms_ssim,haarpsi,dss,mdsi,lpips"
    rows = read_rows(finished / "results.csv")
    assert [(r["loss"], r["image"]) for r in rows] == [
        (loss, image) for loss in ("l2", "msssim+l1", "mdf") for image in ("im0.png", "im1.png")
    ]
    assert {r["dataset"] for r in rows} == {"test/x4"} and all(r["lpips"] == "" for r in rows)
    assert all(10 < float(r["psnr"]) < 60 and 0 < float(r["ms_ssim"]) <= 1 for r in rows)
    assert all(0 < float(r["haarpsi"]) <= 1 and float(r["dss"]) <= 1 and float(r["mdsi"]) >= 0 for r in rows)


def test_the_degraded_input_is_measured_as_a_baseline(finished):
    import numpy as np
    from PIL import Image

    from mdfloss.metrics.image import psnr

    rows = read_rows(finished / "sisr-edsr" / "input_results.csv")
    assert [r["loss"] for r in rows] == ["input", "input"]
    folder = finished / "sisr-edsr" / "reference" / "test" / "x4"
    load = lambda name: torch.from_numpy(np.asarray(Image.open(folder / name), dtype=np.float32) / 255).permute(2, 0, 1)[None]  # noqa: E731
    upsampled = torch.nn.functional.interpolate(load("im0-input.png"), scale_factor=4, mode="bicubic", align_corners=False)
    upsampled = upsampled.clamp(0, 1).mul(255).round().div(255)[..., 4:-4, 4:-4]
    expected = float(psnr(upsampled, load("im0-target.png")[..., 4:-4, 4:-4])[0])
    assert float(rows[0]["psnr"]) == pytest.approx(expected, abs=1e-3)
    assert "| (input) |" in (finished / "report.md").read_text()


def test_report_files_are_written_and_consistent(finished):
    md = (finished / "report.md").read_text()
    assert "| dataset | metric | l2 | msssim+l1 | mdf |" in md
    assert "Skipped `vgg`" in md and "mdf against each other loss" in md
    html = (finished / "report.html").read_text()
    sources = re.findall(r'src="([^"]+)"', html)
    assert any("violin-psnr" in s for s in sources) and any("crops-test-x4" in s for s in sources)
    assert all((finished / s).is_file() for s in sources)
    manifest = json.loads((finished / "manifest.json").read_text())
    runs = manifest["experiments"]["sisr-edsr"]["runs"]
    assert runs["mdf"]["spec"].endswith("tiny.safetensors") and runs["l2"]["iterations"] == 4


def test_resume_of_a_finished_benchmark_changes_nothing(folders, finished):
    before = (finished / "results.csv").read_text()
    assert main(bench_args(folders, finished, *losses_for(folders), "--resume")) == 0
    assert (finished / "results.csv").read_text() == before


def test_rerun_without_resume_is_refused(folders, finished, capsys):
    assert main(bench_args(folders, finished, *losses_for(folders))) == 2
    assert "holds a finished run: pass --resume" in capsys.readouterr().err


def test_stopped_then_resumed_benchmark_equals_the_uninterrupted_one(folders, finished, tmp_path):
    assert main(bench_args(folders, tmp_path, *losses_for(folders), "--stop-after", "3")) == EXIT_INTERRUPTED
    assert not (tmp_path / "results.csv").is_file() or read_rows(tmp_path / "results.csv") == []
    assert main(bench_args(folders, tmp_path, *losses_for(folders), "--resume")) == 0
    assert read_rows(tmp_path / "results.csv") == read_rows(finished / "results.csv")


def test_report_only_rebuilds_the_report(folders, finished):
    (finished / "report.md").unlink()
    assert main(["bench", "--report-only", "--out", str(finished)]) == 0
    assert (finished / "report.md").is_file()


def test_a_required_loss_without_weights_fails_before_training(folders, tmp_path, capsys):
    assert main(bench_args(folders, tmp_path, "--losses", "l2,vgg", "--vgg-weights", "/nonexistent/vgg16.pth")) == 2
    assert re.search(r"mdfloss bench: error: loss 'vgg'.*vgg16.pth", capsys.readouterr().err)
    assert not list(tmp_path.glob("sisr-edsr/*/checkpoint.pt"))


def test_tensorboard_without_its_package_is_explained(folders, tmp_path, capsys):
    import importlib.util

    if importlib.util.find_spec("tensorboard") is not None:
        pytest.skip("tensorboard is installed: nothing to explain")
    assert main(bench_args(folders, tmp_path, "--losses", "l2", "--tensorboard")) == 1
    assert "tensorboard package" in capsys.readouterr().err


def test_estimate_prints_a_duration_table(folders, tmp_path, capsys):
    assert main(bench_args(folders, tmp_path, "--losses", "l2,l1", "--estimate")) == 0
    table = capsys.readouterr().out
    assert re.search(r"\| sisr-edsr \| l2 \| [0-9.]+ \| 4 \|", table) and "| **all** |" in table


def test_authors_weights_are_converted_and_used_as_mdf_official(folders, tmp_path):
    official = shared_path("anchors", "mdf-official")
    args = bench_args(folders, tmp_path, "--losses", "mdf-official", "--official-dir", str(official))
    args[args.index("4")] = "1"  # one iteration
    assert main(args) == 0
    converted = tmp_path / "weights" / "mdf-official-Ds_SISR.safetensors"
    assert read_metadata(converted)["official_file"]["name"] == "Ds_SISR.pth"
    run = json.loads((tmp_path / "manifest.json").read_text())["experiments"]["sisr-edsr"]["runs"]["mdf-official"]
    assert run["mdf_options"] == {"features": "official", "scales": 8}


def test_per_scale_shares_of_a_finished_mdf_run(finished, tmp_path):
    """Both kinds of share sum to 1 per image and state; the gradient share's oracle is the full loss's gradient."""
    assert main(["analyze", "gradients", "--bench-dir", str(finished), "--experiment", "sisr-edsr",
                 "--loss", "mdf", "--out", str(tmp_path)]) == 0
    rows = read_rows(tmp_path / "gradient-shares.csv")
    assert {r["state"] for r in rows} == {"start", "selected"} and {r["scale"] for r in rows} == {"0", "1"}
    for key in {(r["state"], r["image"]) for r in rows}:
        group = [r for r in rows if (r["state"], r["image"]) == key]
        assert abs(sum(float(r["loss_share"]) for r in group) - 1) < 1e-5
        assert abs(sum(float(r["gradient_share"]) for r in group) - 1) < 1e-5
    assert "| scale | loss share, start |" in (tmp_path / "gradient-shares.md").read_text()


def test_gradient_shares_project_each_scale_on_the_whole_loss_gradient():
    from mdfloss import MDFLoss
    from mdfloss.analysis.gradients import scale_shares

    crit = MDFLoss(make_pyramid([4, 6]), check_range=False)
    generator = torch.Generator().manual_seed(3)
    output, target = torch.rand(1, 3, 24, 24, generator=generator), torch.rand(1, 3, 24, 24, generator=generator)
    leaf = output.clone().requires_grad_(True)
    (whole,) = torch.autograd.grad(crit(leaf, target), leaf)
    shares = scale_shares(crit.scale_parts(), output, target)
    for k, value, _, share in shares:
        part = MDFLoss(make_pyramid([4, 6]), scales=[k], check_range=False)
        (own,) = torch.autograd.grad(part(leaf, target), leaf)
        assert abs(value - float(part(output, target))) < 1e-6
        assert abs(share - float((own * whole).sum() / whole.square().sum())) < 1e-6


# --reuse DIR: finished trainings are taken over only when nothing that matters differs


def recorded_runs(out):
    return json.loads((out / "manifest.json").read_text())["experiments"]["sisr-edsr"]["runs"]


def test_runs_with_the_same_settings_are_taken_over_and_tested_again(folders, finished, tmp_path):
    arguments = ["--losses", "l2,mdf", "--mdf", str(folders / "tiny.safetensors"), "--reuse", str(finished)]
    assert main(bench_args(folders, tmp_path, *arguments)) == 0
    for label in ("l2", "mdf"):
        record = recorded_runs(tmp_path)[label]
        assert record["reused_from"] == str(finished / "sisr-edsr" / label)
        assert record["loss_digest"] == recorded_runs(finished)[label]["loss_digest"]
        for name in ("best-val-loss.safetensors", "train_log.csv", "val_log.csv"):
            assert (tmp_path / "sisr-edsr" / label / name).read_bytes() == (finished / "sisr-edsr" / label / name).read_bytes()
        copied, source = (load_checkpoint(folder / "sisr-edsr" / label / "checkpoint.pt") for folder in (tmp_path, finished))
        assert copied["iteration"] == source["iteration"] and copied["identity"] == source["identity"]
        assert all(torch.equal(copied["model"][key], value) for key, value in source["model"].items())
    original = [row for row in read_rows(finished / "results.csv") if row["loss"] in ("l2", "mdf")]
    assert read_rows(tmp_path / "results.csv") == original


def test_the_authors_weights_converted_in_another_folder_are_taken_over(folders, tmp_path):
    official = shared_path("anchors", "mdf-official")
    arguments = ["--losses", "mdf-official", "--official-dir", str(official)]
    first, second = tmp_path / "first", tmp_path / "second"
    assert main(bench_args(folders, first, *arguments)) == 0
    assert main(bench_args(folders, second, *arguments, "--reuse", str(first))) == 0
    assert recorded_runs(second)["mdf-official"]["reused_from"] == str(first / "sisr-edsr" / "mdf-official")
    identity = load_checkpoint(second / "sisr-edsr" / "mdf-official" / "checkpoint.pt")["identity"]
    assert identity["loss"] == f"mdf:{second / 'weights' / 'mdf-official-Ds_SISR.safetensors'}"
    assert read_rows(second / "results.csv") == read_rows(first / "results.csv")
    assert main(bench_args(folders, second, *arguments, "--resume")) == 0  # the copy resumes as this folder's


def test_other_training_or_validation_settings_are_trained_anew(folders, finished, tmp_path):
    for index, change in enumerate(["train.optimizer.lr=5e-5", "data.val_crop=32"]):
        out = tmp_path / str(index)
        assert main(bench_args(folders, out, "--losses", "l2", "--set", change, "--reuse", str(finished))) == 0
        assert "reused_from" not in recorded_runs(out)["l2"]


def test_a_loss_file_with_other_weights_under_the_same_path_is_trained_anew(folders, tmp_path):
    weights = tmp_path / "loss.safetensors"
    save_pyramid(weights, make_pyramid([4, 4], seed=0), {"task": "sisr"})
    arguments = ["--losses", "mdf", "--mdf", str(weights)]
    assert main(bench_args(folders, tmp_path / "first", *arguments)) == 0
    save_pyramid(weights, make_pyramid([4, 4], seed=1), {"task": "sisr"})
    assert main(bench_args(folders, tmp_path / "second", *arguments, "--reuse", str(tmp_path / "first"))) == 0
    assert "reused_from" not in recorded_runs(tmp_path / "second")["mdf"]
    assert recorded_runs(tmp_path / "second")["mdf"]["loss_digest"] != recorded_runs(tmp_path / "first")["mdf"]["loss_digest"]


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


def test_re_evaluate_tests_the_saved_weights_again(folders, finished, tmp_path, capsys):
    import shutil

    out = tmp_path / "copy"
    shutil.copytree(finished, out)
    original = read_rows(out / "results.csv")
    run_rows = out / "sisr-edsr" / "l2" / "results.csv"
    stale = read_rows(run_rows)
    for row in stale:
        row["psnr"] = "0"  # as if computed by an older metric
    with open(run_rows, "w", newline="") as stream:
        writer = csv.DictWriter(stream, list(stale[0]))
        writer.writeheader()
        writer.writerows(stale)
    (out / "sisr-edsr" / "mdf" / "best-val-loss.safetensors").unlink()  # a light copy of that run
    capsys.readouterr()
    assert main(["bench", "--re-evaluate", "--out", str(out)]) == 0
    assert "re-tested 2 run(s); left as they were (no weight files): sisr-edsr mdf" in capsys.readouterr().out
    assert read_rows(out / "results.csv") == original
