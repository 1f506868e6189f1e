"""``report.md`` and ``report.html`` from an output folder's ``manifest.json`` and its runs' results.

Per experiment (task + model):

* a Table-3-style table: for each dataset and metric, the mean and the worst-5 % value (the
  5th percentile of a higher-is-better metric, the 95th of LPIPS) of every loss; the best in
  bold, the second best in italics (red and blue in the HTML, as the paper);
* a one-tailed paired t-test (scipy ``ttest_rel``, pairs = images) of each reference loss
  (``report.references``, by default every label starting with ``mdf``) against every other
  loss, H1: the reference is better; ``*`` marks p < 0.05;
* violin plots of every metric, one panel per dataset, with the mean and its 95 % t interval
  (magenta), the worst-5 % value and its 95 % bootstrap interval (black), red asterisks over
  the losses the first reference beats significantly; LPIPS's axis points down, so better is up;
* validation PSNR during training, per loss;
* side-by-side crops of the same regions for every loss (the images where the losses disagree
  most; in each, the smoothest region of the reference and the region with the largest mean
  error), and in the HTML links to every full-resolution output.
"""

from __future__ import annotations

import datetime
import html
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from .. import __version__
from .._files import read_csv, write_atomically
from ..metrics.image import HIGHER_IS_BETTER, LABELS, METRICS
from .evaluate import INPUT_LABEL
from .manifest import INPUT_RESULTS, experiment_results, read_manifest

FILES = "report_files"
ALPHA = 0.05
TASK_TITLES = {"sisr": "Single-image super-resolution", "denoise": "Denoising", "jpeg": "JPEG artefact removal"}
DIGITS = {"psnr": 2, "psnr_y": 2, "ssim": 4, "ms_ssim": 4, "lpips": 4}
BOOTSTRAP_SAMPLES = 2000


@dataclass
class Summary:
    """One loss on one dataset and metric."""

    values: np.ndarray
    mean: float
    worst: float
    mean_ci: tuple[float, float]
    worst_ci: tuple[float, float]


def worst_percentile(values: np.ndarray, higher_is_better: bool) -> float:
    """The worst 5 %: the 5th percentile when higher is better, else the 95th."""
    return float(np.percentile(values, 5 if higher_is_better else 95))


def summarize(values: np.ndarray, higher_is_better: bool, seed: int = 0) -> Summary:
    """Mean with its 95 % t interval, worst-5 % value with its 95 % bootstrap interval."""
    from scipy import stats

    n = len(values)
    mean = float(values.mean())
    if n > 1:
        half = float(stats.t.ppf(0.975, n - 1) * values.std(ddof=1) / math.sqrt(n))
        rng = np.random.default_rng(seed)
        resampled = values[rng.integers(0, n, size=(BOOTSTRAP_SAMPLES, n))]
        boot = np.percentile(resampled, 5 if higher_is_better else 95, axis=1)
        worst_ci = (float(np.percentile(boot, 2.5)), float(np.percentile(boot, 97.5)))
    else:
        half, worst_ci = math.nan, (math.nan, math.nan)
    return Summary(values, mean, worst_percentile(values, higher_is_better), (mean - half, mean + half), worst_ci)


def paired_test(reference: np.ndarray, other: np.ndarray, higher_is_better: bool) -> float:
    """One-tailed paired t-test p-value, H1: ``reference`` is better; NaN when undefined."""
    from scipy import stats

    if len(reference) < 2 or np.all(reference == other):
        return math.nan
    alternative = "greater" if higher_is_better else "less"
    return float(stats.ttest_rel(reference, other, alternative=alternative).pvalue)


def rank_marks(values: Sequence[float], higher_is_better: bool) -> list[int]:
    """1 for the best, 2 for the second best (ties share a rank), 0 otherwise; NaN never ranks."""
    finite = sorted({v for v in values if not math.isnan(v)}, reverse=higher_is_better)
    ranks = {v: i + 1 for i, v in enumerate(finite[:2])}
    return [ranks.get(v, 0) if not math.isnan(v) else 0 for v in values]


