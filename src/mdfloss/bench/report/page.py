"""The report page as document blocks, built once from ``manifest.json`` and the runs' results."""

from __future__ import annotations

import datetime
import math
from pathlib import Path
from typing import Any

from ... import __version__
from ..._files import read_csv
from ...document import (
    Block,
    Cell,
    Code,
    CodeBlock,
    Details,
    Heading,
    Image,
    Paragraph,
    Table,
)
from ...metrics.image import HIGHER_IS_BETTER, LABELS
from ..config import recorded_config
from ..convergence import ConvergenceRule
from ..evaluate import INPUT_LABEL
from ..manifest import INPUT_RESULTS, experiment_results, runs_of, validation_psnr
from .crops import crop_figure, image_paths
from .plots import validation_plot, violin_plots
from .stats import (
    ALPHA,
    STATISTICS,
    ExperimentResults,
    mean_interval,
    paired_test,
    prob_better,
    prob_better_interval,
    rank_marks,
    statistic,
    wins,
)

TITLE = "mdfloss benchmark report"
FILES = "report_files"
TASK_TITLES = {"sisr": "Single-image super-resolution", "denoise": "Denoising", "jpeg": "JPEG artefact removal"}
DIGITS = {"psnr": 2, "psnr_y": 2, "ssim": 4, "ms_ssim": 4, "haarpsi": 4, "dss": 4, "mdsi": 4, "lpips": 4}
LEGEND = (
    "Per dataset and metric: the mean over images and the worst 5 % (the 5th percentile of PSNR, SSIM and "
    "MS-SSIM, HaarPSI and DSS, the 95th of MDSI and LPIPS); best in bold, second best in italics. (input) is the degraded input itself "
    "(bicubic upsampling for super-resolution), not ranked. Metrics are measured on the 8-bit outputs; "
    "p-values are one-tailed paired t-tests (H1: the reference loss is better), * for p < 0.05."
)


def report_page(out: Path, manifest: dict[str, Any]) -> list[Block]:
    """The whole report; writes its figures under ``out/report_files/<experiment>/``."""
    stamp = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    blocks: list[Block] = [Heading(1, TITLE), Paragraph(f"mdfloss {__version__}, {stamp}.")]
    commands = manifest.get("commands", [])
    if commands:
        blocks += [Paragraph("Command:" if len(commands) == 1 else "Commands, in order:"), CodeBlock(commands)]
    blocks.append(Paragraph(LEGEND))
    for name, entry in manifest["experiments"].items():
        results = ExperimentResults(experiment_results(out, entry), entry.get("losses", []), entry.get("datasets", []))
        if results.losses:
            baseline = ExperimentResults(read_csv(out / name / INPUT_RESULTS), [INPUT_LABEL], results.datasets)
            blocks += _experiment(out, name, entry, results, baseline)
    return blocks


def _experiment(out: Path, name: str, entry: dict[str, Any], results: ExperimentResults,
                baseline: ExperimentResults) -> list[Block]:
    title = (f"{TASK_TITLES.get(entry['task'], entry['task'])}: {entry['model']} ({entry.get('model_size')}), "
             f"{entry.get('iterations', '?')} iterations")
    blocks: list[Block] = [Heading(2, title), _runs_table(entry, results.losses), _variation(entry, results)]
    convergence = _convergence_table(out, entry, results, baseline)
    if convergence is not None:
        blocks += [Heading(3, "Convergence"), Paragraph(CONVERGENCE_LEGEND), convergence]
    skipped = entry.get("skipped") or {}
    blocks += [Paragraph("Skipped ", Code(label), f": {reason}") for label, reason in skipped.items()]
    if entry.get("lpips"):
        blocks.append(Paragraph(f"Metrics: {entry['lpips']}."))
    blocks += [Heading(3, "Mean and worst 5 %"), _summary_table(results, baseline)]
    options = entry.get("config", {}).get("report") or {}
    references = _references(options, results.losses)
    if results.repeated:
        blocks += [Heading(3, "Over runs and images"), Paragraph(OVER_RUNS_LEGEND), _over_runs_table(results)]
        for reference in references:
            blocks += _prob_better_table(results, reference)
    if references:
        blocks.append(Heading(3, "One-tailed paired t-tests"))
        if results.repeated:
            blocks.append(Paragraph("Over the test images, each image's value being its mean over the loss's runs: "
                                    "these tests hold for the given runs only, not for a new training run."))
        for reference in references:
            blocks += _tests_table(results, reference)
        blocks += _wins(results, references[0])
    folder = out / FILES / name
    figures = violin_plots(folder, results, references)
    curve = validation_plot(out, folder, entry, results.losses)
    blocks.append(Heading(3, "Distributions"))
    blocks += [Image(path.relative_to(out).as_posix(), path.stem) for path in figures + ([curve] if curve else [])]
    blocks.append(Heading(3, "Crops"))
    count, size = int(options.get("crop_images", 2)), int(options.get("crop_size", 64))
    for dataset in results.datasets:
        crops = crop_figure(out, folder, name, entry, results, dataset, count, size)
        if crops:
            blocks += [Paragraph(f"{dataset}:"), Image(crops.relative_to(out).as_posix(), f"crops {dataset}"),
                       _full_resolution(out, name, entry, results, dataset)]
    return blocks


