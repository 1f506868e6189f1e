"""How long a benchmark will take: a few timed iterations per loss, scaled to the whole run.

Each stretch of a run whose steps cost alike (a GAN run's L1 pre-training and its adversarial
phase) is timed on its own; the table gives their mean seconds per iteration over the run.
A loss's time covers its ``train.repeats`` runs; with ``train.converge.enabled`` a run may go on
to ``max_factor`` times its iterations, so the table gives the time at the budget and at the cap.
"""

from __future__ import annotations

import math
import time
from pathlib import Path
from typing import Any

import torch

from .config import identity
from .convergence import ConvergenceRule
from .distributed import Context
from .evaluate import measure
from .experiment import (
    build_metrics,
    build_run_loss,
    build_run_model,
    load_eval_sets,
    set_up,
)
from .fit import validate
from .gan import make_trainer


def estimate(configs: list[dict[str, Any]], out: Path, context: Context, *, steps: int = 3) -> str:
    """A markdown table of measured seconds per iteration and the estimated minutes per run."""
    lines = ["| experiment | loss | s/iteration | iterations | runs | train [min] | validation [min] | test [min] | "
             "total [min] | total at the cap [min] |", "|---|---|---|---|---|---|---|---|---|---|"]
    grand_total = grand_cap = 0.0
    for config in configs:
        setup = set_up(config, out, context)
        experiment, total = setup.experiment, setup.total
        config = experiment.config
        repeats = config["train"]["repeats"]
        cap_factor = ConvergenceRule.from_config(config["train"]["converge"], total).cap / total
        validations = math.ceil(total / config["train"]["val_every"])
        val_images = load_eval_sets(experiment, "val").get("val", [])
        test_sets = load_eval_sets(experiment, "test")
        metrics, _ = build_metrics(experiment, context)
        test_seconds = None
        for run in (r for r in setup.runs if r.repeat == 0):
            patches = setup.patches(run)
            batch = [patches[k] for k in range(config["data"]["batch_size"])]
            inputs = torch.stack([b[0] for b in batch]).to(context.device)
            targets = torch.stack([b[1] for b in batch]).to(context.device)
            loss_fn = build_run_loss(experiment, run, context.device)
            model = build_run_model(config, experiment.degradation)
            trainer = make_trainer(
                folder=out / "estimate", model=model, loss_fn=loss_fn, patches=patches, config=config,
                total=total, identity=identity(config, run, total, []), context=context, val_images=None,
                border=experiment.border,
            )
            model.train()
            train_seconds = 0.0
            for first, count in trainer.phases():
                trainer.iteration = first
                for step in range(steps + 1):
                    if step == 1:
                        started = time.perf_counter()
                    trainer.step(inputs, targets)
                train_seconds += (time.perf_counter() - started) / steps * count
            per_iteration = train_seconds / total
            started = time.perf_counter()
            if val_images:
                validate(model, loss_fn, val_images, context.device, experiment.border)
            val_seconds = (time.perf_counter() - started) * validations
            if test_seconds is None:
                started = time.perf_counter()
                measure(model, test_sets, metrics, device=context.device, labels={}, image_dir=None)
                test_seconds = time.perf_counter() - started
            train_total, val_total = repeats * per_iteration * total, repeats * val_seconds
            loss_total = train_total + val_total + repeats * test_seconds
            loss_cap = cap_factor * (train_total + val_total) + repeats * test_seconds
            grand_total += loss_total
            grand_cap += loss_cap
            lines.append(f"| {config['name']} | {run.label} | {per_iteration:.3f} | {total} | {repeats} | "
                         f"{train_total / 60:.1f} | {val_total / 60:.1f} | {repeats * test_seconds / 60:.1f} | "
                         f"{loss_total / 60:.1f} | {loss_cap / 60:.1f} |")
        for label, reason in setup.skipped.items():
            lines.append(f"| {config['name']} | {label} | skipped: {reason.splitlines()[0][:80]} | | | | | | | |")
    lines.append(f"| **all** | | | | | | | | **{grand_total / 60:.0f}** | **{grand_cap / 60:.0f}** |")
    lines.append("")
    lines.append("Minutes of one process; with --jobs N on N cores, divide by about N.")
    return "\n".join(lines)