class Table:
    """results.csv rows of one experiment, indexed by (dataset, metric, loss) -> per-image values."""

    def __init__(self, rows: list[dict[str, str]], losses: list[str], datasets: list[str]) -> None:
        self.losses = [loss for loss in losses if any(r["loss"] == loss for r in rows)]
        self.datasets = [d for d in datasets if any(r["dataset"] == d for r in rows)]
        self.images: dict[str, list[str]] = {}
        self.values: dict[tuple[str, str, str], np.ndarray] = {}
        for dataset in self.datasets:
            names = sorted({r["image"] for r in rows if r["dataset"] == dataset})
            self.images[dataset] = names
            for loss in self.losses:
                by_image = {r["image"]: r for r in rows if r["dataset"] == dataset and r["loss"] == loss}
                for metric in METRICS:
                    cells = [by_image[n][metric] if n in by_image else "" for n in names]
                    if all(c not in ("", "nan") for c in cells):
                        self.values[dataset, metric, loss] = np.array([float(c) for c in cells])
        self.metrics = [m for m in METRICS if any(k[1] == m for k in self.values)]
        self.baseline: Table | None = None
        """The degraded input's metrics: a reference column, never ranked."""

    def baseline_value(self, dataset: str, metric: str, statistic: Callable[[np.ndarray], float]) -> str:
        values = self.baseline.get(dataset, metric, INPUT_LABEL) if self.baseline else None
        return "" if values is None else _format(statistic(values), metric)

    def get(self, dataset: str, metric: str, loss: str) -> np.ndarray | None:
        return self.values.get((dataset, metric, loss))


def build_report(out: str | Path) -> tuple[Path, Path]:
    """Write ``report.md``, ``report.html`` and ``report_files/`` in ``out``; returns both paths.

    The report lists every command that trained into ``out`` (``manifest.json``'s ``commands``).
    """
    out = Path(out)
    manifest = read_manifest(out)
    if not manifest["experiments"]:
        raise FileNotFoundError(f"{out / 'manifest.json'}: no benchmark results here (run mdfloss bench first)")
    files = out / FILES
    commands = manifest.get("commands", [])
    md = ["# mdfloss benchmark report", ""]
    body: list[str] = []
    stamp = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    md += [f"mdfloss {__version__}, {stamp}.", ""]
    body.append(f"<p>mdfloss {html.escape(__version__)}, {stamp}.</p>")
    if commands:
        title = "Command:" if len(commands) == 1 else "Commands, in order:"
        md += [title, "", "```", *commands, "```", ""]
        body.append(f"<p>{title}</p><pre>{html.escape(chr(10).join(commands))}</pre>")
    md += [_LEGEND, ""]
    body.append(f"<p>{html.escape(_LEGEND)}</p>")
    for name, entry in manifest["experiments"].items():
        table = Table(experiment_results(out, entry), entry.get("losses", []), entry.get("datasets", []))
        if not table.losses:
            continue
        table.baseline = Table(read_csv(out / name / INPUT_RESULTS), [INPUT_LABEL], table.datasets)
        section_md, section_html = _experiment_section(out, files, name, entry, table)
        md += section_md
        body += section_html
    md_text = "\n".join(md) + "\n"
    html_text = _HTML_PAGE.format(body="\n".join(body))
    md_path, html_path = out / "report.md", out / "report.html"
    write_atomically(md_path, lambda tmp: Path(tmp).write_text(md_text, encoding="utf-8"))
    write_atomically(html_path, lambda tmp: Path(tmp).write_text(html_text, encoding="utf-8"))
    return md_path, html_path


_LEGEND = (
    "Per dataset and metric: the mean over images and the worst 5 % (the 5th percentile of PSNR, SSIM and "
    "MS-SSIM, the 95th of LPIPS); best in bold, second best in italics. (input) is the degraded input itself "
    "(bicubic upsampling for super-resolution), not ranked. Metrics are measured on the 8-bit outputs; "
    "p-values are one-tailed paired t-tests (H1: the reference loss is better), * for p < 0.05."
)

