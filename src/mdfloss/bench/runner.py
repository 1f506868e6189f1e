"""One benchmark experiment: the same network trained once per loss, then tested and recorded.

Output folder layout (``OUT``)::

    manifest.json                 what ran: configs, loss specs, skipped losses and why, timings
    results.csv                   every experiment's per-image metrics (see evaluate.py)
    report.md, report.html, report_files/
    weights/                      the authors' files converted to mdfloss weight files
    cache/<experiment>/           deterministic validation and test inputs
    <experiment>/reference/<dataset>/<image>-{target,input}.png
    <experiment>/input_results.csv  the degraded input's own metrics (bicubic upsampling for SR)
    <experiment>/<loss>/          a run: checkpoint, best weights, logs (train.py),
                                  results.csv and images/<dataset>/<image>.png

A run whose ``results.csv`` exists is complete; ``--resume`` skips it and continues the others
from their checkpoints.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from .._files import list_images, read_csv, write_csv
from .._files import write_atomically
from .config import LossRun, identity, resolve_losses, total_iterations
from .data import EvalImage, TrainPatches, eval_set, read_image
from .degradations import Degradation, build_degradation
from .distributed import Context, StopFlag
from .evaluate import INPUT_LABEL, RESULT_FIELDS, DegradedInput, evaluate, format_row, save_references
from ..losses import build_loss, parse_loss_spec
from ..metrics.image import ImageMetrics
from .models import build_model
from .fit import BEST_FILES, CHECKPOINT, Trainer, load_weights

MANIFEST = "manifest.json"
RESULTS = "results.csv"
INPUT_RESULTS = "input_results.csv"
"""Per experiment: the metrics of the degraded input itself (bicubic for super-resolution), for reference."""


@dataclass
class Experiment:
    """An experiment's config with its data and losses resolved."""

    config: dict[str, Any]
    out: Path
    degradation: Degradation
    train_paths: list[Path]
    val_paths: list[Path]
    test_dirs: dict[str, Path]
    runs: list[LossRun]

    @property
    def folder(self) -> Path:
        return self.out / self.config["name"]

    @property
    def border(self) -> int:
        crop = self.config["eval"]["crop_border"]
        return self.degradation.scale if crop is None else int(crop)


def prepare(config: dict[str, Any], out: Path) -> Experiment:
    """Check folders and losses' labels; nothing is trained or written."""
    data = config["data"]
    if not data["train_dir"]:
        raise ValueError("data.train_dir: expected a folder of training images (--train-dir)")
    if not data["test_dir"]:
        raise ValueError("data.test_dir: expected a folder of test images (--test-dir)")
    degradation = build_degradation(config["task"], config["degradation"])
    train_paths = list_images(data["train_dir"], "data.train_dir")
    if data["val_dir"]:
        val_paths = list_images(data["val_dir"], "data.val_dir")
    elif data["val_holdout"]:
        if data["val_holdout"] >= len(train_paths):
            raise ValueError(
                f"data.val_holdout: {data['val_holdout']} of {len(train_paths)} training images leaves none to train on"
            )
        train_paths, val_paths = train_paths[: -data["val_holdout"]], train_paths[-data["val_holdout"]:]
    else:
        val_paths = []
    if not val_paths and config["train"]["select"] != "last":
        raise ValueError(
            f"train.select: {config['train']['select']!r} needs validation images (--val-dir or data.val_holdout); "
            "use train.select=last to test the last weights"
        )
    if data["val_limit"]:
        val_paths = val_paths[: data["val_limit"]]
    test_dirs = _dataset_names(data["test_dir"])
    for folder in test_dirs.values():
        list_images(folder, "data.test_dir")
    return Experiment(config, out, degradation, train_paths, val_paths, test_dirs,
                      resolve_losses(config, out / "weights"))


def _dataset_names(test_dir: str | list[str]) -> dict[str, Path]:
    folders = [Path(p) for p in ([test_dir] if isinstance(test_dir, str) else test_dir)]
    names: dict[str, Path] = {}
    for folder in folders:
        name = folder.resolve().name or "test"
        if name in names:
            name = f"{folder.resolve().parent.name}-{name}"
        names[name] = folder
    return names


def load_eval_sets(experiment: Experiment, split: str) -> dict[str, list[EvalImage]]:
    """``{dataset: images}`` for "val" (one dataset, cropped) or "test" (every folder and condition)."""
    cache = experiment.out / "cache" / experiment.config["name"]
    degradation = experiment.degradation
    if split == "val":
        if not experiment.val_paths:
            return {}
        condition = degradation.eval_conditions("val")[0]
        return {"val": eval_set(experiment.val_paths, degradation, condition, cache_dir=cache / "val",
                                crop=experiment.config["data"]["val_crop"])}
    sets = {}
    limit = experiment.config["data"]["test_limit"]
    for name, folder in experiment.test_dirs.items():
        paths = list_images(folder)[:limit] if limit else list_images(folder)
        for condition in degradation.eval_conditions("test"):
            sets[f"{name}/{condition.name}"] = eval_set(paths, degradation, condition, cache_dir=cache / name)
    return sets