CONVERGENCE_LEGEND = (
    "Per run: its length and how it ended (converged: the least-squares line through its validation PSNR over the "
    "last window predicted a gain under the threshold over one more window; cap: it reached the most iterations "
    "train.converge allows; budget: it ran its iterations without --converge), the validation PSNR (dB) at the "
    "end, the gain that line predicts (dB per window; the window is a quarter of the iterations unless "
    "train.converge says otherwise), the best validation PSNR and where the selected weights were taken; then the "
    "test PSNR of the selected weights above the degraded input, per dataset (mean over images)."
)
OVER_RUNS_LEGEND = (
    "Mean over runs and images, with its 95 % interval from a two-level bootstrap (resample the runs, then the "
    "images within each run); P(A > B) is the probability that a run of A scores better than a run of B "
    "(mean over the images; ties count one half), with its 95 % bootstrap interval (runs of each loss resampled, "
    "the images resampled once for both)."
)


def _variation(entry: dict[str, Any], results: ExperimentResults) -> Paragraph:
    """What the repeats varied, or that run-to-run variation was not sampled."""
    if not results.repeated:
        return Paragraph("Each loss was trained once: run-to-run variation (the training seed, an MDF loss's phase-1 "
                         "draw) was not sampled, and the tests below are over test images only.")
    counts = ", ".join(f"{loss} {count}" for loss, count in results.repeats.items())
    sources = "; ".join(entry.get("variation") or ["nothing recorded"])
    return Paragraph(f"Runs per loss: {counts}. Varied between the runs of a loss: {sources}.")


def _convergence_table(out: Path, entry: dict[str, Any], results: ExperimentResults,
                       baseline: ExperimentResults) -> Table | None:
    config = recorded_config(entry.get("config") or {})
    budget = int(entry.get("iterations") or config["train"]["iters"] or 1)
    rule = ConvergenceRule.from_config(config["train"]["converge"], budget)
    rows = []
    for loss in results.losses:
        for run in runs_of(entry, loss):
            curve = validation_psnr(out, run)
            if not curve:
                continue
            repeat = int(run.get("repeat", 0))
            selected = (run.get("best") or {}).get(run.get("selected", ""), {})
            gains = []
            for dataset in results.datasets:
                ours, theirs = results.runs(dataset, "psnr", loss), baseline.get(dataset, "psnr", INPUT_LABEL)
                ids = results.repeat_ids.get((dataset, loss), [])
                ok = ours is not None and theirs is not None and repeat in ids
                gains.append(f"{ours[ids.index(repeat)].mean() - theirs.mean():+.2f}" if ok else "")
            gain = rule.predicted_gain(curve)
            rows.append([loss, str(repeat), str(curve[-1][0]), run.get("status", "budget"), f"{curve[-1][1]:.2f}",
                         "—" if math.isnan(gain) else f"{gain:+.3f}", f"{max(v for _, v in curve):.2f}",
                         str(selected.get("iteration", "last")), *gains])
    if not rows:
        return None
    return Table(["loss", "repeat", "iterations", "ended", "val PSNR", "predicted gain", "best val PSNR",
                  "selected at", *[f"{dataset} vs input" for dataset in results.datasets]], rows, left=1)


def _over_runs_table(results: ExperimentResults) -> Table:
    """Mean [95 % interval] over runs and images of every loss per dataset and metric."""
    rows = []
    for dataset, metric in results.cells():
        cells = []
        for loss in results.losses:
            values = results.runs(dataset, metric, loss)
            if values is None:
                cells.append("")
                continue
            mean, low, high = mean_interval(values)
            cells.append(f"{_format(mean, metric)} [{_format(low, metric)}, {_format(high, metric)}]")
        rows.append([dataset, f"{LABELS[metric]} {'↑' if HIGHER_IS_BETTER[metric] else '↓'}", *cells])
    return Table(["dataset", "metric", *results.losses], rows, left=2)


def _prob_better_table(results: ExperimentResults, reference: str) -> list[Block]:
    """P(reference > other) [95 % interval] per dataset and metric."""
    others = [loss for loss in results.losses if loss != reference]
    if not others:
        return []
    rows = []
    for dataset, metric in results.cells():
        ref = results.runs(dataset, metric, reference)
        cells = []
        for other in others:
            values = results.runs(dataset, metric, other)
            if ref is None or values is None:
                cells.append("")
                continue
            higher = HIGHER_IS_BETTER[metric]
            low, high = prob_better_interval(ref, values, higher)
            cells.append(f"{prob_better(ref, values, higher):.2f} [{low:.2f}, {high:.2f}]")
        rows.append([dataset, LABELS[metric], *cells])
    return [Paragraph(f"P({reference} > other) over runs:"), Table(["dataset", "metric", *others], rows, left=2)]


