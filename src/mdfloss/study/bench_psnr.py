"""The bench's mean PSNR of each study condition over the study's images, for the Fig. 6 plot.

A condition is a bench loss by its label or by its run folder's name (``33xl1`` is the folder of
the loss ``33*l1``; the bench's ``manifest.json`` beside ``results.csv`` says which). Every image
of the study must have exactly one row per condition; otherwise the table is refused with the
names that did not match, and rows of other images are never used.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

from .._files import read_csv

COLUMNS = ("loss", "dataset", "image", "psnr")


def bench_names(results: Path) -> dict[str, str]:
    """Run folder name -> loss label, from the ``manifest.json`` next to a bench ``results.csv``."""
    manifest = results.with_name("manifest.json")
    if not manifest.is_file():
        return {}
    experiments = json.loads(manifest.read_text(encoding="utf-8")).get("experiments", {})
    return {Path(run["folder"]).name: label for e in experiments.values()
            for label, run in e.get("runs", {}).items() if "folder" in run}


def mean_psnr(results: Path, blocks: Sequence[str], conditions: Sequence[str], task: str | None = None,
              argument: str = "--bench-results") -> dict[str, float]:
    """Mean PSNR per condition over ``blocks`` (``NAME`` or ``DATASET/NAME``); ValueError naming
    ``argument`` when a condition or an image has no row, or an image matches several."""
    rows = read_csv(results)
    if not rows or not set(COLUMNS) <= set(rows[0]):
        raise ValueError(f"{argument}: expected a bench results.csv with columns {', '.join(COLUMNS)}, "
                         f"got {results} with {list(rows[0]) if rows else 'no rows'}")
    rows = [r for r in rows if task is None or r.get("task", task) == task]
    losses = sorted({r["loss"] for r in rows})
    folders = bench_names(results)
    label = {c: c if c in losses else folders.get(c) for c in conditions}
    unknown = [c for c, loss in label.items() if loss not in losses]
    if unknown:
        raise ValueError(f"{argument}: expected rows for the conditions {unknown} in {results}, found only the "
                         f"losses {losses} (and no run folder of that name in its manifest.json)")
    means = {}
    for condition in conditions:
        values = []
        for block in blocks:
            found = [r for r in rows if r["loss"] == label[condition]
                     and block in (Path(r["image"]).stem, f"{r['dataset']}/{Path(r['image']).stem}")]
            if len(found) != 1:
                what = "no row" if not found else f"{len(found)} rows (datasets {sorted(r['dataset'] for r in found)})"
                named = condition if label[condition] == condition else f"{condition} (bench loss {label[condition]})"
                raise ValueError(f"{argument}: expected one row for image {block} of {named} in "
                                 f"{results}, found {what}; is it the bench run the study was made from?")
            values.append(float(found[0]["psnr"]))
        means[condition] = sum(values) / len(values)
    return means
