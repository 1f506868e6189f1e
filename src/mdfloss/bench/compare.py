"""``mdfloss bench compare``: a loss of one benchmark folder against losses of others, on the same test images.

    mdfloss bench compare docs/results/ablations/scales:coarsest-3 docs/results/cpu:l2 docs/results/cpu:l1

Each argument is ``FOLDER:LOSS`` (or ``FOLDER`` for every loss of that folder, or a
``results.csv`` in place of the folder); the first is the reference. Rows are paired by
(experiment, dataset, image) over the reference's datasets; an image missing on either side is
an error. Per dataset and metric the table gives both means over runs and images with their 95 %
two-level bootstrap intervals, P(reference > other) over runs with its interval, and the
one-tailed paired t-test over images (each image's mean over the runs: it holds for the given runs
only). Valid only when both folders ran the same protocol on the same test set.
"""

from __future__ import annotations

import argparse
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .._files import read_csv, write_atomically
from ..metrics.image import HIGHER_IS_BETTER, LABELS, METRICS
from .manifest import RESULTS
from .report.stats import mean_interval, paired_test, prob_better, prob_better_interval


@dataclass
class Contender:
    """One loss of one folder: ``{(experiment, dataset, metric): (runs, images) values}`` and the image names."""

    name: str
    values: dict[tuple[str, str, str], np.ndarray]
    images: dict[tuple[str, str], list[str]]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("contenders", nargs="+", metavar="FOLDER[:LOSS]",
                        help="the reference, then the others: a benchmark folder (or its results.csv) and a loss label")
    parser.add_argument("--metrics", default="psnr,ssim", help="comma-separated metrics (default psnr,ssim)")
    parser.add_argument("--save", type=Path, metavar="FILE", help="also write the table to this markdown file")


def run(args: argparse.Namespace) -> int:
    metrics = [m.strip() for m in args.metrics.split(",") if m.strip()]
    unknown = [m for m in metrics if m not in METRICS]
    if unknown or not metrics:
        raise ValueError(f"--metrics: expected names from {', '.join(METRICS)}, got {args.metrics!r}")
    contenders = [c for argument in args.contenders for c in read_contenders(argument)]
    if len(contenders) < 2:
        raise ValueError(f"expected a reference and at least one other loss, got {[c.name for c in contenders]}")
    text = compare(contenders[0], contenders[1:], metrics)
    print(text)
    if args.save is not None:
        write_atomically(args.save, lambda tmp: Path(tmp).write_text(text + "\n", encoding="utf-8"))
    return 0


def read_contenders(argument: str) -> list[Contender]:
    """The losses ``FOLDER[:LOSS]`` names, read from its ``results.csv``."""
    folder, loss = argument, ""
    for at in (i for i, c in enumerate(argument) if c == ":"):  # the first prefix that exists is the folder
        if Path(argument[:at]).exists():
            folder, loss = argument[:at], argument[at + 1:]
            break
    path = Path(folder)
    path = path / RESULTS if path.is_dir() else path
    if not path.is_file():
        raise FileNotFoundError(f"{argument}: expected a benchmark folder or its results.csv, found no {path}")
    rows = read_csv(path)
    losses = list(dict.fromkeys(r["loss"] for r in rows))
    if loss and loss not in losses:
        raise ValueError(f"{argument}: no loss {loss!r} in {path} (it has {', '.join(losses)})")
    return [_contender(f"{folder}:{name}", [r for r in rows if r["loss"] == name]) for name in ([loss] if loss else losses)]


def _contender(name: str, rows: list[dict[str, str]]) -> Contender:
    values, images = {}, {}
    for experiment, dataset in dict.fromkeys((f"{r['task']}-{r['model']}", r["dataset"]) for r in rows):
        own = [r for r in rows if f"{r['task']}-{r['model']}" == experiment and r["dataset"] == dataset]
        names = sorted({r["image"] for r in own})
        repeats = sorted({int(r.get("repeat") or 0) for r in own})
        images[experiment, dataset] = names
        for metric in METRICS:
            table = []
            for repeat in repeats:
                by_image = {r["image"]: r.get(metric, "") for r in own if int(r.get("repeat") or 0) == repeat}
                if all(by_image.get(n, "") not in ("", "nan") for n in names):
                    table.append([float(by_image[n]) for n in names])
            if len(table) == len(repeats):
                values[experiment, dataset, metric] = np.array(table)
    return Contender(name, values, images)


def compare(reference: Contender, others: list[Contender], metrics: list[str]) -> str:
    """The markdown table of ``reference`` against each of ``others``."""
    lines = ["| other | experiment | dataset | metric | reference [95 %] | other [95 %] | P(reference > other) [95 %] "
             "| p, paired over images |", "|---|---|---|---|---|---|---|---|"]
    for other in others:
        for experiment, dataset in reference.images:
            if (experiment, dataset) not in other.images:
                continue
            if other.images[experiment, dataset] != reference.images[experiment, dataset]:
                raise ValueError(f"{other.name}: not the same images as {reference.name} in {experiment} {dataset}")
            for metric in metrics:
                ours = reference.values.get((experiment, dataset, metric))
                theirs = other.values.get((experiment, dataset, metric))
                if ours is None or theirs is None:
                    continue
                higher = HIGHER_IS_BETTER[metric]
                low, high = prob_better_interval(ours, theirs, higher)
                p = paired_test(ours.mean(axis=0), theirs.mean(axis=0), higher)
                lines.append(f"| {other.name} | {experiment} | {dataset} | {LABELS[metric]} | {_interval(ours)} | "
                             f"{_interval(theirs)} | {prob_better(ours, theirs, higher):.2f} [{low:.2f}, {high:.2f}] | "
                             f"{'—' if math.isnan(p) else f'{p:.3g}'} |")
    if len(lines) == 2:
        raise ValueError(f"no (experiment, dataset) shared by {reference.name} and {', '.join(o.name for o in others)}")
    runs = {c.name: max(v.shape[0] for v in c.values.values()) for c in [reference, *others] if c.values}
    lines.append("")
    lines.append("Runs: " + ", ".join(f"{name} {count}" for name, count in runs.items()) + ".")
    return "\n".join(lines)


def _interval(values: np.ndarray) -> str:
    mean, low, high = mean_interval(values)
    return f"{mean:.4g} [{low:.4g}, {high:.4g}]"