_HTML_PAGE = """<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>mdfloss benchmark report</title>
<style>
body {{ font-family: sans-serif; margin: 2em; max-width: 1600px; }}
table {{ border-collapse: collapse; margin: 1em 0; font-size: 0.9em; }}
th, td {{ border: 1px solid #ccc; padding: 0.25em 0.5em; text-align: right; }}
th {{ background: #f3f3f3; }} td.left, th.left {{ text-align: left; }}
.best {{ color: #c00; font-weight: bold; }} .second {{ color: #00c; font-style: italic; }}
img.plot {{ max-width: 100%; }} img.thumb {{ width: 160px; image-rendering: pixelated; }}
pre {{ background: #f6f6f6; padding: 0.5em; overflow-x: auto; }}
</style></head><body>
<h1>mdfloss benchmark report</h1>
{body}
</body></html>
"""


def _format(value: float, metric: str) -> str:
    return "nan" if math.isnan(value) else f"{value:.{DIGITS[metric]}f}"


def _experiment_section(out: Path, files: Path, name: str, entry: dict[str, Any],
                        table: Table) -> tuple[list[str], list[str]]:
    config = entry.get("config", {})
    title = (f"{TASK_TITLES.get(entry['task'], entry['task'])}: {entry['model']} ({entry.get('model_size')}), "
             f"{entry.get('iterations', '?')} iterations")
    md = [f"## {title}", ""]
    body = [f"<h2>{html.escape(title)}</h2>"]
    md_runs, html_runs = _runs_table(entry, table.losses)
    md += md_runs
    body += html_runs
    if entry.get("lpips"):
        md += [f"Metrics: {entry['lpips']}.", ""]
        body.append(f"<p>Metrics: {html.escape(entry['lpips'])}.</p>")
    md_table, html_table = _summary_table(table)
    md += ["### Mean and worst 5 %", ""] + md_table
    body += ["<h3>Mean and worst 5 %</h3>"] + html_table
    references = _references(config, table.losses)
    if references:
        md_tests, html_tests = _tests_table(table, references)
        md += ["### One-tailed paired t-tests", ""] + md_tests
        body += ["<h3>One-tailed paired t-tests</h3>"] + html_tests
        md_wins, html_wins = _wins(table, references[0])
        md += md_wins
        body += html_wins
    plots = _violin_plots(files / name, table, references)
    curve = _validation_plot(out, files / name, entry, table.losses)
    md += ["### Distributions", ""]
    body.append("<h3>Distributions</h3>")
    for path in plots + ([curve] if curve else []):
        relative = path.relative_to(out).as_posix()
        md += [f"![{path.stem}]({relative})", ""]
        body.append(f'<p><img class="plot" src="{html.escape(relative)}" alt="{html.escape(path.stem)}"></p>')
    md_crops, html_crops = _crops(out, files / name, name, entry, table)
    md += md_crops
    body += html_crops
    return md, body


def _references(config: dict[str, Any], losses: list[str]) -> list[str]:
    wanted = (config.get("report") or {}).get("references")
    if wanted is None:
        wanted = [loss for loss in losses if loss.startswith("mdf")]
    return [loss for loss in wanted if loss in losses]


