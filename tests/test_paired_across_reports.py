"""scripts/paired_across_reports.py: pairs images across two results.csv files and t-tests them."""

from __future__ import annotations

import csv
import math
import subprocess
import sys
from pathlib import Path

SCRIPT = Path(__file__).resolve().parents[1] / "scripts" / "paired_across_reports.py"
FIELDS = ["task", "model", "loss", "dataset", "image", "psnr"]


def write_results(path, loss, values, other_dataset=False):
    with open(path, "w", newline="") as stream:
        writer = csv.DictWriter(stream, FIELDS)
        writer.writeheader()
        for name, value in values.items():
            writer.writerow({"task": "sisr", "model": "edsr", "loss": loss, "dataset": "set/x4", "image": name,
                             "psnr": value})
        if other_dataset:  # a dataset the reference does not have: ignored
            writer.writerow({"task": "denoise", "model": "dncnn", "loss": loss, "dataset": "other/sigma15",
                             "image": "x.png", "psnr": 1.0})


def run(*arguments):
    return subprocess.run([sys.executable, str(SCRIPT), *arguments], capture_output=True, text=True)


def test_pairs_by_image_name_and_gives_the_one_tailed_p_value(tmp_path):
    write_results(tmp_path / "a.csv", "ours", {"b.png": 5.0, "a.png": 2.0, "c.png": 4.0})
    write_results(tmp_path / "b.csv", "theirs", {"c.png": 1.0, "a.png": 1.0, "b.png": 3.0}, other_dataset=True)
    result = run(f"{tmp_path / 'a.csv'}:ours", f"{tmp_path / 'b.csv'}:theirs")
    assert result.returncode == 0, result.stderr
    line = next(l for l in result.stdout.splitlines() if "| psnr |" in l)
    # differences 1, 2, 3: mean 2, sd 1, t = 2 * sqrt(3) with 2 degrees of freedom, whose
    # one-tailed p is (1 - t / sqrt(t^2 + 2)) / 2 (the t distribution with 2 df in closed form)
    t = 2 * math.sqrt(3)
    expected = (1 - t / math.sqrt(t * t + 2)) / 2
    assert f"{expected:.3g}" == line.split("|")[-2].strip()


def test_refuses_files_whose_images_differ(tmp_path):
    write_results(tmp_path / "a.csv", "ours", {"a.png": 2.0, "b.png": 3.0})
    write_results(tmp_path / "b.csv", "theirs", {"a.png": 1.0, "z.png": 1.0})
    result = run(f"{tmp_path / 'a.csv'}:ours", f"{tmp_path / 'b.csv'}:theirs")
    assert result.returncode != 0 and "not the same (dataset, image) pairs" in result.stderr
