"""mdfloss analyze iqa: the dataset layouts, the statistics against scipy, the bootstrap, the command."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from scipy import optimize, stats

from mdfloss._files import read_csv
from mdfloss.analysis import iqa_data
from mdfloss.analysis.iqa import labelled_predictors, oriented, plot_name
from mdfloss.analysis.iqa_data import correlations, krocc, logistic4, plcc, srocc
from mdfloss.cli import main

SIZE = 40
LEVELS = (1, 2, 3, 4, 5)


def _photo(rng: np.random.Generator) -> np.ndarray:
    y, x = np.mgrid[0:SIZE, 0:SIZE] / SIZE
    base = np.stack([np.sin(7 * x + k) * np.cos(5 * y - k) for k in range(3)], -1) * 80 + 128
    return np.clip(base + rng.normal(0, 8, base.shape), 0, 255).astype(np.uint8)


def _distort(image: np.ndarray, kind: int, level: int, rng: np.random.Generator) -> np.ndarray:
    """kind 1: Gaussian noise; kind 2: mean shift; stronger with ``level``."""
    if kind == 1:
        return np.clip(image + rng.normal(0, 4 * level, image.shape), 0, 255).astype(np.uint8)
    return np.clip(image.astype(int) + 6 * level, 0, 255).astype(np.uint8)


def _mos(kind: int, level: int, reference: int) -> float:
    """Quality falls with the level; noise hurts more than a mean shift (higher is better)."""
    return 7.0 - level * (1.0 if kind == 1 else 0.5) + 0.01 * reference


def make_tid2013(root: Path) -> Path:
    """TID2013's layout: reference_images/I01.BMP, distorted_images/i01_01_1.bmp, mos_with_names.txt."""
    rng = np.random.default_rng(0)
    (root / "reference_images").mkdir(parents=True)
    (root / "distorted_images").mkdir()
    lines = []
    for reference in (1, 2):
        clean = _photo(rng)
        Image.fromarray(clean).save(root / "reference_images" / f"I{reference:02d}.BMP")
        for kind, tid_type in ((1, 1), (2, 16)):
            for level in LEVELS:
                name = f"i{reference:02d}_{tid_type:02d}_{level}.bmp"
                Image.fromarray(_distort(clean, kind, level, rng)).save(root / "distorted_images" / name)
                lines.append(f"{_mos(kind, level, reference):.5f} {name}")
    (root / "mos_with_names.txt").write_text("\n".join(lines) + "\n")
    return root


def make_kadid10k(root: Path) -> Path:
    """KADID-10k's layout: images/I01.png and images/I01_01_01.png, dmos.csv (dist_img,ref_img,dmos,var)."""
    rng = np.random.default_rng(1)
    (root / "images").mkdir(parents=True)
    rows = ["dist_img,ref_img,dmos,var"]
    for reference in (1, 2):
        clean = _photo(rng)
        Image.fromarray(clean).save(root / "images" / f"I{reference:02d}.png")
        for kind, kadid_type in ((1, 11), (2, 18)):
            for level in LEVELS:
                name = f"I{reference:02d}_{kadid_type:02d}_{level:02d}.png"
                Image.fromarray(_distort(clean, kind, level, rng)).save(root / "images" / name)
                rows.append(f"{name},I{reference:02d}.png,{_mos(kind, level, reference) - 2:.2f},0.5")
    (root / "dmos.csv").write_text("\n".join(rows) + "\n")
    return root


# -- statistics ------------------------------------------------------------------------------------


def test_hand_computed_small_case():
    x, y = np.array([1.0, 2, 3, 4]), np.array([1.0, 3, 2, 4])
    assert srocc(x, y) == pytest.approx(1 - 6 * 2 / (4 * 15))  # d = (0, 1, -1, 0)
    assert krocc(x, y) == pytest.approx((5 - 1) / 6)  # 5 concordant pairs, 1 discordant
    assert srocc(x, -y) == pytest.approx(-0.8)