def _runs_table(entry: dict[str, Any], losses: list[str]) -> tuple[list[str], list[str]]:
    md = ["| loss | spec | iterations | train time | selected at |", "|---|---|---|---|---|"]
    body = ["<table><tr><th class='left'>loss</th><th class='left'>spec</th><th>iterations</th>"
            "<th>train time</th><th>selected at</th></tr>"]
    for loss in losses:
        run = entry["runs"].get(loss, {})
        selected = run.get("selected", "?")
        best = (run.get("best") or {}).get(selected)
        at = f"{selected} @ {best['iteration']}" if best else str(selected)
        minutes = f"{run['train_seconds'] / 60:.1f} min" if "train_seconds" in run else "?"
        spec = run.get("spec", "?")
        if run.get("mdf_options"):
            spec += " " + " ".join(f"{key}={value}" for key, value in sorted(run["mdf_options"].items()))
        if run.get("official_source"):
            spec += f" (from {Path(run['official_source']).name})"
        md.append(f"| {loss} | `{spec}` | {run.get('iterations', '?')} | {minutes} | {at} |")
        body.append(f"<tr><td class='left'>{html.escape(loss)}</td><td class='left'><code>{html.escape(spec)}</code></td>"
                    f"<td>{run.get('iterations', '?')}</td><td>{minutes}</td><td>{html.escape(at)}</td></tr>")
    body.append("</table>")
    md.append("")
    for label, reason in (entry.get("skipped") or {}).items():
        md += [f"Skipped `{label}`: {reason}", ""]
        body.append(f"<p>Skipped <code>{html.escape(label)}</code>: {html.escape(reason)}</p>")
    return md, body


def _summary_table(table: Table) -> tuple[list[str], list[str]]:
    md = ["| dataset | metric | " + " | ".join(table.losses) + " | (input) |", "|---|---|" + "---|" * (len(table.losses) + 1)]
    body = ["<table><tr><th class='left'>dataset</th><th class='left'>metric</th>"
            + "".join(f"<th>{html.escape(loss)}</th>" for loss in table.losses) + "<th>(input)</th></tr>"]
    for dataset in table.datasets:
        for metric in table.metrics:
            higher = HIGHER_IS_BETTER[metric]
            arrow = "↑" if higher else "↓"
            for kind in ("mean", "worst 5 %"):
                def statistic(data: np.ndarray, kind: str = kind, higher: bool = higher) -> float:
                    return float(data.mean()) if kind == "mean" else worst_percentile(data, higher)

                values = [math.nan if (data := table.get(dataset, metric, loss)) is None else statistic(data)
                          for loss in table.losses]
                ranks = rank_marks(values, higher)
                baseline = table.baseline_value(dataset, metric, statistic)
                md_cells = [_md_mark(_format(v, metric), r) for v, r in zip(values, ranks)] + [baseline]
                html_cells = [_html_mark(_format(v, metric), r) for v, r in zip(values, ranks)] + [f"<td>{baseline}</td>"]
                label = f"{LABELS[metric]} {arrow} {kind}"
                md.append(f"| {dataset} | {label} | " + " | ".join(md_cells) + " |")
                body.append(f"<tr><td class='left'>{html.escape(dataset)}</td><td class='left'>{html.escape(label)}</td>"
                            + "".join(html_cells) + "</tr>")
    body.append("</table>")
    md.append("")
    return md, body


def _md_mark(text: str, rank: int) -> str:
    return f"**{text}**" if rank == 1 else f"_{text}_" if rank == 2 else text


def _html_mark(text: str, rank: int) -> str:
    css = {1: " class='best'", 2: " class='second'"}.get(rank, "")
    return f"<td{css}>{html.escape(text)}</td>"


def _tests_table(table: Table, references: list[str]) -> tuple[list[str], list[str]]:
    md, body = [], []
    for reference in references:
        others = [loss for loss in table.losses if loss != reference]
        if not others:
            continue
        md += [f"{reference} against each other loss (p-values):", "",
               "| dataset | metric | " + " | ".join(others) + " |", "|---|---|" + "---|" * len(others)]
        body += [f"<p>{html.escape(reference)} against each other loss (p-values):</p>",
                 "<table><tr><th class='left'>dataset</th><th class='left'>metric</th>"
                 + "".join(f"<th>{html.escape(o)}</th>" for o in others) + "</tr>"]
        for dataset in table.datasets:
            for metric in table.metrics:
                ref = table.get(dataset, metric, reference)
                cells = []
                for other in others:
                    values = table.get(dataset, metric, other)
                    p = math.nan if ref is None or values is None else paired_test(ref, values, HIGHER_IS_BETTER[metric])
                    cells.append("—" if math.isnan(p) else f"{p:.3g}{' *' if p < ALPHA else ''}")
                md.append(f"| {dataset} | {LABELS[metric]} | " + " | ".join(cells) + " |")
                body.append(f"<tr><td class='left'>{html.escape(dataset)}</td><td class='left'>{LABELS[metric]}</td>"
                            + "".join(f"<td>{html.escape(c)}</td>" for c in cells) + "</tr>")
        md.append("")
        body.append("</table>")
    return md, body


