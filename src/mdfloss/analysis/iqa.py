r"""Losses and metrics as full-reference quality predictors (paper section 6, Fig. 9).

Every predictor (a loss of :func:`mdfloss.losses.build_loss`, or a metric of
:mod:`mdfloss.metrics`) is evaluated on every (distorted, reference) pair of a dataset
(:mod:`.iqa_data`), and its values are correlated with the human scores, overall and per
distortion type.

**Signs.** Losses and MDSI are lower-is-better; every other metric is higher-is-better. Before
any statistic a predictor is *oriented*, :math:`q = v` when higher is better and :math:`q = -v`
otherwise, and so are the human scores (a DMOS-like CSV, ``higher_is_better=False``, is
negated). A positive SROCC or KROCC therefore always means agreement with people, whatever the
predictor's convention. PLCC is taken after the logistic fit (:func:`.iqa_data.plcc`), which can
bend either way, so it is never negative: read its size, and the sign from SROCC. The values in
the CSV of values and on the scatter plots are the raw ones (a loss as the loss reports it).
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from .._files import read_rgb, write_atomically, write_csv
from ..document import (
    Block,
    Cell,
    Code,
    CodeBlock,
    Heading,
    Image,
    Paragraph,
    Table,
    to_markdown,
)
from ..losses.spec import loss_label, loss_spec
from .iqa_data import (
    STATISTICS,
    Correlation,
    Dataset,
    correlations,
    fit_logistic,
    logistic4,
    standardise,
)

METRICS = ("psnr", "psnr_y", "ssim", "ms_ssim", "haarpsi", "dss", "mdsi")
"""The metrics ``--metric`` accepts (LPIPS is a loss: ``--loss lpips``)."""
ALL = "all"
VALUES_CSV, CORRELATIONS_CSV, REPORT_MD = "iqa-values.csv", "iqa-correlations.csv", "iqa.md"

Measure = Callable[[torch.Tensor, torch.Tensor], float]


@dataclass(frozen=True)
class Predictor:
    """``measure(distorted, reference)`` on (1, 3, H, W) tensors in [0, 1]; ``spec`` says where it came from."""

    measure: Measure
    higher_is_better: bool
    spec: str


def metric_names(text: str) -> list[str]:
    """``"psnr,ssim"`` -> ["psnr", "ssim"]; ValueError naming ``--metric`` for an unknown one."""
    names = list(dict.fromkeys(part.strip().lower() for part in text.split(",") if part.strip()))
    unknown = [name for name in names if name not in METRICS]
    if unknown or not names:
        raise ValueError(f"--metric: expected comma-separated names from {', '.join(METRICS)}, got {text!r}")
    return names


def metric_predictor(name: str) -> Predictor:
    """A metric of :mod:`mdfloss.metrics` as a predictor (NaN where the image is too small for it)."""
    from ..functional import MS_SSIM_MIN_SIDE
    from ..metrics import image
    from ..metrics.dss import dss, pooled_count
    from ..metrics.haarpsi import MIN_SIZE, haarpsi
    from ..metrics.mdsi import mdsi

    def small(x: torch.Tensor, side: int) -> bool:
        return min(x.shape[-2:]) < side

    measures: dict[str, Measure] = {
        "psnr": lambda d, r: float(image.psnr(d, r)[0]),
        "psnr_y": lambda d, r: float(image.psnr_y(d, r)[0]),
        "ssim": lambda d, r: float(image.ssim(d, r)[0]),
        "ms_ssim": lambda d, r: math.nan if small(d, MS_SSIM_MIN_SIDE) else float(image.ms_ssim(d, r)[0]),
        "haarpsi": lambda d, r: math.nan if small(d, MIN_SIZE) else float(haarpsi(d, r, reduction="none")[0]),
        "dss": lambda d, r: (float(dss(d, r, reduction="none")[0])
                             if pooled_count(*d.shape[-2:], image.DSS_PERCENTILE) else math.nan),
        "mdsi": lambda d, r: float(mdsi(d, r, reduction="none")[0]),
    }
    return Predictor(measures[name], image.HIGHER_IS_BETTER[name], name)


def loss_predictor(loss: torch.nn.Module, spec: str) -> Predictor:
    """A loss (lower is better) as a predictor: ``loss(distorted, reference)``."""
    return Predictor(lambda d, r: float(loss(d, r)), False, spec)


def read_image(path: Path) -> torch.Tensor:
    """(1, 3, H, W) float32 in [0, 1]; grey images are repeated to 3 channels."""
    array = read_rgb(path).astype(np.float32) / 255
    return torch.from_numpy(array).permute(2, 0, 1)[None].contiguous()


def score_dataset(dataset: Dataset, predictors: dict[str, Predictor], device: torch.device,
             progress: Callable[[int, int], None] | None = None) -> dict[str, np.ndarray]:
    """``{label: raw value per pair}``, in the order of ``dataset.pairs``; references are read once."""
    values = {label: np.empty(len(dataset.pairs)) for label in predictors}
    references: dict[Path, torch.Tensor] = {}
    with torch.inference_mode():
        for index, pair in enumerate(dataset.pairs):
            if pair.reference not in references:
                references[pair.reference] = read_image(pair.reference).to(device)
            reference = references[pair.reference]
            distorted = read_image(pair.distorted).to(device)
            if distorted.shape != reference.shape:
                raise ValueError(f"--dataset: expected {pair.distorted.name} to have the size of its reference "
                                 f"{pair.reference.name} {tuple(reference.shape[-2:])}, got {tuple(distorted.shape[-2:])}")
            for label, predictor in predictors.items():
                values[label][index] = predictor.measure(distorted, reference)
            if progress is not None:
                progress(index + 1, len(dataset.pairs))
    return values


def oriented(values: np.ndarray, higher_is_better: bool) -> np.ndarray:
    """``values`` if higher is better, else ``-values``: higher always means better."""
    return values if higher_is_better else -values


def groups(dataset: Dataset) -> dict[str, np.ndarray]:
    """``{"all": every index, type: its indices}``; no per-type groups when no pair has a type."""
    kinds = [pair.kind for pair in dataset.pairs]
    result = {ALL: np.arange(len(kinds))}
    for kind in sorted(set(kinds) - {""}):
        result[kind] = np.flatnonzero(np.array(kinds) == kind)
    return result


def correlate(dataset: Dataset, predictors: dict[str, Predictor], values: dict[str, np.ndarray], *,
              samples: int, seed: int) -> dict[str, dict[str, dict[str, Correlation]]]:
    """``{label: {group: {statistic: Correlation}}}`` on oriented predictor values and scores."""
    scores = oriented(np.array([pair.score for pair in dataset.pairs]), dataset.higher_is_better)
    parts = groups(dataset)
    return {label: {group: correlations(oriented(values[label][index], predictors[label].higher_is_better),
                                        scores[index], samples=samples, seed=seed)
                    for group, index in parts.items()}
            for label in predictors}


def write_values(path: Path, dataset: Dataset, values: dict[str, np.ndarray]) -> Path:
    """One row per pair: the images, the type, the score and every predictor's raw value."""
    rows = [{"distorted": pair.distorted.name, "reference": pair.reference.name, "distortion": pair.kind,
             "score": f"{pair.score:.6g}", **{label: f"{values[label][i]:.8g}" for label in values}}
            for i, pair in enumerate(dataset.pairs)]
    write_csv(path, ["distorted", "reference", "distortion", "score", *values], rows)
    return path