def test_rank_statistics_match_scipy_with_ties():
    rng = np.random.default_rng(3)
    x = rng.integers(0, 12, 80).astype(float)
    y = x + rng.normal(0, 4, 80)
    y[:10] = np.round(y[:10])
    assert srocc(x, y) == pytest.approx(stats.spearmanr(x, y).statistic, abs=1e-12)
    assert krocc(x, y) == pytest.approx(stats.kendalltau(x, y).statistic, abs=1e-12)


def test_plcc_is_pearson_after_the_scipy_logistic_fit():
    rng = np.random.default_rng(4)
    x = rng.uniform(20, 40, 150)  # like PSNR
    y = logistic4((x - 30) / 4, 8.0, 1.0, 0.0, 1.0) + rng.normal(0, 0.4, 150)
    value, params = plcc(x, y)

    def raw(x, b1, b2, b3, b4):
        return (b1 - b2) / (1 + np.exp(-(x - b3) / abs(b4))) + b2

    fitted, _ = optimize.curve_fit(raw, x, y, p0=[y.max(), y.min(), x.mean(), x.std()], maxfev=20000)
    assert value == pytest.approx(stats.pearsonr(raw(x, *fitted), y).statistic, abs=1e-6)
    assert value > stats.pearsonr(x, y).statistic  # the fit straightens the sigmoid


def test_the_logistic_recovers_its_own_curve_exactly():
    z, _, _ = iqa_data.standardise(np.linspace(-2, 2, 40))
    y = logistic4(z, 5.0, 1.0, 0.3, 0.7)
    value, params = plcc(z * 3 + 10, y)  # standardising z * 3 + 10 gives back z
    assert value == pytest.approx(1.0, abs=1e-9)
    assert params[:3] == pytest.approx([5.0, 1.0, 0.3], abs=1e-5) and abs(params[3]) == pytest.approx(0.7, abs=1e-5)


def test_plcc_is_never_negative_but_rank_statistics_keep_the_sign():
    x = np.linspace(0, 1, 30)
    result = correlations(x, -x**2, samples=0)
    assert result["srocc"].value == pytest.approx(-1) and result["krocc"].value == pytest.approx(-1)
    assert result["plcc"].value > 0.99 and math.isnan(result["plcc"].low)


def test_degenerate_inputs_give_nan_not_errors():
    assert all(math.isnan(c.value) for c in correlations([1, 2, 3], [1, 2, 3]).values())  # too few pairs
    constant = correlations(np.ones(10), np.arange(10.0), samples=5)
    assert math.isnan(constant["srocc"].value)
    dropped = correlations([1, 2, np.nan, 4, 5, 6], [1, 2, 3, 4, 5, 7], samples=0)
    assert dropped["srocc"].value == pytest.approx(1.0)


def test_bootstrap_interval_covers_the_true_correlation():
    """Bivariate normal with rho = 0.6: Spearman's population value is (6 / pi) asin(rho / 2)."""
    rho = 0.6
    true = {"srocc": 6 / math.pi * math.asin(rho / 2), "krocc": 2 / math.pi * math.asin(rho)}
    rng = np.random.default_rng(5)
    hits = {name: 0 for name in true}
    runs = 30
    for run in range(runs):
        x, y = rng.multivariate_normal([0, 0], [[1, rho], [rho, 1]], 100).T
        result = correlations(x, y, samples=150, seed=run, statistics=("srocc", "krocc"))
        for name, value in true.items():
            assert result[name].low < result[name].value < result[name].high
            hits[name] += result[name].low <= value <= result[name].high
    assert all(runs * 0.8 <= count <= runs for count in hits.values()), hits  # nominal 95 %


# -- datasets --------------------------------------------------------------------------------------


def test_tid2013_layout(tmp_path):
    root = make_tid2013(tmp_path / "tid2013")
    assert iqa_data.detect_format(root) == "tid2013"
    dataset = iqa_data.load(root)
    assert dataset.name == "TID2013" and dataset.higher_is_better and len(dataset.pairs) == 20
    first = dataset.pairs[0]
    assert first.reference.name == "I01.BMP" and first.distorted.name == "i01_01_1.bmp"
    assert first.score == pytest.approx(6.01) and first.kind == "01 additive Gaussian noise"
    assert {p.kind for p in dataset.pairs} == {"01 additive Gaussian noise", "16 mean shift"}


