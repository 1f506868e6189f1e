#!/usr/bin/env python3
"""A loss of one benchmark folder against losses of another, on the same test images: one-tailed
paired t-tests (H1: the first loss is better), as the report computes them within one folder.

    python scripts/paired_across_reports.py docs/results/ablations/scales/results.csv:coarsest-3 \
        docs/results/cpu/results.csv:l2 docs/results/cpu/results.csv:l1 docs/results/cpu/results.csv:mdf-official

Valid only when both folders ran the same protocol on the same test set: the images are paired
by (dataset, image name) over the reference's datasets, and an image missing from either side is an error.
"""

from __future__ import annotations

import argparse
import csv

import numpy as np

from mdfloss.bench.report.stats import paired_test
from mdfloss.metrics.image import HIGHER_IS_BETTER, METRICS


def read_loss(argument: str) -> dict[tuple[str, str], dict[str, str]]:
    """``results.csv:LOSS`` -> {(dataset, image): row} of that loss."""
    path, _, loss = argument.rpartition(":")
    if not path or not loss:
        raise SystemExit(f"expected RESULTS.csv:LOSS, got {argument!r}")
    with open(path, newline="") as stream:
        rows = {(r["dataset"], r["image"]): r for r in csv.DictReader(stream) if r["loss"] == loss}
    if not rows:
        raise SystemExit(f"{path}: no rows of loss {loss!r}")
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("reference", help="RESULTS.csv:LOSS, the loss H1 says is better")
    parser.add_argument("others", nargs="+", help="RESULTS.csv:LOSS, each compared with the reference")
    args = parser.parse_args()
    reference = read_loss(args.reference)
    print("| other | dataset | metric | reference mean | other mean | p (reference better) |")
    print("|---|---|---|---|---|---|")
    for argument in args.others:
        datasets = {dataset for dataset, _ in reference}
        other = {key: row for key, row in read_loss(argument).items() if key[0] in datasets}
        if set(other) != set(reference):
            raise SystemExit(f"{argument}: not the same (dataset, image) pairs as {args.reference}")
        for dataset in sorted({d for d, _ in reference}):
            keys = sorted(k for k in reference if k[0] == dataset)
            for metric in (m for m in METRICS if reference[keys[0]].get(m)):
                ours = np.array([float(reference[k][metric]) for k in keys])
                theirs = np.array([float(other[k][metric]) for k in keys])
                p = paired_test(ours, theirs, HIGHER_IS_BETTER[metric])
                print(f"| {argument} | {dataset} | {metric} | {ours.mean():.4f} | {theirs.mean():.4f} | {p:.3g} |")


if __name__ == "__main__":
    main()