def _wins(table: Table, reference: str) -> tuple[list[str], list[str]]:
    """How often the reference ranks first (ties included), by mean and by worst 5 %, and where it does not.

    Cells where every loss scores the same are not counted.
    """
    counts = {"mean": [0, 0], "worst 5 %": [0, 0]}
    losses_to: list[str] = []
    for dataset in table.datasets:
        for metric in table.metrics:
            higher = HIGHER_IS_BETTER[metric]
            for kind, statistic in (("mean", lambda v: float(v.mean())),
                                    ("worst 5 %", lambda v, h=higher: worst_percentile(v, h))):
                scores = {loss: statistic(v) for loss in table.losses
                          if (v := table.get(dataset, metric, loss)) is not None}
                if reference not in scores or len(set(scores.values())) < 2:
                    continue  # nothing to rank
                best = max(scores.values()) if higher else min(scores.values())
                counts[kind][1] += 1
                if scores[reference] == best:
                    counts[kind][0] += 1
                elif kind == "mean":
                    winner = next(loss for loss, s in scores.items() if s == best)
                    losses_to.append(f"{dataset} {LABELS[metric]}: {winner}")
    line = (f"{reference} is best by the mean in {counts['mean'][0]} of {counts['mean'][1]} (dataset, metric) cells "
            f"and by the worst 5 % in {counts['worst 5 %'][0]} of {counts['worst 5 %'][1]}.")
    md = [line, ""]
    body = [f"<p>{html.escape(line)}</p>"]
    if losses_to:
        md += [f"Best mean where {reference} is not: " + "; ".join(losses_to) + ".", ""]
        body.append(f"<p>Best mean where {html.escape(reference)} is not: {html.escape('; '.join(losses_to))}.</p>")
    return md, body


def _save_figure(figure: Any, path: Path) -> Path:
    write_atomically(path, lambda tmp: figure.savefig(tmp, format="png", dpi=100, bbox_inches="tight"))
    return path


def _violin_plots(folder: Path, table: Table, references: list[str]) -> list[Path]:
    from matplotlib.figure import Figure

    paths = []
    for metric in table.metrics:
        higher = HIGHER_IS_BETTER[metric]
        panels = len(table.datasets)
        figure = Figure(figsize=(max(4.0, 0.9 * len(table.losses)) * panels, 3.8), layout="constrained")
        axes = figure.subplots(1, panels, squeeze=False)[0]
        for ax, dataset in zip(axes, table.datasets):
            present = [(i, loss, v) for i, loss in enumerate(table.losses)
                       if (v := table.get(dataset, metric, loss)) is not None]
            if not present:
                continue
            positions = [i + 1 for i, _, _ in present]
            data = [v for _, _, v in present]
            if all(len(v) > 1 and np.ptp(v) > 0 for v in data):
                parts = ax.violinplot(data, positions=positions, showextrema=False)
                for body in parts["bodies"]:
                    body.set_alpha(0.35)
            else:
                for position, values in zip(positions, data):
                    ax.scatter([position] * len(values), values, s=8, color="grey")
            reference = references[0] if references else None
            ref_values = table.get(dataset, metric, reference) if reference else None
            for position, (_, loss, values) in zip(positions, present):
                s = summarize(values, higher)
                ax.errorbar(position - 0.12, s.mean, yerr=_yerr(s.mean, s.mean_ci), fmt="o", color="magenta",
                            markersize=4, capsize=3)
                ax.errorbar(position + 0.12, s.worst, yerr=_yerr(s.worst, s.worst_ci), fmt="s", color="black",
                            markersize=3, capsize=3)
                if ref_values is not None and loss != reference and paired_test(ref_values, values, higher) < ALPHA:
                    top = values.max() if higher else values.min()
                    ax.annotate("*", (position, top), color="red", fontsize=16, ha="center",
                                va="bottom" if higher else "top")
            ax.set_xticks(range(1, len(table.losses) + 1))
            ax.set_xticklabels(table.losses, rotation=35, ha="right")
            ax.set_title(dataset)
            ax.set_ylabel(LABELS[metric] + (" ↑" if higher else " ↓ (axis reversed)"))
            if not higher:
                ax.invert_yaxis()
            ax.grid(axis="y", alpha=0.3)
        paths.append(_save_figure(figure, folder / f"violin-{metric}.png"))
    return paths