def build_run_loss(experiment: Experiment, run: LossRun, device: torch.device | str) -> nn.Module:
    config = experiment.config
    return build_loss(run.spec, device=device, mdf_options=run.mdf_options,
                      perceptual_options=config["perceptual"])


def convert_official(run: LossRun) -> None:
    """Write the mdfloss weight file of an official ``Ds_*.pth`` (once)."""
    from ..loss import MDFLoss

    target = Path(run.spec[len("mdf:"):])
    if run.official_source and not target.is_file():
        MDFLoss.from_official(run.official_source).save(target)


def check_losses(experiment: Experiment, context: Context) -> tuple[list[LossRun], dict[str, str]]:
    """Build every loss once (fail fast); optional losses whose weights are missing are skipped."""
    optional = set(experiment.config["optional_losses"])
    usable, skipped = [], {}
    for run in experiment.runs:
        try:
            if context.is_main:
                convert_official(run)
            context.barrier()
            build_run_loss(experiment, run, "cpu")
        except (FileNotFoundError, ValueError) as error:
            if run.label in optional and _is_missing_weights(error, run):
                skipped[run.label] = str(error)
                continue
            hint = " (choose its weights with --mdf NAME_OR_FILE)" if run.label == "mdf" else ""
            raise type(error)(f"loss {run.label!r} ({run.spec}): {error}{hint}") from None
        usable.append(run)
    return usable, skipped


def _is_missing_weights(error: Exception, run: LossRun) -> bool:
    needs_files = any(t.needs_imagenet_weights or t.name.startswith("mdf:") for t in parse_loss_spec(run.spec))
    return isinstance(error, FileNotFoundError) and needs_files


def without_unset_official(config: dict[str, Any]) -> tuple[dict[str, Any], dict[str, str]]:
    """Drop an optional ``mdf-official`` when no ``official.dir`` is given: (config, {label: why})."""
    label = "mdf-official"
    if config["official"]["dir"] is None and label in config["losses"] and label in config["optional_losses"]:
        losses = [loss for loss in config["losses"] if loss != label]
        return dict(config, losses=losses), {label: "official.dir not given (--official-dir)"}
    return config, {}


@dataclass
class Setup:
    """What training needs: the experiment, its usable losses, the skipped ones and why, patches."""

    experiment: Experiment
    runs: list[LossRun]
    skipped: dict[str, str]
    patches: TrainPatches
    total: int
    """Training iterations per loss."""


def set_up(config: dict[str, Any], out: Path, context: Context) -> Setup:
    """Check the config, build every loss once and read the training images."""
    config, skipped_official = without_unset_official(config)
    experiment = prepare(config, out)
    runs, skipped = check_losses(experiment, context)
    skipped.update(skipped_official)
    train_images = [read_image(p) for p in experiment.train_paths]
    patches = TrainPatches(train_images, experiment.degradation, patch_size=config["data"]["patch_size"],
                           augment=config["data"]["augment"], seed=config["train"]["seed"],
                           names=[p.name for p in experiment.train_paths])
    return Setup(experiment, runs, skipped, patches, total_iterations(config, len(train_images)))


def run_experiment(config: dict[str, Any], out: Path, context: Context, *, resume: bool,
                   stop: StopFlag | None = None) -> None:
    """Train, select and test the network with every loss; results go to the run folders and the manifest."""
    setup = set_up(config, out, context)
    experiment, runs, skipped, patches, total = (
        setup.experiment, setup.runs, setup.skipped, setup.patches, setup.total)
    config = experiment.config
    val_sets = load_eval_sets(experiment, "val") if context.is_main else {}
    test_sets = load_eval_sets(experiment, "test") if context.is_main else {}
    metrics, lpips_note = build_metrics(experiment, context) if context.is_main else (None, "")
    if context.is_main:
        save_references(test_sets, experiment.folder / "reference")
        baseline = experiment.folder / INPUT_RESULTS
        if not baseline.is_file():
            labels = {"task": config["task"], "model": config["model"]["type"], "loss": INPUT_LABEL}
            rows_in = evaluate(DegradedInput(experiment.degradation.scale), test_sets, metrics, device=context.device,
                               labels=labels, image_dir=None)
            write_csv(baseline, RESULT_FIELDS, [format_row(r) for r in rows_in])
        update_manifest(out, experiment, skipped=skipped, lpips_note=lpips_note, total=total)
    recorded = read_manifest(out)["experiments"].get(config["name"], {}).get("runs", {}) if context.is_main else {}
    for index, run in enumerate(runs, 1):
        folder = experiment.folder / run.slug
        results_path = folder / RESULTS
        if results_path.is_file():
            if not resume:
                raise FileExistsError(f"{results_path} exists: pass --resume to keep it, or choose another --out")
            if context.is_main and run.label not in recorded:
                update_manifest(out, experiment, run=run, result={"folder": str(folder.relative_to(out))})
            continue
        description = f"{config['name']} {run.label} [{index}/{len(runs)}]"
        loss_fn = build_run_loss(experiment, run, context.device)
        torch.manual_seed(config["train"]["seed"])
        model = build_run_model(config)
        trainer = Trainer(
            folder=folder, model=model, loss_fn=loss_fn, patches=patches, config=config, total=total,
            identity=identity(config, run, total, [p.name for p in experiment.train_paths]), context=context,
            val_images=val_sets.get("val"), border=experiment.border, stop=stop, description=description,
        )
        result = trainer.run(resume=resume)
        if context.is_main:
            selection = config["train"]["select"]
            if selection != "last":
                load_weights(folder / BEST_FILES[selection], model)
            labels = {"task": config["task"], "model": config["model"]["type"], "loss": run.label}
            image_dir = folder / "images" if config["eval"]["save_images"] else None
            started = time.perf_counter()
            run_rows = evaluate(model, test_sets, metrics, device=context.device, labels=labels, image_dir=image_dir)
            write_csv(results_path, RESULT_FIELDS, [format_row(r) for r in run_rows])
            update_manifest(out, experiment, run=run, result={
                "iterations": result.iterations, "train_seconds": round(result.seconds, 1),
                "eval_seconds": round(time.perf_counter() - started, 1), "selected": selection,
                "best": result.best, "folder": str(folder.relative_to(out)),
                "checkpoint": str((folder / CHECKPOINT).relative_to(out)),
            })
        context.barrier()