def test_kadid10k_layout(tmp_path):
    root = make_kadid10k(tmp_path / "kadid10k")
    assert iqa_data.detect_format(root) == "kadid10k"
    dataset = iqa_data.load(root)
    assert dataset.name == "KADID-10k" and dataset.higher_is_better and len(dataset.pairs) == 20
    assert dataset.pairs[0].reference.name == "I01.png" and dataset.pairs[0].distorted.name == "I01_11_01.png"
    assert {p.kind for p in dataset.pairs} == {"11 white noise", "18 mean shift"}


def test_csv_layout_with_relative_paths_and_optional_type(tmp_path):
    root = make_kadid10k(tmp_path / "k")
    table = tmp_path / "k" / "pairs.csv"
    table.write_text("reference,distorted,score\nimages/I01.png,images/I01_11_02.png,3.5\n"
                     "images/I01.png,images/I01_11_01.png,4\n")
    assert iqa_data.detect_format(table) == "csv"
    dataset = iqa_data.load(table, higher_is_better=False)
    assert not dataset.higher_is_better and [p.score for p in dataset.pairs] == [3.5, 4.0]
    assert dataset.pairs[0].distorted == root / "images" / "I01_11_02.png" and dataset.pairs[0].kind == ""


@pytest.mark.parametrize("layout, broken, message", [
    ("tid", lambda r: (r / "mos_with_names.txt").write_text("5.1\n"), "line 1: expected 'MOS name'"),
    ("tid", lambda r: (r / "distorted_images" / "i01_01_1.bmp").unlink(), "expected image i01_01_1.bmp"),
    ("tid", lambda r: (r / "reference_images" / "I02.BMP").unlink(), "expected image i02.bmp"),
    ("kadid", lambda r: (r / "dmos.csv").write_text("dist,ref,dmos\n"), "missing dist_img, ref_img"),
    ("kadid", lambda r: (r / "dmos.csv").write_text("dist_img,ref_img,dmos,var\nI01_11_01.png,I01.png,x,0\n"),
     "line 2: dmos: expected a finite number, got 'x'"),
])
def test_layout_mistakes_name_the_file_and_what_was_expected(tmp_path, layout, broken, message):
    root = make_tid2013(tmp_path / "d") if layout == "tid" else make_kadid10k(tmp_path / "d")
    broken(root)
    with pytest.raises((ValueError, FileNotFoundError), match=message):
        iqa_data.load(root)


def test_a_study_file_gives_jnd_scores_per_image(tmp_path):
    from study_fixtures import QUALITY, image_labels, make_study

    from mdfloss.study.design import session_planner
    from mdfloss.study.store import Store

    study = make_study(tmp_path, trials=6, images=2, golden_rate=0.0)
    store, labels = Store(study), image_labels(study)
    rng = np.random.default_rng(0)
    for _ in range(4):
        token = store.create_session(session_planner(store, None, rng))
        for trial in store.upcoming(token, 10)[0]:
            left, right = QUALITY[labels[f"/img/{trial.left}"]], QUALITY[labels[f"/img/{trial.right}"]]
            store.submit(token, trial.id, "left" if left > right else "right", 500)
    assert iqa_data.detect_format(study) == "study"
    dataset = iqa_data.load(study)
    assert len(dataset.pairs) == 6 and {p.kind for p in dataset.pairs} == set(QUALITY)
    assert all(p.reference.is_file() and p.distorted.is_file() for p in dataset.pairs)
    for block in {p.reference for p in dataset.pairs}:
        jnd = {p.kind: p.score for p in dataset.pairs if p.reference == block}
        assert jnd["mdf"] > jnd["l1"] > jnd["l2"] and sum(jnd.values()) == pytest.approx(0, abs=1e-6)


# -- the command -----------------------------------------------------------------------------------