def _yerr(centre: float, interval: tuple[float, float]) -> list[list[float]] | None:
    low, high = interval
    if math.isnan(low) or math.isnan(high):
        return None
    return [[max(centre - low, 0.0)], [max(high - centre, 0.0)]]


def _validation_plot(out: Path, folder: Path, entry: dict[str, Any], losses: list[str]) -> Path | None:
    from matplotlib.figure import Figure

    curves = {}
    for loss in losses:
        run = entry["runs"].get(loss)
        if run and "folder" in run:
            rows = read_csv(out / run["folder"] / "val_log.csv")
            if rows:
                curves[loss] = ([int(r["iteration"]) for r in rows], [float(r["val_psnr"]) for r in rows])
    if not curves:
        return None
    figure = Figure(figsize=(6.5, 3.8), layout="constrained")
    ax = figure.subplots()
    for loss, (x, y) in curves.items():
        ax.plot(x, y, marker=".", label=loss)
    ax.set_xlabel("iteration")
    ax.set_ylabel("validation PSNR [dB]")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    return _save_figure(figure, folder / "validation-psnr.png")


# ----------------------------------------------------------------------------- crops


def _read(path: Path) -> np.ndarray | None:
    from PIL import Image

    if not path.is_file():
        return None
    with Image.open(path) as image:
        return np.asarray(image.convert("RGB"), dtype=np.float32) / 255