def _references(options: dict[str, Any], losses: list[str]) -> list[str]:
    """``report.references`` of the config, by default every loss whose label starts with ``mdf``."""
    wanted = options.get("references")
    if wanted is None:
        wanted = [loss for loss in losses if loss.startswith("mdf")]
    return [loss for loss in wanted if loss in losses]


def _format(value: float, metric: str) -> str:
    return "nan" if math.isnan(value) else f"{value:.{DIGITS[metric]}f}"


def _runs_table(entry: dict[str, Any], losses: list[str]) -> Table:
    rows = []
    for loss in losses:
        for run in runs_of(entry, loss):
            selected = run.get("selected", "?")
            best = (run.get("best") or {}).get(selected)
            at = f"{selected} @ {best['iteration']}" if best else str(selected)
            minutes = f"{run['train_seconds'] / 60:.1f} min" if "train_seconds" in run else "?"
            spec = run.get("spec", "?")
            if run.get("mdf_options"):
                spec += " " + " ".join(f"{key}={value}" for key, value in sorted(run["mdf_options"].items()))
            if run.get("official_source"):
                spec += f" (from {Path(run['official_source']).name})"
            if run.get("scale_to"):
                constant = f" x {run['loss_scale']:.4g}" if "loss_scale" in run else ""
                spec += f"{constant} (scaled to {run['scale_to']})"
            rows.append([loss, str(run.get("repeat", 0)), Cell(Code(spec)), str(run.get("iterations", "?")), minutes, at])
    return Table(["loss", "repeat", "spec", "iterations", "train time", "selected at"], rows, left=3)


def _summary_table(results: ExperimentResults, baseline: ExperimentResults) -> Table:
    """Mean and worst 5 % of every loss per dataset and metric, ranked; the degraded input's beside them."""
    rows = []
    for dataset, metric in results.cells():
        higher = HIGHER_IS_BETTER[metric]
        for kind in STATISTICS:
            values = [math.nan if (data := results.get(dataset, metric, loss)) is None
                      else statistic(kind, data, higher) for loss in results.losses]
            cells = [Cell(_format(v, metric), rank) for v, rank in zip(values, rank_marks(values, higher))]
            data = baseline.get(dataset, metric, INPUT_LABEL)
            cells.append(Cell("" if data is None else _format(statistic(kind, data, higher), metric)))
            rows.append([dataset, f"{LABELS[metric]} {'↑' if higher else '↓'} {kind}", *cells])
    return Table(["dataset", "metric", *results.losses, "(input)"], rows, left=2)


def _tests_table(results: ExperimentResults, reference: str) -> list[Block]:
    """p-values of ``reference`` against each other loss; ``—`` where the test is undefined."""
    others = [loss for loss in results.losses if loss != reference]
    if not others:
        return []
    rows = []
    for dataset, metric in results.cells():
        ref = results.get(dataset, metric, reference)
        cells = []
        for other in others:
            values = results.get(dataset, metric, other)
            p = math.nan if ref is None or values is None else paired_test(ref, values, HIGHER_IS_BETTER[metric])
            cells.append("—" if math.isnan(p) else f"{p:.3g}{' *' if p < ALPHA else ''}")
        rows.append([dataset, LABELS[metric], *cells])
    return [Paragraph(f"{reference} against each other loss (p-values):"),
            Table(["dataset", "metric", *others], rows, left=2)]


def _wins(results: ExperimentResults, reference: str) -> list[Block]:
    counted = wins(results, reference)
    mean, worst = STATISTICS
    blocks: list[Block] = [Paragraph(
        f"{reference} is best by the mean in {counted.won[mean]} of {counted.cells[mean]} (dataset, metric) cells "
        f"and by the worst 5 % in {counted.won[worst]} of {counted.cells[worst]}.")]
    if counted.best_mean_elsewhere:
        blocks.append(Paragraph(f"Best mean where {reference} is not: " + "; ".join(counted.best_mean_elsewhere) + "."))
    return blocks


def _full_resolution(out: Path, name: str, entry: dict[str, Any], results: ExperimentResults, dataset: str) -> Details:
    """Every image of ``dataset`` as thumbnails linking to the full-resolution files (HTML only)."""
    rows = []
    for image in results.images[dataset]:
        paths = image_paths(out, name, entry, results.losses, dataset, Path(image).stem)
        rows.append([Cell(image=path.relative_to(out).as_posix()) if path and path.is_file() else Cell()
                     for _, path in paths])
    return Details(f"All {dataset} images at full resolution", Table(["reference", "input", *results.losses], rows))