def write_correlations(path: Path, results: dict[str, dict[str, dict[str, Correlation]]],
                       predictors: dict[str, Predictor], counts: dict[str, dict[str, int]]) -> Path:
    """One row per (predictor, group): n, and each statistic with its 95 % interval."""
    fields = ["predictor", "spec", "higher_is_better", "group", "n"]
    fields += [f"{name}{suffix}" for name in STATISTICS for suffix in ("", "_low", "_high")]
    rows = []
    for label, by_group in results.items():
        for group, stats in by_group.items():
            row = {"predictor": label, "spec": predictors[label].spec,
                   "higher_is_better": str(predictors[label].higher_is_better).lower(), "group": group,
                   "n": counts[label][group]}
            for name, c in stats.items():
                row |= {name: _number(c.value), f"{name}_low": _number(c.low), f"{name}_high": _number(c.high)}
            rows.append(row)
    write_csv(path, fields, rows)
    return path


def valid_counts(dataset: Dataset, values: dict[str, np.ndarray]) -> dict[str, dict[str, int]]:
    """Pairs with a finite value, per predictor and group."""
    parts = groups(dataset)
    return {label: {group: int(np.isfinite(v[index]).sum()) for group, index in parts.items()}
            for label, v in values.items()}


def _number(value: float) -> str:
    return "" if math.isnan(value) else f"{value:.4f}"


