"""The assembly of one benchmark experiment: its folders, data, losses, network and metrics.

:func:`set_up` checks a resolved config (see :mod:`~mdfloss.bench.config`), builds every loss
once (skipping optional ones whose weights are missing) and reads the training images;
:func:`load_eval_sets` gives the validation and test images; ``build_*`` make a run's loss,
network and metrics. Nothing here trains or records anything.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from .._files import list_images
from ..losses import build_loss, parse_loss_spec
from ..metrics.image import ImageMetrics
from .config import LossRun, identity, mdf_sources, resolve_losses, run_seed, total_iterations
from .convergence import ConvergenceRule
from .data import EvalImage, TrainPatches, eval_set, read_image
from .degradations import Degradation
from .distributed import Context
from .models import build_model
from .plugins import build_plugin_loss, build_plugin_model, is_plugin, make_degradation, plugin_record


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
    degradation = make_degradation(config["task"], config["degradation"])
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
    if not val_paths and config["train"]["converge"]["enabled"]:
        raise ValueError("train.converge: needs validation images (--val-dir or data.val_holdout) to follow the "
                         "validation PSNR")
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
    """The loss of ``run`` as specified (a scale-matched run's constant is applied by the runner)."""
    config = experiment.config
    if is_plugin(run.spec):
        options = config["loss_options"].get(run.spec.rpartition(":")[2])
        return build_plugin_loss(run.spec, options).to(device)
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
            if run.scale_to is not None:
                build_run_loss(experiment, run.scale_to, "cpu")
        except (FileNotFoundError, ValueError) as error:
            if run.label in optional and _is_missing_weights(error, run):
                skipped[run.label] = _without_home(str(error))
                continue
            hint = " (choose its weights with --mdf NAME_OR_FILE)" if run.label == "mdf" else ""
            raise type(error)(f"loss {run.label!r} ({run.spec}): {error}{hint}") from None
        usable.append(run)
    return usable, skipped


def _without_home(text: str) -> str:
    """``text`` with the user's home folder written ``~``, so that records name no machine's paths."""
    return text.replace(os.path.expanduser("~").rstrip("/") + "/", "~/")


def _is_missing_weights(error: Exception, run: LossRun) -> bool:
    specs = [run.spec] + ([run.scale_to.spec] if run.scale_to else [])
    needs_files = any(t.needs_imagenet_weights or t.name.startswith("mdf:")
                      for spec in specs if not is_plugin(spec) for t in parse_loss_spec(spec))
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
    """What training needs: the experiment, its usable runs, the skipped losses and why, the training images."""

    experiment: Experiment
    runs: list[LossRun]
    skipped: dict[str, str]
    images: list[np.ndarray]
    total: int
    """Training iterations per run (its budget)."""

    def seed(self, run: LossRun) -> int:
        """The training seed of ``run``: ``train.seed`` + its repeat (:func:`~.config.run_seed`)."""
        return run_seed(self.experiment.config, run)

    def identity(self, run: LossRun) -> dict[str, Any]:
        """What ``run``'s checkpoint must share with the config that resumes it (:func:`~.config.identity`)."""
        return identity(self.experiment.config, run, self.total, [p.name for p in self.experiment.train_paths])

    def patches(self, run: LossRun) -> TrainPatches:
        """The training samples of ``run``, drawn with its seed."""
        config = self.experiment.config
        return TrainPatches(self.images, self.experiment.degradation, patch_size=config["data"]["patch_size"],
                            augment=config["data"]["augment"], seed=self.seed(run),
                            names=[p.name for p in self.experiment.train_paths])


def set_up(config: dict[str, Any], out: Path, context: Context) -> Setup:
    """Check the config, build every loss once and read the training images."""
    config, skipped_official = without_unset_official(config)
    experiment = prepare(config, out)
    runs, skipped = check_losses(experiment, context)
    skipped.update(skipped_official)
    images = [read_image(p) for p in experiment.train_paths]
    setup = Setup(experiment, runs, skipped, images, total_iterations(config, len(images)))
    rule = ConvergenceRule.from_config(config["train"]["converge"], setup.total)
    if rule.enabled and rule.window_iterations < config["train"]["val_every"]:
        raise ValueError(f"train.converge.window: {rule.window} of {setup.total} iterations is {rule.window_iterations}, "
                         f"less than train.val_every ({config['train']['val_every']}): expected a window that holds "
                         "at least two validations")
    if runs:
        setup.patches(runs[0])  # checks the patch size against every image
    return setup


def build_run_model(config: dict[str, Any], degradation: Degradation | None = None) -> nn.Module:
    """The network of the experiment (a plugin is called with the task and the degradation's scale)."""
    options = {k: v for k, v in config["model"].items() if k not in ("type", "size")}
    model_type = config["model"]["type"]
    if is_plugin(model_type):
        scale = (degradation or make_degradation(config["task"], config["degradation"])).scale
        return build_plugin_model(model_type, task=config["task"], scale=scale, options=options)
    scale = config["degradation"].get("scale", 4)
    return build_model(model_type, task=config["task"], size=config["model"].get("size", "paper"),
                       scale=scale, **options)


def build_metrics(experiment: Experiment, context: Context) -> tuple[ImageMetrics, str]:
    """The metrics; LPIPS when its weights load, else a note saying why not."""
    from ..losses.perceptual import LPIPSVGGLoss

    options = experiment.config["perceptual"]["lpips"]
    try:
        lpips = LPIPSVGGLoss(reduction="none", check_range=False, **options).to(context.device)
        note = "LPIPS (VGG16 trunk, v0.1 heads)"
    except (FileNotFoundError, ValueError) as error:
        lpips, note = None, f"LPIPS not computed: {_without_home(str(error).rstrip('.'))}"
    return ImageMetrics(crop=experiment.border, lpips=lpips), note


def description(experiment: Experiment) -> dict[str, Any]:
    """What the manifest records of an experiment (see :mod:`~mdfloss.bench.manifest`): its config,
    datasets and losses, the sources of run-to-run variation that its repeats sample, and the
    version of every plugin it uses."""
    config = experiment.config
    return {
        "task": config["task"], "model": config["model"]["type"], "model_size": config["model"].get("size"),
        "config": config, "border": experiment.border,
        "datasets": [f"{n}/{c.name}" for n in experiment.test_dirs
                     for c in experiment.degradation.eval_conditions("test")],
        "losses": list(dict.fromkeys(r.label for r in experiment.runs)),
        "repeats": config["train"]["repeats"], "variation": variation_sources(config),
        "plugins": [plugin_record(spec) for spec in _plugin_specs(experiment)],
    }


def variation_sources(config: dict[str, Any]) -> list[str]:
    """What differs between the repeats of a loss (nothing with one repeat)."""
    if config["train"]["repeats"] == 1:
        return []
    sources = ["the network's training seed (initialisation, patch order, augmentation, noise draws)"]
    if len(mdf_sources(config)) > 1:
        sources.append(f"the MDF loss's phase-1 draw ({len(mdf_sources(config))} weight files of mdf.weights)")
    return sources


def _plugin_specs(experiment: Experiment) -> list[str]:
    config = experiment.config
    specs = [r.spec for r in experiment.runs if is_plugin(r.spec)]
    specs += [config["model"]["type"]] if is_plugin(str(config["model"]["type"])) else []
    specs += [config["degradation"]["plugin"]] if "plugin" in config["degradation"] else []
    return list(dict.fromkeys(specs))
