r"""Quality datasets with human scores, and the statistics of ``mdfloss analyze iqa``.

Layouts (as distributed; checked against public loaders, since the sets cannot be downloaded here):

* **TID2013** (Ponomarenko et al. 2015, DOI 10.1016/j.image.2014.10.009): ``reference_images/I01.BMP``
  ... ``I25.BMP``, ``distorted_images/i01_01_1.bmp`` (reference, distortion type 01-24, level 1-5)
  and ``mos_with_names.txt``, one line ``"5.51429 i01_01_1.bmp"`` (MOS, then the name) per image;
  MOS in [0, 9], higher is better. The same three names appear in the Hugging Face copy
  xmba15/TID2013 (README) and in MATLAB readers such as June-Snow/DataMining ``getTidData.m``
  (``textscan(fileID, '%f %s')``); references are found by case-insensitive name because the
  reference files are upper case and the distorted ones lower case.
* **KADID-10k** (Lin, Hosu and Saupe, QoMEX 2019): ``images/I01.png`` (references) and
  ``images/I01_01_01.png`` (reference, type 01-25, level 01-05) in one folder, and ``dmos.csv``
  with the header ``dist_img,ref_img,dmos,var``. Despite its name the ``dmos`` column is a
  mean opinion score in [1, 5], higher is better (pyiqa's ``dataset_info.py``: ``"kadid":
  score_range (1, 5), mos_type "mos"``; the reference-like I01_01_01 scores 4.57).
* **CSV**: columns ``reference``, ``distorted``, ``score`` and optionally ``distortion``; paths
  relative to the CSV's folder; ``higher_is_better`` says which way the scores go.
* **study**: a study file of ``mdfloss study`` (:mod:`mdfloss.study`): the answers are scaled per
  image to JND (:func:`mdfloss.study.scaling.scale_answers`), each test condition's image is a
  distorted image of its block's reference, and its distortion type is the condition (the loss
  that made it). JND scores have mean 0 within each image, so the pooled correlation also
  compares images whose offsets are arbitrary; the per-condition groups do not fix that either:
  read the study's correlations as a check, not as an IQA benchmark.

Statistics, with ``x`` a predictor oriented so that higher means better (see :mod:`.iqa`) and
``y`` the human scores oriented the same way:

* SROCC: Pearson's r of the ranks (average ranks for ties), as ``scipy.stats.spearmanr``;
* KROCC: Kendall's :math:`\tau_b`, as ``scipy.stats.kendalltau``;
* PLCC: Pearson's r between ``y`` and the 4-parameter logistic of VQEG (FR-TV Phase II)
  fitted by least squares,

  .. math:: \hat y = \frac{\beta_1 - \beta_2}{1 + e^{-(z - \beta_3)/|\beta_4|}} + \beta_2,
            \qquad z = (x - \bar x) / s_x,

  where standardising ``x`` changes only the parameters (the family is the same) and lets one
  starting point, :math:`(\max y, \min y, 0, 1)`, suit every predictor;
* 95 % intervals: percentile bootstrap over pairs drawn with replacement; each resample's
  logistic is fitted again, starting from the full data's parameters.
"""

from __future__ import annotations

import csv
import math
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .._files import existing_file, read_table

FORMATS = ("tid2013", "kadid10k", "csv", "study")
TID2013_SCORES, KADID_SCORES = "mos_with_names.txt", "dmos.csv"
KADID_COLUMNS = ("dist_img", "ref_img", "dmos", "var")
CSV_COLUMNS = ("reference", "distorted", "score")
TID2013_TYPES = (
    "additive Gaussian noise", "noise in colour components", "spatially correlated noise", "masked noise",
    "high-frequency noise", "impulse noise", "quantisation noise", "Gaussian blur", "image denoising", "JPEG",
    "JPEG2000", "JPEG transmission errors", "JPEG2000 transmission errors", "non-eccentricity pattern noise",
    "local block-wise distortions", "mean shift", "contrast change", "colour saturation change",
    "multiplicative Gaussian noise", "comfort noise", "lossy compression of noisy images",
    "colour quantisation with dither", "chromatic aberrations", "sparse sampling and reconstruction",
)
KADID_TYPES = (
    "Gaussian blur", "lens blur", "motion blur", "colour diffusion", "colour shift", "colour quantisation",
    "colour saturation 1", "colour saturation 2", "JPEG2000", "JPEG", "white noise", "white noise in colour component",
    "impulse noise", "multiplicative noise", "denoise", "brighten", "darken", "mean shift", "jitter",
    "non-eccentricity patch", "pixelate", "quantisation", "colour block", "high sharpen", "contrast change",
)
STATISTICS = ("srocc", "krocc", "plcc")


