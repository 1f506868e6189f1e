"""What each ablation trains before it benchmarks: the seeds, the losses, the bench config.

An ablation folder ``OUT`` holds::

    seeds/<name>.png            synthetic seeds it made (``seeds`` ablation)
    seeds-preview.png           every seed, whole and as a full-resolution crop
    losses/<label>.safetensors  one MDF loss per variant, trained by phase 1 (fast preset)
    ablation.yaml               the bench config: the cpu protocol, one loss label per variant, then L2
    manifest.json, results.csv, report.md, ...   the benchmark itself (docs/bench.md)

Every step skips what exists (a finished loss file, a finished run), so the same command resumes.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

EXPERIMENTS = {"sisr": "sisr-edsr", "denoise": "denoise-dncnn", "jpeg": "jpeg-dncnn"}
SYNTHETIC_KINDS = ("pink-noise", "contrast-rings", "pyramid-permutation")
YARDSTICK = "l2"
"""Trained beside the variants on the same protocol: the cpu preset's strongest classic loss."""


@dataclass(frozen=True)
class LossToTrain:
    """One phase-1 run: the label it gets in the benchmark and the seed images it learns from."""

    label: str
    seeds: tuple[Path, ...]


@dataclass
class Plan:
    """An ablation: the synthetic seeds to make, the losses to train, the task to benchmark them on."""

    task: str
    losses: list[LossToTrain]
    references: list[str]
    """The labels the report t-tests against every other loss (the paper's expected winners)."""
    synthetic: dict[str, dict[str, Any]] = field(default_factory=dict)
    """``{file name: {"kind", "like"}}`` of the seeds to make under ``OUT/seeds``."""


def seeds_plan(natural: list[Path], task: str, out: Path) -> Plan:
    """Fig. 7: one loss per natural seed, and one per synthetic seed made like the first natural one."""
    if not natural:
        raise ValueError("--natural: expected at least one natural seed photo, got none")
    synthetic = {f"{kind}.png": {"kind": kind, "like": natural[0]} for kind in SYNTHETIC_KINDS}
    losses = [LossToTrain(path.stem, (path,)) for path in natural]
    losses += [LossToTrain(Path(name).stem, (out / "seeds" / name,)) for name in synthetic]
    return Plan(task, losses, [path.stem for path in natural], synthetic)


def seed_count_plan(photos: list[Path], counts: list[int], task: str) -> Plan:
    """Appendix Fig. 13: one loss per count n, trained on the first n photos (by name)."""
    if not counts or any(n < 1 for n in counts):
        raise ValueError(f"--counts: expected positive numbers of seeds such as 1,2,4,8, got {counts}")
    if max(counts) > len(photos):
        raise ValueError(f"--seeds: expected at least {max(counts)} photos for --counts {counts}, found {len(photos)}")
    return Plan(task, [LossToTrain(f"seeds-{n}", tuple(photos[:n])) for n in counts], [f"seeds-{max(counts)}"])


def bench_config(plan: Plan, out: Path) -> dict[str, Any]:
    """The plan's benchmark in the preset format: the cpu protocol, one loss label per trained loss,
    then :data:`YARDSTICK`."""
    from ..bench.config import load_builtin

    common = load_builtin("preset-cpu")["common"]
    common = {key: value for key, value in common.items() if key not in ("losses", "optional_losses")}
    common["report"] = {**common["report"], "references": plan.references}
    aliases = {loss.label: f"mdf:{out / 'losses' / f'{loss.label}.safetensors'}" for loss in plan.losses}
    return {
        "description": f"Ablation on {plan.task}: one MDF loss per variant and L2, on the cpu protocol.",
        "common": common,
        "experiments": {EXPERIMENTS[plan.task]: {"losses": [*(loss.label for loss in plan.losses), YARDSTICK],
                                                 "loss_aliases": aliases}},
    }
