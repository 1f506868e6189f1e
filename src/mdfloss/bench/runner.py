"""The run loop of one benchmark experiment: the same network trained once per loss, then tested.

Output folder layout (``OUT``)::

    manifest.json, results.csv    what ran and every finished run's metrics (manifest.py)
    report.md, report.html, report_files/
    weights/                      the authors' files converted to mdfloss weight files
    cache/<experiment>/           deterministic validation and test inputs
    <experiment>/reference/<dataset>/<image>-{target,input}.png
    <experiment>/input_results.csv  the degraded input's own metrics (bicubic upsampling for SR)
    <experiment>/<loss>/          a run: checkpoint, best weights, logs (fit.py),
                                  results.csv and images/<dataset>/<image>.png;
                                  discriminator.safetensors for a GAN run (gan.py)

A run whose ``results.csv`` exists is complete; ``--resume`` skips it and continues the others
from their checkpoints.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from .._files import write_csv
from ..metrics.image import ImageMetrics
from .config import LossRun, identity
from .distributed import Context, StopFlag
from .evaluate import (
    INPUT_LABEL,
    RESULT_FIELDS,
    DegradedInput,
    EvalSets,
    evaluate,
    format_row,
    save_references,
)
from .experiment import (
    Experiment,
    Setup,
    build_metrics,
    build_run_loss,
    build_run_model,
    description,
    load_eval_sets,
    set_up,
)
from .fit import BEST_FILES, CHECKPOINT, load_weights
from .gan import DISCRIMINATOR_FILE, make_trainer
from .manifest import (
    INPUT_RESULTS,
    RESULTS,
    record_experiment,
    record_run,
    recorded_runs,
)
from .reuse import find_finished_run, loss_digest, take_over


@dataclass
class Prepared:
    """An experiment ready to train: its set-up, validation and test images, metrics."""

    setup: Setup
    val_sets: EvalSets
    test_sets: EvalSets
    metrics: ImageMetrics | None


def prepare_experiment(config: dict[str, Any], out: Path, context: Context) -> Prepared:
    """Set up the experiment; on the main process also write the references and the input's
    own metrics (once) and record the experiment in the manifest."""
    setup = set_up(config, out, context)
    experiment = setup.experiment
    if not context.is_main:
        return Prepared(setup, {}, {}, None)
    val_sets = load_eval_sets(experiment, "val")
    test_sets = load_eval_sets(experiment, "test")
    metrics, lpips_note = build_metrics(experiment, context)
    save_references(test_sets, experiment.folder / "reference")
    _measure_input(experiment, test_sets, metrics, context)
    record_experiment(out, experiment.config["name"], description(experiment), skipped=setup.skipped,
                      lpips=lpips_note, iterations=setup.total)
    return Prepared(setup, val_sets, test_sets, metrics)


def run_experiment(config: dict[str, Any], out: Path, context: Context, *, resume: bool,
                   stop: StopFlag | None = None, only: str | None = None, reuse: Path | None = None) -> None:
    """Train, select and test the network with every loss (or only the loss labelled ``only``);
    results go to the run folders and the manifest. A run finished in the benchmark folder
    ``reuse`` with the same settings is taken over instead of trained (:mod:`.reuse`)."""
    prepared = prepare_experiment(config, out, context)
    setup, val_sets, test_sets, metrics = prepared.setup, prepared.val_sets, prepared.test_sets, prepared.metrics
    experiment = setup.experiment
    name = experiment.config["name"]
    recorded = recorded_runs(out, name) if context.is_main else {}
    for index, run in enumerate(setup.runs, 1):
        if only is not None and run.label != only:
            continue
        folder = experiment.folder / run.slug
        if (folder / RESULTS).is_file():
            if not resume:
                raise FileExistsError(f"{folder / RESULTS} exists: pass --resume to keep it, or choose another --out")
            if context.is_main and run.label not in recorded:
                record_run(out, name, run.label, _run_record(run, {"folder": str(folder.relative_to(out))}))
            continue
        description_text = f"{name} {run.label} [{index}/{len(setup.runs)}]"
        model, result, provenance = _train(setup, run, folder, val_sets, context, resume, stop, description_text,
                                           reuse, out)
        if context.is_main:
            record = _test(experiment, run, folder, model, result, test_sets, metrics, context)
            record_run(out, name, run.label, {**record, **provenance})
        context.barrier()


def _measure_input(experiment: Experiment, test_sets: EvalSets, metrics: Any, context: Context) -> None:
    """``input_results.csv``: the metrics of the degraded input itself (once)."""
    baseline = experiment.folder / INPUT_RESULTS
    if baseline.is_file():
        return
    config = experiment.config
    labels = {"task": config["task"], "model": config["model"]["type"], "loss": INPUT_LABEL}
    rows = evaluate(DegradedInput(experiment.degradation.scale), test_sets, metrics, device=context.device,
                    labels=labels, image_dir=None)
    write_csv(baseline, RESULT_FIELDS, [format_row(r) for r in rows])


def _train(setup: Setup, run: LossRun, folder: Path, val_sets: EvalSets, context: Context, resume: bool,
           stop: StopFlag | None, description_text: str,
           reuse: Path | None, out: Path) -> tuple[torch.nn.Module, Any, dict[str, str]]:
    """Train the network with ``run``'s loss (its content loss when ``gan.enabled``), from its
    checkpoint when resuming, or take the training over from ``reuse``.

    Returns the model, the training result and the run's provenance (``loss_digest``, and
    ``reused_from`` when taken over) for the manifest."""
    experiment = setup.experiment
    config = experiment.config
    loss_fn = build_run_loss(experiment, run, context.device)
    provenance = {"loss_digest": loss_digest(loss_fn)}
    run_identity = identity(config, run, setup.total, [p.name for p in experiment.train_paths])
    started_before = (folder / CHECKPOINT).is_file()
    context.barrier()
    if reuse is not None and context.is_main and not started_before:
        source = find_finished_run(reuse, out, config["name"], config, run_identity, provenance["loss_digest"])
        if source is not None:
            take_over(source, folder, run_identity)
            provenance["reused_from"] = str(source)
            print(f"{description_text}: training taken over from {source}", flush=True)
    context.barrier()
    taken_over = not started_before and (folder / CHECKPOINT).is_file()
    torch.manual_seed(config["train"]["seed"])
    model = build_run_model(config)
    trainer = make_trainer(
        folder=folder, model=model, loss_fn=loss_fn, patches=setup.patches, config=config, total=setup.total,
        identity=run_identity, context=context,
        val_images=val_sets.get("val"), border=experiment.border, stop=stop, description=description_text,
    )
    return model, trainer.run(resume=resume or taken_over), provenance


def _test(experiment: Experiment, run: LossRun, folder: Path, model: torch.nn.Module, result: Any,
          test_sets: EvalSets, metrics: Any, context: Context) -> dict[str, Any]:
    """Select the weights, test them, write the run's ``results.csv``; returns the manifest record."""
    config = experiment.config
    selection = config["train"]["select"]
    if selection != "last":
        load_weights(folder / BEST_FILES[selection], model)
    labels = {"task": config["task"], "model": config["model"]["type"], "loss": run.label}
    image_dir = folder / "images" if config["eval"]["save_images"] else None
    started = time.perf_counter()
    rows = evaluate(model, test_sets, metrics, device=context.device, labels=labels, image_dir=image_dir)
    write_csv(folder / RESULTS, RESULT_FIELDS, [format_row(r) for r in rows])
    out = experiment.out
    gan = {"discriminator": str((folder / DISCRIMINATOR_FILE).relative_to(out))} if config["gan"]["enabled"] else {}
    return _run_record(run, {
        "iterations": result.iterations, "train_seconds": round(result.seconds, 1),
        "eval_seconds": round(time.perf_counter() - started, 1), "selected": selection,
        "best": result.best, "folder": str(folder.relative_to(out)),
        "checkpoint": str((folder / CHECKPOINT).relative_to(out)), **gan,
    })


def _run_record(run: LossRun, result: dict[str, Any]) -> dict[str, Any]:
    return {"spec": run.spec, "mdf_options": run.mdf_options, "official_source": run.official_source, **result}