@dataclass(frozen=True)
class Pair:
    """A distorted image, its reference, its human score and its distortion type."""

    reference: Path
    distorted: Path
    score: float
    kind: str = ""


@dataclass(frozen=True)
class Dataset:
    name: str
    pairs: list[Pair]
    higher_is_better: bool
    """Whether a higher ``score`` means better quality."""
    note: str = ""


def detect_format(path: Path) -> str:
    """The layout of ``path``: a folder with mos_with_names.txt or dmos.csv, a .csv file or a study file."""
    if path.is_dir():
        for name, fmt in ((TID2013_SCORES, "tid2013"), (KADID_SCORES, "kadid10k")):
            if (path / name).is_file():
                return fmt
        raise ValueError(f"--dataset: expected a TID2013 folder (with {TID2013_SCORES}) or a KADID-10k folder "
                         f"(with {KADID_SCORES}), got {path} with neither; or give --format")
    if not path.is_file():
        raise FileNotFoundError(f"--dataset: expected a dataset folder, a CSV file or a study file, got {path} (no such file)")
    if path.read_bytes()[:16] == b"SQLite format 3\x00":
        return "study"
    return "csv"


def load(path: Path, fmt: str | None = None, *, higher_is_better: bool = True, min_golden: float = 1.0) -> Dataset:
    """The dataset at ``path`` in layout ``fmt`` (detected when None)."""
    fmt = fmt or detect_format(path)
    if fmt == "tid2013":
        return load_tid2013(path)
    if fmt == "kadid10k":
        return load_kadid10k(path)
    if fmt == "csv":
        return load_csv(path, higher_is_better)
    if fmt == "study":
        return load_study(path, min_golden)
    raise ValueError(f"--format: expected one of {', '.join(FORMATS)}, got {fmt!r}")


def _folder_index(folder: Path, argument: str) -> dict[str, Path]:
    if not folder.is_dir():
        raise FileNotFoundError(f"{argument}: expected a folder {folder}, found none")
    return {p.name.lower(): p for p in folder.iterdir() if p.is_file()}


def _find(index: dict[str, Path], name: str, where: Path, argument: str) -> Path:
    path = index.get(name.lower())
    if path is None:
        raise FileNotFoundError(f"{argument}: expected image {name} in {where}, found none")
    return path


def _type_name(number: str, names: Sequence[str], what: str) -> str:
    """``"01"`` -> ``"01 additive Gaussian noise"``; unknown numbers keep only the number."""
    index = int(number) if number.isdigit() else 0
    return f"{number} {names[index - 1]}" if 1 <= index <= len(names) else f"{what} {number}"


def load_tid2013(root: Path) -> Dataset:
    """TID2013: ``mos_with_names.txt`` ("MOS name" per line), ``reference_images/``, ``distorted_images/``."""
    scores = existing_file(root / TID2013_SCORES, "--dataset", f"a TID2013 folder with {TID2013_SCORES}")
    references = _folder_index(root / "reference_images", "--dataset")
    distorted = _folder_index(root / "distorted_images", "--dataset")
    pairs = []
    for line_number, line in enumerate(scores.read_text(encoding="utf-8", errors="replace").splitlines(), start=1):
        if not line.strip():
            continue
        parts = line.split()
        try:
            if len(parts) != 2:
                raise ValueError
            score = float(parts[0])
        except ValueError:
            raise ValueError(f"--dataset: {scores} line {line_number}: expected 'MOS name', got {line.strip()!r}") from None
        name = parts[1]
        fields = Path(name).stem.split("_")
        if len(fields) != 3:
            raise ValueError(f"--dataset: {scores} line {line_number}: expected a name like i01_01_1.bmp, got {name!r}")
        reference = _find(references, f"{fields[0]}.bmp", root / "reference_images", "--dataset")
        pairs.append(Pair(reference, _find(distorted, name, root / "distorted_images", "--dataset"), score,
                          _type_name(fields[1], TID2013_TYPES, "type")))
    if not pairs:
        raise ValueError(f"--dataset: expected scores in {scores}, found none")
    return Dataset("TID2013", pairs, True)