def test_labels_and_orientation():
    assert labelled_predictors(["ssim", "l2"], ["ssim", "psnr"]) == {
        "ssim": ("metric", "ssim"), "psnr": ("metric", "psnr"), "loss:ssim": ("loss", "ssim"), "l2": ("loss", "l2")}
    assert list(oriented(np.array([1.0, 2.0]), False)) == [-1.0, -2.0]
    assert plot_name("mdf:Ds_JPEG") == "scatter-mdf_Ds_JPEG.png"


def test_command_on_tid2013_layout_writes_every_output(tmp_path, capsys):
    root = make_tid2013(tmp_path / "tid2013")
    out = tmp_path / "out"
    code = main(["analyze", "iqa", "--dataset", str(root), "--metric", "psnr,mdsi", "--loss", "l2",
                 "--bootstrap", "30", "--out", str(out)])
    assert code == 0, capsys.readouterr().err
    values = read_csv(out / "iqa-values.csv")
    assert len(values) == 20 and list(values[0]) == ["distorted", "reference", "distortion", "score", "psnr", "mdsi", "l2"]
    assert float(values[0]["l2"]) > 0  # raw loss values, not negated
    rows = read_csv(out / "iqa-correlations.csv")
    overall = {r["predictor"]: r for r in rows if r["group"] == "all"}
    assert set(overall) == {"psnr", "mdsi", "l2"} and overall["l2"]["higher_is_better"] == "false"
    # within a type quality falls with the level, and every predictor sees it: oriented, all agree
    noise = {r["predictor"]: float(r["srocc"]) for r in rows if r["group"] == "01 additive Gaussian noise"}
    assert all(value > 0.8 for value in noise.values()), noise
    assert float(overall["psnr"]["srocc"]) == pytest.approx(float(overall["l2"]["srocc"]), abs=0.01)  # same ranks
    for r in rows:
        if r["srocc_low"]:
            assert float(r["srocc_low"]) <= float(r["srocc"]) + 1e-9 <= float(r["srocc_high"]) + 2e-9
    report = (out / "iqa.md").read_text()
    assert "## Overall" in report and "SROCC per distortion type" in report and "16 mean shift" in report
    assert "analyze iqa --dataset" in report and "(scatter-psnr.png)" in report
    assert all((out / f"scatter-{name}.png").stat().st_size > 1000 for name in ("psnr", "mdsi", "l2"))


def test_command_on_kadid10k_layout(tmp_path, capsys):
    root = make_kadid10k(tmp_path / "kadid")
    code = main(["analyze", "iqa", "--dataset", str(root), "--metric", "ssim", "--bootstrap", "0",
                 "--max-pairs", "10", "--out", str(tmp_path / "o")])
    assert code == 0, capsys.readouterr().err
    rows = read_csv(tmp_path / "o" / "iqa-correlations.csv")
    assert [r["group"] for r in rows] == ["all", "11 white noise", "18 mean shift"] and rows[0]["n"] == "10"
    assert float(rows[1]["srocc"]) > 0.8 and rows[1]["srocc_low"] == ""


@pytest.mark.parametrize("extra, message", [
    ([], "--loss/--metric: expected at least one loss or metric"),
    (["--metric", "psnr,vif"], "--metric: expected comma-separated names from psnr"),
    (["--metric", "psnr", "--scores-lower-is-better"], "--scores-lower-is-better: expected a CSV dataset"),
    (["--metric", "psnr", "--min-golden", "2"], "--min-golden: expected a fraction in [0, 1], got 2.0"),
])
def test_command_mistakes_are_one_line_and_exit_code_2(tmp_path, capsys, extra, message):
    root = make_tid2013(tmp_path / "tid")
    code = main(["analyze", "iqa", "--dataset", str(root), "--out", str(tmp_path / "o"), *extra])
    err = capsys.readouterr().err
    assert code == 2 and message in err and "Traceback" not in err


def test_command_on_a_missing_dataset(tmp_path, capsys):
    code = main(["analyze", "iqa", "--dataset", str(tmp_path / "nowhere"), "--metric", "psnr", "--out", str(tmp_path)])
    err = capsys.readouterr().err
    assert code == 2 and "--dataset: expected a dataset folder, a CSV file or a study file" in err