def _with_interval(c: Correlation) -> str:
    if math.isnan(c.value):
        return "-"
    return f"{c.value:.3f}" if math.isnan(c.low) else f"{c.value:.3f} [{c.low:.3f}, {c.high:.3f}]"


def _ranked(cells: list[tuple[str, float]]) -> list[Cell]:
    """Cells with the best (highest) value ranked 1 and the second ranked 2."""
    order = sorted((v for _, v in cells if not math.isnan(v)), reverse=True)
    return [Cell(text, rank=(order.index(v) + 1 if not math.isnan(v) and order.index(v) < 2 else 0))
            for text, v in cells]


def report_markdown(command: str, dataset: Dataset, predictors: dict[str, Predictor],
                    results: dict[str, dict[str, dict[str, Correlation]]], counts: dict[str, dict[str, int]],
                    samples: int, plots: dict[str, str]) -> str:
    """The overall table (each statistic with its interval), SROCC per distortion type, the plots."""
    from .._version import __version__

    labels = list(results)
    blocks: list[Block] = [
        Heading(1, f"Losses and metrics as quality predictors: {dataset.name}"),
        Paragraph(f"Written by mdfloss {__version__}:"), CodeBlock([command]),
        Paragraph(f"{len(dataset.pairs)} pairs, scores {'higher' if dataset.higher_is_better else 'lower'} is better"
                  + (f"; {dataset.note}" if dataset.note else "") + ". Predictors: "
                  + ", ".join(f"{label} = {p.spec} ({'higher' if p.higher_is_better else 'lower'} is better)"
                              for label, p in predictors.items()) + "."),
        Paragraph("Signs: every predictor and the scores are oriented so that higher means better (a loss, or "
                  "MDSI, is negated) before any statistic, so a positive SROCC or KROCC means agreement with "
                  "people. PLCC is Pearson's r after fitting the 4-parameter logistic of VQEG to each predictor "
                  "and is never negative. Intervals: 95 % percentile bootstrap over pairs "
                  f"({samples} resamples; the logistic is refitted on each); they describe these images, not "
                  "other contents. Bold: best, italics: second best."),
        Heading(2, "Overall"),
        Table(["predictor", "n", "SROCC", "KROCC", "PLCC"],
              [[Code(label), str(counts[label][ALL]),
                *(_with_interval(results[label][ALL][name]) for name in STATISTICS)] for label in labels], left=1),
        Table(["statistic", *labels], [
            [name.upper(), *_ranked([(f"{results[label][ALL][name].value:.3f}", results[label][ALL][name].value)
                                     for label in labels])] for name in STATISTICS], left=1),
    ]
    kinds = [group for group in next(iter(results.values())) if group != ALL]
    if kinds:
        blocks += [
            Heading(2, "SROCC per distortion type"),
            Paragraph("Within one type the ranking of its levels and images; 95 % intervals in the CSV."),
            Table(["distortion", "n", *labels],
                  [[kind, str(max(counts[label][kind] for label in labels)),
                    *_ranked([(_number(results[label][kind]["srocc"].value) or "-", results[label][kind]["srocc"].value)
                              for label in labels])] for kind in kinds], left=1),
        ]
    blocks += [Heading(2, "Scatter plots"),
               Paragraph("Raw predictor value against the human score, with the fitted logistic: ")]
    blocks += [Image(name, label) for label, name in plots.items()]
    return to_markdown(blocks)


