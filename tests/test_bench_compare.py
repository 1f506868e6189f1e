"""``mdfloss bench compare``: losses of different benchmark folders paired by image, with the statistics over runs."""

from __future__ import annotations

import csv
import math

from mdfloss.cli import main

FIELDS = ["task", "model", "loss", "repeat", "dataset", "image", "psnr"]


def write_results(folder, loss, runs, other_dataset=False):
    """``runs``: one {image: psnr} per repeat."""
    folder.mkdir(parents=True, exist_ok=True)
    with open(folder / "results.csv", "w", newline="") as stream:
        writer = csv.DictWriter(stream, FIELDS)
        writer.writeheader()
        for repeat, values in enumerate(runs):
            for name, value in values.items():
                writer.writerow({"task": "sisr", "model": "edsr", "loss": loss, "repeat": repeat, "dataset": "set/x4",
                                 "image": name, "psnr": value})
        if other_dataset:  # a dataset the reference does not have: ignored
            writer.writerow({"task": "denoise", "model": "dncnn", "loss": loss, "repeat": 0,
                             "dataset": "other/sigma15", "image": "x.png", "psnr": 1.0})


def psnr_line(capsys):
    return next(line for line in capsys.readouterr().out.splitlines() if "| PSNR [dB] |" in line)


def test_pairs_by_image_name_and_gives_the_one_tailed_p_value(tmp_path, capsys):
    write_results(tmp_path / "a", "ours", [{"b.png": 5.0, "a.png": 2.0, "c.png": 4.0}])
    write_results(tmp_path / "b", "theirs", [{"c.png": 1.0, "a.png": 1.0, "b.png": 3.0}], other_dataset=True)
    assert main(["bench", "compare", f"{tmp_path / 'a'}:ours", f"{tmp_path / 'b'}:theirs", "--metrics", "psnr"]) == 0
    cells = [c.strip() for c in psnr_line(capsys).split("|")]
    # differences 1, 2, 3: mean 2, sd 1, t = 2 * sqrt(3) with 2 degrees of freedom, whose
    # one-tailed p is (1 - t / sqrt(t^2 + 2)) / 2 (the t distribution with 2 df in closed form)
    t = 2 * math.sqrt(3)
    assert cells[-2] == f"{(1 - t / math.sqrt(t * t + 2)) / 2:.3g}"
    assert cells[5].startswith("3.667 [") and cells[6].startswith("1.667 [")
    # one run each: the reference's run is better on every resampling of the images
    assert cells[7] == "1.00 [1.00, 1.00]"


def test_probability_over_repeated_runs(tmp_path, capsys):
    write_results(tmp_path / "a", "ours", [{"a.png": 1.0, "b.png": 1.0}, {"a.png": 3.0, "b.png": 3.0}])
    write_results(tmp_path / "b", "theirs", [{"a.png": 2.0, "b.png": 2.0}])
    save = tmp_path / "table.md"
    assert main(["bench", "compare", str(tmp_path / "a"), str(tmp_path / "b" / "results.csv"), "--metrics", "psnr",
                 "--save", str(save)]) == 0
    cells = [c.strip() for c in psnr_line(capsys).split("|")]
    assert cells[7] == "0.50 [0.00, 1.00]"  # runs 1 and 3 against 2: one win, one loss
    assert "Runs: " in save.read_text() and " 2, " in save.read_text()


def test_refuses_folders_whose_images_differ(tmp_path, capsys):
    write_results(tmp_path / "a", "ours", [{"a.png": 2.0, "b.png": 3.0}])
    write_results(tmp_path / "b", "theirs", [{"a.png": 1.0, "z.png": 1.0}])
    assert main(["bench", "compare", f"{tmp_path / 'a'}:ours", f"{tmp_path / 'b'}:theirs"]) == 2
    assert "not the same images" in capsys.readouterr().err


def test_a_loss_label_may_hold_colons(tmp_path, capsys):
    write_results(tmp_path / "a", "mypkg.losses:Charbonnier", [{"a.png": 2.0, "b.png": 3.0}])
    write_results(tmp_path / "b", "l2", [{"a.png": 1.0, "b.png": 1.0}])
    assert main(["bench", "compare", f"{tmp_path / 'a'}:mypkg.losses:Charbonnier", f"{tmp_path / 'b'}:l2"]) == 0
    assert ":mypkg.losses:Charbonnier 1" in capsys.readouterr().out


def test_names_a_missing_loss_and_folder(tmp_path, capsys):
    write_results(tmp_path / "a", "ours", [{"a.png": 2.0}])
    assert main(["bench", "compare", f"{tmp_path / 'a'}:nope", f"{tmp_path / 'a'}:ours"]) == 2
    assert "no loss 'nope'" in capsys.readouterr().err
    assert main(["bench", "compare", str(tmp_path / "missing"), f"{tmp_path / 'a'}:ours"]) == 2
    assert "expected a benchmark folder or its results.csv" in capsys.readouterr().err