def choose_regions(target: np.ndarray, outputs: Sequence[np.ndarray], size: int) -> list[tuple[str, int, int, int]]:
    """Two square regions of ``size`` px: the smoothest of the reference, and the largest mean error.

    Candidates lie on a grid of stride ``size // 2``; returns (name, top, left, size).
    """
    h, w = target.shape[:2]
    size = min(size, h, w)
    stride = max(size // 2, 1)
    grey = target.mean(axis=2)
    gradient = np.abs(np.diff(grey, axis=0))[:, :-1] + np.abs(np.diff(grey, axis=1))[:-1, :]
    error = np.mean([np.abs(o - target).mean(axis=2) for o in outputs], axis=0) if outputs else grey * 0
    candidates = [(y, x) for y in range(0, h - size + 1, stride) for x in range(0, w - size + 1, stride)]

    def best(score: Callable[[int, int], float]) -> tuple[int, int]:
        return min(candidates, key=lambda c: score(*c))

    smooth = best(lambda y, x: float(gradient[y : y + size - 1, x : x + size - 1].mean()))
    worst = best(lambda y, x: -float(error[y : y + size, x : x + size].mean()))
    return [("smooth", *smooth, size), ("largest error", *worst, size)]


def _crops(out: Path, folder: Path, name: str, entry: dict[str, Any], table: Table) -> tuple[list[str], list[str]]:
    from matplotlib.figure import Figure

    config = entry.get("config", {})
    report_options = config.get("report", {})
    count, size = int(report_options.get("crop_images", 2)), int(report_options.get("crop_size", 64))
    reference_dir = out / name / "reference"
    md = ["### Crops", ""]
    body = ["<h3>Crops</h3>"]
    for dataset in table.datasets:
        chosen = _disputed_images(table, dataset, count)
        rows = []
        for image in chosen:
            stem = Path(image).stem
            target = _read(reference_dir / dataset / f"{stem}-target.png")
            degraded = _read(reference_dir / dataset / f"{stem}-input.png")
            outputs = {loss: _read(out / entry["runs"][loss]["folder"] / "images" / dataset / f"{stem}.png")
                       for loss in table.losses if "folder" in entry["runs"].get(loss, {})}
            outputs = {k: v for k, v in outputs.items() if v is not None and target is not None and v.shape == target.shape}
            if target is None or not outputs:
                continue
            for region, top, left, side in choose_regions(target, list(outputs.values()), size):
                tiles = [("reference", _cut(target, top, left, side, 1))]
                if degraded is not None:
                    factor = target.shape[0] // degraded.shape[0] if degraded.shape[0] else 1
                    tiles.append(("input", _cut(degraded, top // factor, left // factor, side // factor, factor)))
                tiles += [(loss, _cut(o, top, left, side, 1)) for loss, o in outputs.items()]
                rows.append((f"{stem}\n{region} ({left},{top})", tiles))
        if not rows:
            continue
        columns = len(rows[0][1])
        figure = Figure(figsize=(1.6 * columns, 1.75 * len(rows)))
        axes = figure.subplots(len(rows), columns, squeeze=False)
        for r, (row_title, tiles) in enumerate(rows):
            for c, (label, tile) in enumerate(tiles):
                ax = axes[r][c]
                ax.imshow(tile, interpolation="nearest")
                ax.set_xticks([])
                ax.set_yticks([])
                if r == 0:
                    ax.set_title(label, fontsize=8)
                if c == 0:
                    ax.set_ylabel(row_title, fontsize=6)
        figure.subplots_adjust(wspace=0.04, hspace=0.12)
        path = _save_figure(figure, folder / f"crops-{dataset.replace('/', '-')}.png")
        relative = path.relative_to(out).as_posix()
        md += [f"{dataset}:", "", f"![crops {dataset}]({relative})", ""]
        body += [f"<p>{html.escape(dataset)}:</p>", f'<p><img class="plot" src="{html.escape(relative)}" alt="crops"></p>']
        body += _full_resolution_table(out, name, entry, table, dataset)
    return md, body


def _disputed_images(table: Table, dataset: str, count: int) -> list[str]:
    """The images whose PSNR differs most between losses."""
    names = table.images[dataset]
    stacks = [v for loss in table.losses if (v := table.get(dataset, "psnr", loss)) is not None]
    if not stacks:
        return names[:count]
    spread = np.ptp(np.stack(stacks), axis=0)
    order = np.argsort(-spread, kind="stable")
    return [names[i] for i in order[:count]]


def _cut(image: np.ndarray, top: int, left: int, side: int, factor: int) -> np.ndarray:
    tile = image[top : top + max(side, 1), left : left + max(side, 1)]
    return np.repeat(np.repeat(tile, factor, axis=0), factor, axis=1) if factor > 1 else tile


def _full_resolution_table(out: Path, name: str, entry: dict[str, Any], table: Table, dataset: str) -> list[str]:
    columns = ["reference", "input", *table.losses]
    body = [f"<details><summary>All {html.escape(dataset)} images at full resolution</summary><table><tr>"
            + "".join(f"<th>{html.escape(c)}</th>" for c in columns) + "</tr>"]
    for image in table.images[dataset]:
        stem = Path(image).stem
        paths = [out / name / "reference" / dataset / f"{stem}-target.png",
                 out / name / "reference" / dataset / f"{stem}-input.png"]
        paths += [out / entry["runs"].get(loss, {}).get("folder", "") / "images" / dataset / f"{stem}.png"
                  for loss in table.losses]
        cells = []
        for path in paths:
            if path.is_file():
                relative = html.escape(path.relative_to(out).as_posix())
                cells.append(f'<td><a href="{relative}"><img class="thumb" src="{relative}" alt=""></a></td>')
            else:
                cells.append("<td></td>")
        body.append("<tr>" + "".join(cells) + "</tr>")
    body.append("</table></details>")
    return body