def plot_name(label: str) -> str:
    """A file name for ``label``'s scatter plot: ``scatter-<label with odd characters as _>.png``."""
    return "scatter-" + re.sub(r"[^A-Za-z0-9._-]+", "_", label).strip("_") + ".png"


def scatter(path: Path, dataset: Dataset, label: str, predictor: Predictor, raw: np.ndarray,
            stats: dict[str, Correlation]) -> Path:
    """Raw value (x) against score (y), one colour per distortion type, and the fitted logistic."""
    from matplotlib.figure import Figure

    scores = np.array([pair.score for pair in dataset.pairs])
    kinds = [pair.kind for pair in dataset.pairs]
    figure = Figure(figsize=(6.4, 4.8), layout="constrained")
    ax = figure.subplots()
    palette = [f"C{i}" for i in range(10)]
    markers = "os^vD"
    for k, kind in enumerate(sorted(set(kinds))):
        index = [i for i, item in enumerate(kinds) if item == kind]
        ax.scatter(raw[index], scores[index], s=8, alpha=0.6, linewidths=0, color=palette[k % 10],
                   marker=markers[(k // 10) % len(markers)], label=kind or None)
    keep = np.isfinite(raw)
    if keep.sum() >= 4:
        x = oriented(raw[keep], predictor.higher_is_better)
        y = oriented(scores[keep], dataset.higher_is_better)
        z, mean, sd = standardise(x)
        params = fit_logistic(z, y)
        if params is not None:
            grid = np.linspace(x.min(), x.max(), 200)
            curve = oriented(logistic4((grid - mean) / sd, *params), dataset.higher_is_better)
            ax.plot(oriented(grid, predictor.higher_is_better), curve, "k-", linewidth=1.2, label="logistic fit")
    ax.set_xlabel(f"{label} ({'higher' if predictor.higher_is_better else 'lower'} is better)")
    ax.set_ylabel(f"score ({'higher' if dataset.higher_is_better else 'lower'} is better)")
    ax.set_title(f"{dataset.name}: {label}  SROCC {stats['srocc'].value:.3f}  KROCC {stats['krocc'].value:.3f}  "
                 f"PLCC {stats['plcc'].value:.3f}", fontsize=9)
    ax.grid(True, alpha=0.3)
    if any(kinds) and len(set(kinds)) <= 30:
        ax.legend(fontsize=5, ncol=2, markerscale=1.5, loc="best")
    return write_atomically(path, lambda temporary: figure.savefig(temporary, format="png", dpi=110))


def write_report(out: Path, command: str, dataset: Dataset, predictors: dict[str, Predictor],
                 values: dict[str, np.ndarray], samples: int, seed: int) -> list[Path]:
    """Every output of ``mdfloss analyze iqa`` into ``out``: values, correlations, Markdown, plots."""
    results = correlate(dataset, predictors, values, samples=samples, seed=seed)
    counts = valid_counts(dataset, values)
    plots = {label: plot_name(label) for label in predictors}
    written = [write_values(out / VALUES_CSV, dataset, values),
               write_correlations(out / CORRELATIONS_CSV, results, predictors, counts)]
    written += [scatter(out / plots[label], dataset, label, predictors[label], values[label], results[label][ALL])
                for label in predictors]
    text = report_markdown(command, dataset, predictors, results, counts, samples, plots)
    written.append(write_atomically(out / REPORT_MD, lambda temporary: Path(temporary).write_text(text, encoding="utf-8")))
    return written


def labelled_predictors(losses: Sequence[str], metrics: Sequence[str]) -> dict[str, tuple[str, str]]:
    """``{label: ("loss" or "metric", spec)}``; a loss whose label is a metric's name gets ``loss:``."""
    labelled = {name: ("metric", name) for name in metrics}
    for spec in dict.fromkeys(loss_spec(text) for text in losses):
        label = loss_label(spec)
        label = f"loss:{label}" if label in labelled else label
        labelled[label if label not in labelled else spec] = ("loss", spec)
    return labelled