def build_run_model(config: dict[str, Any]) -> nn.Module:
    options = {k: v for k, v in config["model"].items() if k not in ("type", "size")}
    scale = config["degradation"].get("scale", 4)
    return build_model(config["model"]["type"], task=config["task"], size=config["model"].get("size", "paper"),
                       scale=scale, **options)


def build_metrics(experiment: Experiment, context: Context) -> tuple[ImageMetrics, str]:
    """The metrics; LPIPS when its weights load, else a note saying why not."""
    from ..losses.perceptual import LPIPSVGGLoss

    options = experiment.config["perceptual"]["lpips"]
    try:
        lpips = LPIPSVGGLoss(reduction="none", check_range=False, **options).to(context.device)
        note = "LPIPS (VGG16 trunk, v0.1 heads)"
    except (FileNotFoundError, ValueError) as error:
        lpips, note = None, f"LPIPS not computed: {str(error).rstrip('.')}"
    return ImageMetrics(crop=experiment.border, lpips=lpips), note


def read_manifest(out: Path) -> dict[str, Any]:
    path = out / MANIFEST
    if not path.is_file():
        return {"experiments": {}}
    return json.loads(path.read_text(encoding="utf-8"))


def update_manifest(out: Path, experiment: Experiment, *, run: LossRun | None = None,
                    result: dict[str, Any] | None = None, skipped: dict[str, str] | None = None,
                    lpips_note: str | None = None, total: int | None = None) -> None:
    """Record an experiment (and one finished run) in ``manifest.json``; after a run, rewrite ``results.csv``."""
    manifest = read_manifest(out)
    config = experiment.config
    entry = manifest["experiments"].setdefault(config["name"], {"runs": {}})
    entry.update(task=config["task"], model=config["model"]["type"], model_size=config["model"].get("size"),
                 config=config, border=experiment.border,
                 datasets=[f"{n}/{c.name}" for n in experiment.test_dirs
                           for c in experiment.degradation.eval_conditions("test")],
                 losses=[r.label for r in experiment.runs])
    if skipped is not None:
        entry["skipped"] = skipped
    if lpips_note is not None:
        entry["lpips"] = lpips_note
    if total is not None:
        entry["iterations"] = total
    if run is not None:
        entry["runs"][run.label] = {"spec": run.spec, "mdf_options": run.mdf_options,
                                    "official_source": run.official_source, **(result or {})}
    write_manifest(out, manifest)
    if run is not None:
        write_results(out, manifest)


def write_manifest(out: Path, manifest: dict[str, Any]) -> None:
    """``manifest.json``, atomically."""
    text = json.dumps(manifest, indent=1, sort_keys=True, default=str)
    write_atomically(out / MANIFEST, lambda tmp: Path(tmp).write_text(text, encoding="utf-8"))


def write_results(out: Path, manifest: dict[str, Any]) -> None:
    """``results.csv``: the rows of every finished run, in manifest order."""
    rows = [row for entry in manifest["experiments"].values() for row in experiment_results(out, entry)]
    write_csv(out / RESULTS, RESULT_FIELDS, rows)


def experiment_results(out: Path, entry: dict[str, Any]) -> list[dict[str, str]]:
    """The result rows of one manifest experiment, in its loss order."""
    rows = []
    for label in entry.get("losses", []):
        run = entry["runs"].get(label)
        if run is not None:
            rows += read_csv(out / run["folder"] / RESULTS)
    return rows