def load_kadid10k(root: Path) -> Dataset:
    """KADID-10k: ``dmos.csv`` (dist_img, ref_img, dmos, var) and every image in ``images/``."""
    scores = existing_file(root / KADID_SCORES, "--dataset", f"a KADID-10k folder with {KADID_SCORES}")
    images = _folder_index(root / "images", "--dataset")
    rows = _read_rows(scores, KADID_COLUMNS[:3])
    pairs = []
    for line, row in rows:
        fields = Path(row["dist_img"]).stem.split("_")
        pairs.append(Pair(_find(images, row["ref_img"], root / "images", "--dataset"),
                          _find(images, row["dist_img"], root / "images", "--dataset"),
                          _number(row["dmos"], scores, line, "dmos"),
                          _type_name(fields[1] if len(fields) == 3 else "?", KADID_TYPES, "type")))
    return Dataset("KADID-10k", pairs, True)


def load_csv(path: Path, higher_is_better: bool = True) -> Dataset:
    """A CSV of ``reference, distorted, score[, distortion]``; paths relative to its folder."""
    pairs = []
    for line, row in _read_rows(path, CSV_COLUMNS):
        files = []
        for column in ("reference", "distorted"):
            file = path.parent / row[column]
            if not file.is_file():
                raise FileNotFoundError(f"--dataset: {path} line {line}: {column}: expected an image file, got {file}")
            files.append(file)
        pairs.append(Pair(files[0], files[1], _number(row["score"], path, line, "score"), row.get("distortion") or ""))
    return Dataset(path.name, pairs, higher_is_better)


def load_study(path: Path, min_golden: float = 1.0) -> Dataset:
    """A ``mdfloss study`` file: every test image with its JND within its block (image), scaled from the answers."""
    import io

    from ..study.scaling import scale_answers, screened_answers
    from ..study.server import export_csv
    from ..study.store import Store

    store = Store(path)
    rows = list(csv.DictReader(io.StringIO(export_csv(store))))
    answers, _, excluded = screened_answers(rows, min_golden)
    if not answers:
        raise ValueError(f"--dataset: expected answered test trials in {path}, found none")
    result = scale_answers(answers, excluded=excluded, samples=0)
    scaled = {group.name: dict(zip(group.conditions, group.boot.jnd)) for group in result.groups
              if group.boot is not None and group.name != "all"}
    pairs = []
    for block in store.blocks():
        jnd = scaled.get(block["name"], {})
        reference = store.image_dir / block["reference"]["image"]
        pairs += [Pair(reference, store.image_dir / item["image"], float(jnd[item["label"]]), item["label"])
                  for item in block["test"] if item["label"] in jnd]
    if not pairs:
        raise ValueError(f"--dataset: expected a block of {path} whose answers could be scaled, found none")
    skipped = [g.name for g in result.groups if g.boot is None and g.name != "all"]
    note = (f"JND per image from {len(result.observers)} observers ({len(excluded)} excluded by golden trials); "
            "each image's JNDs have mean 0")
    return Dataset(path.name, pairs, True, note + (f"; not scaled: {', '.join(skipped)}" if skipped else ""))


def _read_rows(path: Path, required: Sequence[str]) -> list[tuple[int, dict[str, str]]]:
    """(line number, row) of every data row of a score file."""
    rows = list(enumerate(read_table(path, required, "--dataset"), start=2))
    if not rows:
        raise ValueError(f"--dataset: expected at least one row in {path}, found none")
    return rows


def _number(text: str, path: Path, line: int, column: str) -> float:
    try:
        value = float(text)
    except (TypeError, ValueError):
        value = math.nan
    if not math.isfinite(value):
        raise ValueError(f"--dataset: {path} line {line}: {column}: expected a finite number, got {text!r}")
    return value


# -- statistics ----------------------------------------------------------------------------------


def logistic4(z: np.ndarray, b1: float, b2: float, b3: float, b4: float) -> np.ndarray:
    """VQEG's 4-parameter logistic: (b1 - b2) / (1 + exp(-(z - b3) / |b4|)) + b2."""
    from scipy.special import expit

    return (b1 - b2) * expit((np.asarray(z, dtype=float) - b3) / max(abs(b4), 1e-12)) + b2


