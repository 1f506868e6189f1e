"""How long a benchmark will take: a few timed iterations per loss, scaled to the whole run.

Each stretch of a run whose steps cost alike (a GAN run's L1 pre-training and its adversarial
phase) is timed on its own; the table gives their mean seconds per iteration over the run.
"""

from __future__ import annotations

import math
import time
from pathlib import Path
from typing import Any

import torch

from .config import identity
from .distributed import Context
from .evaluate import evaluate
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
    lines = ["| experiment | loss | s/iteration | iterations | train [min] | validation [min] | test [min] | total [min] |",
             "|---|---|---|---|---|---|---|---|"]
    grand_total = 0.0
    for config in configs:
        setup = set_up(config, out, context)
        experiment, total = setup.experiment, setup.total
        config = experiment.config
        batch = [setup.patches[k] for k in range(config["data"]["batch_size"])]
        inputs = torch.stack([b[0] for b in batch]).to(context.device)
        targets = torch.stack([b[1] for b in batch]).to(context.device)
        validations = math.ceil(total / config["train"]["val_every"])
        val_images = load_eval_sets(experiment, "val").get("val", [])
        test_sets = load_eval_sets(experiment, "test")
        metrics, _ = build_metrics(experiment, context)
        test_seconds = None
        for run in setup.runs:
            loss_fn = build_run_loss(experiment, run, context.device)
            model = build_run_model(config)
            trainer = make_trainer(
                folder=out / "estimate", model=model, loss_fn=loss_fn, patches=setup.patches, config=config,
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
                evaluate(model, test_sets, metrics, device=context.device, labels={}, image_dir=None)
                test_seconds = time.perf_counter() - started
            run_total = per_iteration * total + val_seconds + test_seconds
            grand_total += run_total
            lines.append(f"| {config['name']} | {run.label} | {per_iteration:.3f} | {total} | "
                         f"{per_iteration * total / 60:.1f} | {val_seconds / 60:.1f} | {test_seconds / 60:.1f} | "
                         f"{run_total / 60:.1f} |")
        for label, reason in setup.skipped.items():
            lines.append(f"| {config['name']} | {label} | skipped: {reason.splitlines()[0][:80]} | | | | | |")
    lines.append(f"| **all** | | | | | | | **{grand_total / 60:.0f}** |")
    return "\n".join(lines)
