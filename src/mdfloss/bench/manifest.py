"""The record of a benchmark folder: ``manifest.json`` and ``results.csv``, the only owner of both.

``manifest.json``::

    {"commands": ["mdfloss bench ...", ...],          # every command that trained into the folder
     "experiments": {NAME: {task, model, config, border, datasets, losses, iterations,
                            skipped: {label: why}, lpips: note,
                            runs: {key: {label, repeat, spec, mdf_options, official_source, iterations,
                                         train_seconds, eval_seconds, selected, best, status,
                                         predicted_gain_db, folder, ...}}}}}

A run's key is its loss label, with ``#K`` for repeat K >= 1 (:class:`~.config.LossRun`).

``results.csv`` holds the rows of every finished run (``<folder>/results.csv``), in manifest
order; it is rewritten whenever a run finishes. Every write is atomic, and every
read-modify-write holds an exclusive lock on ``OUT/.manifest.lock``, so parallel runs
(``--jobs``) never lose each other's records.
"""

from __future__ import annotations

import fcntl
import json
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from .._files import read_csv, write_atomically, write_csv
from .evaluate import RESULT_FIELDS

MANIFEST = "manifest.json"
RESULTS = "results.csv"
LOCK = ".manifest.lock"
INPUT_RESULTS = "input_results.csv"
"""Per experiment: the metrics of the degraded input itself (bicubic for super-resolution), for reference."""


@contextmanager
def _locked(out: Path) -> Iterator[None]:
    """Hold the folder's manifest lock (processes on this machine wait for each other)."""
    out.mkdir(parents=True, exist_ok=True)
    with open(out / LOCK, "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def read_manifest(out: Path) -> dict[str, Any]:
    path = out / MANIFEST
    if not path.is_file():
        return {"experiments": {}}
    return json.loads(path.read_text(encoding="utf-8"))


def write_manifest(out: Path, manifest: dict[str, Any]) -> None:
    """``manifest.json``, atomically."""
    text = json.dumps(manifest, indent=1, sort_keys=True, default=str)
    write_atomically(out / MANIFEST, lambda tmp: Path(tmp).write_text(text, encoding="utf-8"))


def record_command(out: Path, command: str | None) -> None:
    """Add ``command`` to the folder's list of commands (once); create the manifest if needed."""
    with _locked(out):
        manifest = read_manifest(out)
        commands = manifest.setdefault("commands", [])
        if command and command not in commands:
            commands.append(command)
        write_manifest(out, manifest)


def record_experiment(out: Path, name: str, description: dict[str, Any], **notes: Any) -> None:
    """Describe experiment ``name`` (its config, datasets, losses...); ``notes`` that are None are left as they were."""
    with _locked(out):
        manifest = read_manifest(out)
        entry = manifest["experiments"].setdefault(name, {"runs": {}})
        entry.update(description)
        entry.update({key: value for key, value in notes.items() if value is not None})
        write_manifest(out, manifest)


def record_run(out: Path, name: str, key: str, run: dict[str, Any]) -> None:
    """Record the finished run ``key`` of experiment ``name`` and rewrite ``results.csv``."""
    with _locked(out):
        manifest = read_manifest(out)
        manifest["experiments"][name]["runs"][key] = run
        write_manifest(out, manifest)
        write_results(out, manifest)


def recorded_runs(out: Path, name: str) -> dict[str, Any]:
    """``{key: record}`` of the runs of experiment ``name`` recorded so far."""
    return read_manifest(out)["experiments"].get(name, {}).get("runs", {})


def write_results(out: Path, manifest: dict[str, Any]) -> None:
    """``results.csv``: the rows of every finished run, in manifest order."""
    rows = [row for entry in manifest["experiments"].values() for row in experiment_results(out, entry)]
    write_csv(out / RESULTS, RESULT_FIELDS, rows)


def runs_of(entry: dict[str, Any], label: str) -> list[dict[str, Any]]:
    """The recorded runs of loss ``label`` in a manifest experiment, by repeat."""
    runs = [run for key, run in entry["runs"].items() if run.get("label", key) == label]
    return sorted(runs, key=lambda run: run.get("repeat", 0))


def validation_psnr(out: Path, run: dict[str, Any]) -> list[tuple[int, float]]:
    """(iteration, validation PSNR) of a recorded run, from its ``val_log.csv``; empty when it has none."""
    rows = read_csv(out / run["folder"] / "val_log.csv") if "folder" in run else []
    return [(int(r["iteration"]), float(r["val_psnr"])) for r in rows]


def experiment_results(out: Path, entry: dict[str, Any]) -> list[dict[str, str]]:
    """The result rows of one manifest experiment, in its loss order, then by repeat."""
    rows = []
    for label in entry.get("losses", []):
        for run in runs_of(entry, label):
            rows += [{**row, "repeat": row.get("repeat") or "0"} for row in read_csv(out / run["folder"] / RESULTS)]
    return rows