def standardise(x: np.ndarray) -> tuple[np.ndarray, float, float]:
    """``(z, mean, sd)`` with ``z = (x - mean) / sd`` (sd 1 for a constant ``x``)."""
    mean, sd = float(np.mean(x)), float(np.std(x))
    sd = sd if sd > 0 else 1.0
    return (x - mean) / sd, mean, sd


def fit_logistic(z: np.ndarray, y: np.ndarray, start: Sequence[float] | None = None) -> np.ndarray | None:
    """Least-squares parameters of :func:`logistic4` on (z, y), or None when the fit fails."""
    from scipy.optimize import OptimizeWarning, curve_fit

    p0 = list(start) if start is not None else [float(np.max(y)), float(np.min(y)), 0.0, 1.0]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", OptimizeWarning)
        warnings.simplefilter("ignore", RuntimeWarning)
        try:
            params, _ = curve_fit(logistic4, z, y, p0=p0, maxfev=20000)
        except (RuntimeError, ValueError):
            return None
    return params if np.all(np.isfinite(params)) else None


def pearson(a: np.ndarray, b: np.ndarray) -> float:
    """Pearson's r; NaN when either is constant."""
    a, b = a - a.mean(), b - b.mean()
    denominator = math.sqrt(float(a @ a) * float(b @ b))
    return float(a @ b) / denominator if denominator > 0 else math.nan


def srocc(x: np.ndarray, y: np.ndarray) -> float:
    """Spearman's rho: Pearson's r of the average ranks."""
    from scipy.stats import rankdata

    return pearson(rankdata(x), rankdata(y))


def krocc(x: np.ndarray, y: np.ndarray) -> float:
    """Kendall's tau-b."""
    from scipy.stats import kendalltau

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        return float(kendalltau(x, y).statistic)


def plcc(x: np.ndarray, y: np.ndarray, start: Sequence[float] | None = None) -> tuple[float, np.ndarray | None]:
    """Pearson's r between ``y`` and the logistic fitted on standardised ``x``, and the parameters."""
    z, _, _ = standardise(x)
    params = fit_logistic(z, y, start)
    return (pearson(logistic4(z, *params), y) if params is not None else math.nan), params


@dataclass(frozen=True)
class Correlation:
    """One statistic with its bootstrap interval (NaN when it cannot be computed)."""

    value: float
    low: float
    high: float


MIN_PAIRS = 4
"""Fewer pairs give no correlation (the logistic has 4 parameters)."""


def correlations(x: Sequence[float], y: Sequence[float], *, samples: int = 1000, alpha: float = 0.05,
                 seed: int = 0, statistics: Sequence[str] = STATISTICS) -> dict[str, Correlation]:
    """SROCC, KROCC and PLCC of (x, y) with (1 - alpha) percentile bootstrap intervals over pairs.

    Pairs where either is not finite are left out; below :data:`MIN_PAIRS` everything is NaN.
    With ``samples < 2`` the intervals are NaN.
    """
    x, y = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
    keep = np.isfinite(x) & np.isfinite(y)
    x, y = x[keep], y[keep]
    nan = Correlation(math.nan, math.nan, math.nan)
    if len(x) < MIN_PAIRS:
        return {name: nan for name in statistics}
    values, start = {}, None
    for name in statistics:
        if name == "plcc":
            values[name], start = plcc(x, y)
        else:
            values[name] = {"srocc": srocc, "krocc": krocc}[name](x, y)
    if samples < 2:
        return {name: Correlation(values[name], math.nan, math.nan) for name in statistics}
    rng = np.random.default_rng(seed)
    draws: dict[str, list[float]] = {name: [] for name in statistics}
    for _ in range(samples):
        index = rng.integers(0, len(x), len(x))
        bx, by = x[index], y[index]
        for name in statistics:
            if name == "plcc":
                draws[name].append(plcc(bx, by, start)[0])
            else:
                draws[name].append({"srocc": srocc, "krocc": krocc}[name](bx, by))
    result = {}
    for name in statistics:
        sample = np.asarray(draws[name])
        sample = sample[np.isfinite(sample)]
        low, high = (np.percentile(sample, [100 * alpha / 2, 100 * (1 - alpha / 2)]) if len(sample) >= 2
                     else (math.nan, math.nan))
        result[name] = Correlation(values[name], float(low), float(high))
    return result
