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
                                  discriminator.safetensors for a GAN run (gan.py);
                                  loss_scale.json for a scale-matched run (scale_match.py)
    <experiment>/<loss>-repeatK/  repeat K >= 1 of the loss (train.repeats), trained with seed + K

A run whose ``results.csv`` exists is complete; ``--resume`` skips it and continues the others
from their checkpoints (:mod:`.run_folder`).
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch

from .._files import write_csv
from ..losses import WeightedSum
from ..metrics.image import ImageMetrics
from .evaluate import (
    INPUT_LABEL,
    RESULT_FIELDS,
    DegradedInput,
    EvalSets,
    format_row,
    measure,
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
from .gan import make_trainer
from .manifest import INPUT_RESULTS, record_experiment, record_run, recorded_runs
from .run_folder import CHECKPOINT, RESULTS, RunFolder, find_finished_run, loss_digest, take_over
from .scale_match import first_batches, kept_constant, scale_constant

if TYPE_CHECKING:
    from .config import LossRun
    from .distributed import Context, StopFlag
    from .fit import Trainer


@dataclass
class Prepared:
    """An experiment ready to train: its set-up, validation and test images, metrics."""

    setup: Setup
    val_sets: EvalSets
    test_sets: EvalSets
    metrics: ImageMetrics | None


@dataclass
class Conduct:
    """How this command trains: its process context, whether it resumes, its stop flag, and the
    benchmark folder it may take finished runs over from."""

    context: Context
    resume: bool
    stop: StopFlag | None = None
    reuse: Path | None = None


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
                   stop: StopFlag | None = None, only: str | None = None, reuse: Path | None = None,
                   prepared: Prepared | None = None) -> None:
    """Train, select and test the network in every run (loss and repeat), or only in the run whose
    key is ``only``; results go to the run folders and the manifest. A run finished in the
    benchmark folder ``reuse`` with the same settings is taken over instead of trained
    (:mod:`.run_folder`). ``prepared``: the experiment as :func:`prepare_experiment` gave it, when
    the caller has it already."""
    prepared = prepared or prepare_experiment(config, out, context)
    conduct = Conduct(context, resume, stop, reuse)
    setup = prepared.setup
    name = setup.experiment.config["name"]
    recorded = recorded_runs(out, name) if context.is_main else {}
    for index, run in enumerate(setup.runs, 1):
        if only is not None and run.key != only:
            continue
        folder = RunFolder(setup.experiment.folder / run.slug)
        folder.claim(resume)
        if folder.finished:
            if context.is_main and run.key not in recorded:
                record_run(out, name, run.key, _run_record(run, {"folder": str(folder.path.relative_to(out))}))
            continue
        trainer, result, provenance = _train(prepared, run, conduct, f"{name} {run.key} [{index}/{len(setup.runs)}]")
        if context.is_main:
            record = _test(prepared, run, trainer, result, context)
            record_run(out, name, run.key, {**record, **provenance})
        context.barrier()


def _measure_input(experiment: Experiment, test_sets: EvalSets, metrics: Any, context: Context) -> None:
    """``input_results.csv``: the metrics of the degraded input itself (once)."""
    baseline = experiment.folder / INPUT_RESULTS
    if baseline.is_file():
        return
    config = experiment.config
    labels = {"task": config["task"], "model": config["model"]["type"], "loss": INPUT_LABEL}
    rows = measure(DegradedInput(experiment.degradation.scale), test_sets, metrics, device=context.device,
                    labels=labels, image_dir=None)
    write_csv(baseline, RESULT_FIELDS, [format_row(r) for r in rows])


def _train(prepared: Prepared, run: LossRun, conduct: Conduct, description_text: str
           ) -> tuple[Trainer, Any, dict[str, Any]]:
    """Train the network with ``run``'s loss (its content loss when ``gan.enabled``), from its
    checkpoint when resuming, or take the training over from ``conduct.reuse``.

    Returns the trainer, the training result and the run's provenance (``loss_digest``,
    ``loss_scale`` for a scale-matched run, ``reused_from`` when taken over) for the manifest."""
    setup, context = prepared.setup, conduct.context
    experiment = setup.experiment
    config = experiment.config
    folder = experiment.folder / run.slug
    loss_fn = build_run_loss(experiment, run, context.device)
    provenance: dict[str, Any] = {"loss_digest": loss_digest(loss_fn)}
    run_identity = setup.identity(run)
    started_before = RunFolder(folder).started
    context.barrier()
    if conduct.reuse is not None and context.is_main and not started_before:
        source = find_finished_run(conduct.reuse, experiment.out, config["name"], config, run_identity,
                                   provenance["loss_digest"])
        if source is not None:
            take_over(source, folder, run_identity)
            provenance["reused_from"] = str(source)
            print(f"{description_text}: training taken over from {source}", flush=True)
    context.barrier()
    taken_over = not started_before and RunFolder(folder).started
    torch.manual_seed(setup.seed(run))
    model = build_run_model(config, experiment.degradation).to(context.device)
    patches = setup.patches(run)
    if run.scale_to is not None:
        reference = run.scale_to

        def measure_constant() -> float:
            batches = first_batches(patches, config["data"]["batch_size"])
            return scale_constant(loss_fn, build_run_loss(experiment, reference, context.device), model, batches)

        constant = kept_constant(folder, reference.spec, measure_constant, write=context.is_main)
        loss_fn = WeightedSum([loss_fn], [constant], [run.spec])
        provenance["loss_scale"] = constant
    trainer = make_trainer(
        folder=folder, model=model, loss_fn=loss_fn, patches=patches, config=config, total=setup.total,
        identity=run_identity, context=context, val_images=prepared.val_sets.get("val"), border=experiment.border,
        stop=conduct.stop, description=description_text,
    )
    return trainer, trainer.run(resume=conduct.resume or taken_over), provenance


def _test(prepared: Prepared, run: LossRun, trainer: Trainer, result: Any, context: Context) -> dict[str, Any]:
    """Select the weights, test them, write the run's ``results.csv``; returns the manifest record."""
    experiment = prepared.setup.experiment
    config, out, folder = experiment.config, experiment.out, trainer.folder
    selection = trainer.load_selected()
    labels = {"task": config["task"], "model": config["model"]["type"], "loss": run.label, "repeat": run.repeat}
    image_dir = folder / "images" if config["eval"]["save_images"] else None
    started = time.perf_counter()
    rows = measure(trainer.model, prepared.test_sets, prepared.metrics, device=context.device, labels=labels,
                    image_dir=image_dir)
    write_csv(folder / RESULTS, RESULT_FIELDS, [format_row(r) for r in rows])
    return _run_record(run, {
        "iterations": result.iterations, "train_seconds": round(result.seconds, 1),
        "eval_seconds": round(time.perf_counter() - started, 1), "selected": selection,
        "best": result.best, "folder": str(folder.relative_to(out)),
        "checkpoint": str((folder / CHECKPOINT).relative_to(out)), "status": result.status,
        "predicted_gain_db": None if math.isnan(result.gain) else round(result.gain, 4),
        **{key: str(path.relative_to(out)) for key, path in trainer.outputs().items()},
    })


def _run_record(run: LossRun, result: dict[str, Any]) -> dict[str, Any]:
    scaled = {"scale_to": run.scale_to.spec} if run.scale_to else {}
    return {"label": run.label, "repeat": run.repeat, "spec": run.spec, "mdf_options": run.mdf_options,
            "official_source": run.official_source, **scaled, **result}
