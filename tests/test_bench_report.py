"""The report's statistics (against their formulas), its regions, and a report from synthetic results."""

from __future__ import annotations

import json
import math
import re

import numpy as np
import pytest
from scipy import stats

from mdfloss._files import write_csv
from mdfloss.bench.evaluate import RESULT_FIELDS
from mdfloss.bench.report import build_report
from mdfloss.bench.report.crops import choose_regions
from mdfloss.bench.report.stats import (
    paired_test,
    rank_marks,
    summarize,
    worst_percentile,
)


def test_paired_t_test_matches_the_t_statistic_formula():
    reference = np.array([30.1, 29.4, 31.0, 28.7, 30.6])
    other = np.array([29.8, 29.5, 30.2, 28.1, 30.0])
    d = reference - other
    t = d.mean() / (d.std(ddof=1) / math.sqrt(len(d)))
    assert paired_test(reference, other, higher_is_better=True) == pytest.approx(stats.t.sf(t, len(d) - 1))
    # lower is better (LPIPS): H1 is reference < other
    assert paired_test(-reference, -other, higher_is_better=False) == pytest.approx(stats.t.sf(t, len(d) - 1))
    assert math.isnan(paired_test(reference, reference, True))


def test_worst_five_percent_is_the_low_tail_of_quality():
    values = np.arange(1.0, 21.0)
    # numpy's linear rule: position 0.05 * 19 = 0.95 between 1 and 2; 0.95 * 19 = 18.05 between 19 and 20
    assert worst_percentile(values, higher_is_better=True) == pytest.approx(1.95)
    assert worst_percentile(values, higher_is_better=False) == pytest.approx(19.05)


def test_summary_interval_of_the_mean_is_the_t_interval():
    values = np.array([1.0, 2.0, 4.0, 7.0])
    s = summarize(values, True)
    half = stats.t.ppf(0.975, 3) * values.std(ddof=1) / 2
    assert s.mean == 3.5 and s.mean_ci == pytest.approx((3.5 - half, 3.5 + half))
    assert s.worst_ci[0] <= s.worst <= s.worst_ci[1]


def test_rank_marks_pick_best_and_second_and_skip_nan():
    assert rank_marks([3.0, 1.0, 2.0, math.nan], higher_is_better=True) == [1, 0, 2, 0]
    assert rank_marks([3.0, 1.0, 2.0], higher_is_better=False) == [0, 1, 2]
    assert rank_marks([2.0, 2.0, 1.0], higher_is_better=True) == [1, 1, 2]


def test_regions_are_the_smoothest_and_the_worst_places():
    rng = np.random.default_rng(0)
    target = rng.random((64, 64, 3)).astype(np.float32)
    target[:16, 32:48] = 0.5  # the only flat area
    output = target.copy()
    output[48:, :16] += 0.3  # the only error
    regions = dict((name, (top, left)) for name, top, left, _ in choose_regions(target, [output], 16))
    assert regions == {"smooth": (0, 32), "largest error": (48, 0)}


@pytest.fixture
def synthetic_out(tmp_path):
    rng = np.random.default_rng(1)
    images = [f"im{i}.png" for i in range(6)]
    base = rng.normal(28, 1.5, 6)
    psnrs = {"l2": base, "l1": base + 0.05 + rng.normal(0, 0.3, 6), "mdf": base + 0.8 + rng.normal(0, 0.05, 6)}
    for loss, values in psnrs.items():
        rows = [{"task": "denoise", "model": "dncnn", "loss": loss, "dataset": "set/sigma25", "image": image,
                 "psnr": f"{value:.4f}", "psnr_y": f"{value + 1:.4f}", "ssim": "0.8", "ms_ssim": "0.9", "lpips": ""}
                for image, value in zip(images, values)]
        write_csv(tmp_path / "denoise-dncnn" / loss / "results.csv", RESULT_FIELDS, rows)
    manifest = {"commands": ["mdfloss bench --test", "mdfloss bench --test --losses mdf"], "experiments": {"denoise-dncnn": {
        "task": "denoise", "model": "dncnn", "model_size": "small", "iterations": 10, "losses": list(psnrs),
        "datasets": ["set/sigma25"], "config": {"report": {"references": None}},
        "skipped": {"vgg": "VGG16 ImageNet weights not found"},
        "runs": {loss: {"spec": loss, "folder": f"denoise-dncnn/{loss}", "iterations": 10, "train_seconds": 6.0,
                        "selected": "val_loss", "best": {"val_loss": {"value": 0.1, "iteration": 10}}}
                 for loss in psnrs}}}}
    manifest["experiments"]["denoise-dncnn"]["runs"]["mdf"]["mdf_options"] = {"scales": [2, 3]}
    (tmp_path / "manifest.json").write_text(json.dumps(manifest))
    return tmp_path, psnrs


def test_report_marks_the_best_loss_and_the_significant_tests(synthetic_out):
    out, psnrs = synthetic_out
    md_path, html_path = build_report(out)
    md = md_path.read_text()
    mean_row = next(line for line in md.splitlines() if "PSNR [dB] ↑ mean" in line)
    cells = [c.strip() for c in mean_row.strip("|").split("|")][2:]
    assert cells[2] == f"**{psnrs['mdf'].mean():.2f}**"  # best, bold
    assert cells[1] == f"_{psnrs['l1'].mean():.2f}_"  # second, italics
    assert "Skipped `vgg`: VGG16 ImageNet weights not found" in md
    assert "Commands, in order:\n\n```\nmdfloss bench --test\nmdfloss bench --test --losses mdf\n```" in md
    assert "| mdf | 0 | `mdf scales=[2, 3]` |" in md  # the MDF options a run used are part of its spec
    test_row = next(line for line in md.splitlines() if line.startswith("| set/sigma25 | PSNR [dB] |"))
    p_l2 = paired_test(psnrs["mdf"], psnrs["l2"], True)
    assert f"{p_l2:.3g} *" in test_row and p_l2 < 0.05
    assert "mdf is best by the mean in 2 of 2" in md  # PSNR and PSNR-Y; SSIM and MS-SSIM are all equal
    html = html_path.read_text()
    for source in re.findall(r'src="([^"]+)"', html):
        assert (out / source).is_file(), source
    assert (out / "report_files" / "denoise-dncnn" / "violin-psnr.png").is_file()
    assert "<td class='best'>" in html
