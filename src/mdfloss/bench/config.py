"""Experiment configs: YAML files, presets, command-line overrides, and the loss labels they name.

An experiment is one task with one model, trained once per loss. Its config is built in
layers, each overriding the one before:

1. :data:`DEFAULTS` (every key that exists; unknown keys are refused);
2. the built-in experiment ``configs/<task>-<model>.yaml`` (the paper's settings), or a user's
   file given with ``--config`` (which may name a built-in ``base:``);
3. a preset (``configs/preset-<name>.yaml``): ``common`` overrides, then the experiment's own;
4. command-line flags (``--iters``, ``--train-dir``...), then ``--set key.sub=value`` (YAML values).

Loss labels (the names in ``losses:``, the columns of the report) resolve to loss specs for
:func:`mdfloss.losses.build_loss`: ``loss_aliases`` first (the paper's ``vgg`` is
``l2+vgg``, its ``lpips`` is ``l2+0.1*lpips``), then ``mdf`` (``mdf.weights``, by default the
pretrained loss named after the task) and ``mdf-official`` (the authors' file for the task in
``official.dir``, converted to a weight file in the output folder); any other label is a spec.
"""

from __future__ import annotations

import copy
import difflib
import json
import re
from dataclasses import dataclass, field, replace
from importlib import resources
from pathlib import Path
from typing import Any

from .._checks import check_choice, check_int, check_number
from .._files import existing_file
from .degradations import TASKS
from .models import DISCRIMINATOR_SIZES, check_model
from .plugins import is_plugin

CONFIG_PACKAGE = "mdfloss.bench"
CONFIG_FOLDER = "configs"
PRESET_PREFIX = "preset-"
FREE_FORM = ("model", "degradation", "loss_aliases", "loss_options", "mdf.options", "official.options",
             "train.optimizer", "train.scheduler", "perceptual.vgg", "perceptual.lpips", "gan.optimizer",
             "gan.scheduler")
"""Sections whose keys are checked where they are used (constructor arguments), not here."""

PRETRAINED_BY_TASK = {"sisr": "sisr", "denoise": "denoise", "jpeg": "jpeg"}
OFFICIAL_FILES = {"sisr": ("Ds_SISR.pth",), "denoise": ("Ds_Denoising.pth", "Ds_SISR.pth"), "jpeg": ("Ds_JPEG.pth",)}
"""The authors' file per task; upstream Ds_Denoising.pth is byte-identical to Ds_SISR.pth."""

DEFAULTS: dict[str, Any] = {
    "name": None,
    "base": None,
    "task": None,
    "model": {"type": None, "size": "paper"},
    "degradation": {},
    "losses": ["l2", "l1", "ssim", "msssim", "vgg", "lpips", "msssim+l1", "mdf"],
    "optional_losses": [],
    "loss_aliases": {"vgg": "l2+vgg", "lpips": "l2+0.1*lpips"},
    "loss_options": {},
    "mdf": {"weights": None, "options": {}},
    "official": {"dir": None, "file": None, "options": {"features": "official", "scales": 8}},
    "perceptual": {"vgg": {"weights": None}, "lpips": {"weights": None, "heads": None}},
    "data": {
        "train_dir": None, "val_dir": None, "test_dir": None, "val_holdout": 0, "patch_size": 96,
        "batch_size": 16, "augment": True, "workers": 0, "val_crop": None, "val_limit": None,
        "test_limit": None,
    },
    "train": {
        "iters": None, "epochs": None, "patches_per_image": 1, "seed": 0,
        "optimizer": {"type": "adam", "lr": 1e-4},
        "scheduler": {"type": "constant"},
        "grad_clip": None, "val_every": 1000, "checkpoint_every": 1000, "log_every": 10,
        "select": "val_loss", "threads": None, "device": "auto", "stop_after": None, "repeats": 1,
        "converge": {"enabled": False, "min_gain_db": 0.1, "window": 0.25, "max_factor": 4},
    },
    "eval": {"crop_border": None, "save_images": True},
    "logging": {"tensorboard": False, "progress": True},
    "report": {"references": None, "crop_images": 2, "crop_size": 64},
    "gan": {
        "enabled": False, "pretrain_iters": 0, "content_weight": 1.0, "l1_weight": 0.01,
        "adversarial_weight": 0.005, "discriminator": "paper",
        "optimizer": {"type": "adam", "lr": 1e-4, "betas": [0.9, 0.999]},
        "scheduler": {"type": "multistep", "milestones": [0.125, 0.25, 0.5, 0.75], "gamma": 0.5},
    },
}
"""Every key. ``gan``: adversarial training (see :mod:`mdfloss.bench.gan`): ``enabled``; the first
``pretrain_iters`` of ``train.iters`` train the generator with L1 under ``train.optimizer`` and
``train.scheduler``; the rest minimise ``content_weight`` x (the run's loss) + ``l1_weight`` x L1
+ ``adversarial_weight`` x RaGAN, generator and ``discriminator`` (size ``paper`` or ``small``)
each with its own ``gan.optimizer`` and ``gan.scheduler`` (milestones: fractions of that phase).
``train.repeats``: runs per loss (:func:`resolve_losses`); ``train.converge``: training each run to
its own convergence (:mod:`.convergence`); ``loss_options``: keyword arguments of the loss plugins
(:mod:`.plugins`), by attribute name."""
SELECTIONS = ("val_loss", "val_psnr", "last")
_TERMS = re.compile(r"(?<![0-9][eE])\+")
"""The '+' between the terms of a loss label (not the one of an exponent such as 1e+3)."""
GAN_WEIGHTS = ("content_weight", "l1_weight", "adversarial_weight")


def builtin_names() -> list[str]:
    """Built-in experiment configs (``sisr-edsr``...) and presets (``preset-cpu-mini``...)."""
    folder = resources.files(CONFIG_PACKAGE) / CONFIG_FOLDER
    return sorted(entry.name[:-5] for entry in folder.iterdir() if entry.name.endswith(".yaml"))


def experiment_names() -> list[str]:
    return [n for n in builtin_names() if not n.startswith(PRESET_PREFIX)]


def preset_names() -> list[str]:
    return [n[len(PRESET_PREFIX):] for n in builtin_names() if n.startswith(PRESET_PREFIX)]


def load_yaml(path: str | Path) -> dict[str, Any]:
    """A YAML mapping from a file; errors name the file."""
    import yaml

    path = existing_file(path, "config", "a YAML config file")
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as error:
        raise ValueError(f"{path}: not valid YAML ({error})") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ValueError(f"{path}: expected a YAML mapping at the top level, got {type(data).__name__}")
    return data


def load_builtin(name: str) -> dict[str, Any]:
    if name not in builtin_names():
        raise ValueError(f"config: expected a built-in config ({', '.join(builtin_names())}), got {name!r}")
    with resources.as_file(resources.files(CONFIG_PACKAGE) / CONFIG_FOLDER / f"{name}.yaml") as path:
        return load_yaml(path)


def merge(base: dict[str, Any], override: dict[str, Any]) -> dict[str, Any]:
    """Deep merge: mappings merge key by key, anything else (lists included) is replaced.

    A mapping that names another ``type`` or ``plugin`` (``{type: adam, lr: 1e-3}`` over ``{type: sgd,
    momentum: 0.9}``) replaces the old one whole: the old kind's options mean nothing to the new.
    """
    merged = copy.deepcopy(base)
    for key, value in override.items():
        old = merged.get(key)
        if isinstance(value, dict) and isinstance(old, dict) and all(
                value.get(kind, old.get(kind)) == old.get(kind) for kind in ("type", "plugin")):
            merged[key] = merge(old, value)
        else:
            merged[key] = copy.deepcopy(value)
    return merged


def parse_value(text: str) -> Any:
    """A command-line value as YAML (``1e-3`` and ``1E5`` read as numbers, as YAML 1.2 would)."""
    import yaml

    try:
        value = yaml.safe_load(text)
    except yaml.YAMLError:
        return text
    if isinstance(value, str):
        for convert in (int, float):
            try:
                return convert(value)
            except ValueError:
                pass
    return value


def parse_assignment(assignment: str) -> dict[str, Any]:
    """``"train.optimizer.lr=1e-4"`` -> ``{"train": {"optimizer": {"lr": 1e-4}}}``."""
    key, sep, value = assignment.partition("=")
    key = key.strip()
    if not sep or not key or not re.fullmatch(r"[A-Za-z0-9_-]+(\.[A-Za-z0-9_-]+)*", key):
        raise ValueError(f"--set: expected KEY.SUB=VALUE such as train.optimizer.lr=1e-4, got {assignment!r}")
    nested: dict[str, Any] = {}
    cursor = nested
    parts = key.split(".")
    for part in parts[:-1]:
        cursor = cursor.setdefault(part, {})
    cursor[parts[-1]] = parse_value(value)
    return nested


def check_keys(config: dict[str, Any], schema: dict[str, Any] = DEFAULTS, prefix: str = "") -> None:
    """Refuse keys that :data:`DEFAULTS` does not have, suggesting the closest one."""
    for key, value in config.items():
        dotted = f"{prefix}{key}"
        if key not in schema:
            close = difflib.get_close_matches(key, list(schema), n=1)
            hint = f" (did you mean {prefix}{close[0]}?)" if close else ""
            raise ValueError(f"config: unknown key {dotted!r}{hint}; known keys here: {', '.join(sorted(schema))}")
        if dotted in FREE_FORM or not isinstance(schema[key], dict):
            continue
        if not isinstance(value, dict):
            raise ValueError(f"config: expected a mapping for {dotted!r}, got {value!r}")
        check_keys(value, schema[key], dotted + ".")


def experiment_config(layers: list[dict[str, Any]]) -> dict[str, Any]:
    """DEFAULTS <- (a built-in base named by the first layer) <- layers, checked and completed."""
    config = copy.deepcopy(DEFAULTS)
    for layer in layers:
        check_keys(layer)
        base = layer.get("base")
        if base is not None:
            builtin = load_builtin(base)
            check_keys(builtin)
            config = merge(config, builtin)
        config = merge(config, layer)
    return complete(config)


def recorded_config(config: dict[str, Any]) -> dict[str, Any]:
    """A config read back from a manifest, completed with the keys added to :data:`DEFAULTS` since it was written."""
    return merge(DEFAULTS, config)


def complete(config: dict[str, Any]) -> dict[str, Any]:
    """Validate the values that do not depend on files, and fill derived defaults."""
    task = config["task"]
    if task not in TASKS:
        raise ValueError(f"task: expected one of {TASKS}, got {task!r}")
    model_type = config["model"].get("type")
    if not (isinstance(model_type, str) and is_plugin(model_type)):
        check_model(model_type, task, config["model"].get("size", "paper"))
    config["name"] = config["name"] or f"{task}-{_model_name(model_type)}"
    if not re.fullmatch(r"[A-Za-z0-9_.-]+", config["name"]):
        raise ValueError(f"name: expected letters, digits, '.', '_' or '-', got {config['name']!r}")
    losses = config["losses"]
    if isinstance(losses, str):
        losses = [s.strip() for s in losses.split(",") if s.strip()]
    if not isinstance(losses, list) or not losses or not all(isinstance(s, str) for s in losses):
        raise ValueError(f"losses: expected a non-empty list of loss labels, got {config['losses']!r}")
    if len(set(losses)) != len(losses):
        raise ValueError(f"losses: expected distinct labels, got {losses}")
    config["losses"] = losses
    train, data = config["train"], config["data"]
    for key in ("patch_size", "batch_size"):
        data[key] = check_int(f"data.{key}", data[key], minimum=1, integral_float=True)
    for key in ("val_every", "checkpoint_every", "log_every", "patches_per_image"):
        train[key] = check_int(f"train.{key}", train[key], minimum=1, integral_float=True)
    for key in ("workers", "val_holdout"):
        data[key] = check_int(f"data.{key}", data[key], minimum=0, integral_float=True)
    for key in ("iters", "epochs", "stop_after", "threads"):
        if train[key] is not None:
            train[key] = check_int(f"train.{key}", train[key], minimum=1, integral_float=True)
    if train["iters"] is None and train["epochs"] is None:
        raise ValueError("train.iters: expected a number of iterations (or train.epochs), got neither")
    if train["select"] not in SELECTIONS:
        raise ValueError(f"train.select: expected one of {SELECTIONS}, got {train['select']!r}")
    if train["grad_clip"] is not None:
        train["grad_clip"] = float(train["grad_clip"])
    train["repeats"] = check_int("train.repeats", train["repeats"], minimum=1, integral_float=True)
    _check_converge(config)
    _check_mdf_weights(config)
    _check_gan(config)
    return config


def _model_name(model_type: Any) -> str:
    """A network's part of the experiment name (a plugin's attribute, ``mypkg.nets:build`` -> ``build``)."""
    return str(model_type).rpartition(":")[2]


def _check_converge(config: dict[str, Any]) -> None:
    """``train.converge``: checked and converted in place (see :mod:`.convergence`)."""
    converge = config["train"]["converge"]
    check_keys(converge, DEFAULTS["train"]["converge"], "train.converge.")
    check_choice("train.converge.enabled", converge["enabled"], (True, False))
    converge["min_gain_db"] = check_number("train.converge.min_gain_db", converge["min_gain_db"], minimum=0)
    converge["window"] = check_number("train.converge.window", converge["window"], minimum=0)
    if not 0 < converge["window"] <= 1:
        raise ValueError(f"train.converge.window: expected a fraction of the run in (0, 1], got {converge['window']}")
    converge["max_factor"] = check_number("train.converge.max_factor", converge["max_factor"], minimum=1)
    if converge["enabled"] and config["gan"]["enabled"]:
        raise ValueError("train.converge: not available for adversarial runs (gan.enabled), whose phases have fixed lengths")


def _check_mdf_weights(config: dict[str, Any]) -> None:
    """``mdf.weights``: a name or file, or a list of them, one per repeat."""
    weights = config["mdf"]["weights"]
    if isinstance(weights, str) and "," in weights:
        weights = config["mdf"]["weights"] = [w.strip() for w in weights.split(",") if w.strip()]
    if isinstance(weights, list):
        repeats = config["train"]["repeats"]
        if not weights or not all(isinstance(w, str) and w for w in weights) or len(weights) not in (1, repeats):
            raise ValueError(f"mdf.weights: expected one name or file, or one per repeat ({repeats}), got {weights!r}")
    elif weights is not None and not isinstance(weights, str):
        raise ValueError(f"mdf.weights: expected a name, a file or a list of them, got {weights!r}")


def _check_gan(config: dict[str, Any]) -> None:
    """The ``gan`` section: checked and converted in place when ``gan.enabled``."""
    gan = config["gan"]
    check_choice("gan.enabled", gan["enabled"], (True, False))
    if not gan["enabled"]:
        return
    if config["task"] != "sisr":
        raise ValueError(f"gan.enabled: expected task 'sisr' for adversarial training, got {config['task']!r}")
    gan["pretrain_iters"] = check_int("gan.pretrain_iters", gan["pretrain_iters"], minimum=0, integral_float=True)
    iters = config["train"]["iters"]
    if iters is not None and gan["pretrain_iters"] >= iters:
        raise ValueError(f"gan.pretrain_iters: expected fewer than train.iters ({iters}) to leave an adversarial "
                         f"phase, got {gan['pretrain_iters']}")
    for key in GAN_WEIGHTS:
        gan[key] = check_number(f"gan.{key}", gan[key], minimum=0)
    check_choice("gan.discriminator", gan["discriminator"], tuple(DISCRIMINATOR_SIZES))


def total_iterations(config: dict[str, Any], train_images: int) -> int:
    """``train.iters``, or ``epochs`` x ceil(images x patches_per_image / batch_size)."""
    train = config["train"]
    if train["iters"] is not None:
        return int(train["iters"])
    samples = train_images * train["patches_per_image"]
    return train["epochs"] * -(-samples // config["data"]["batch_size"])


@dataclass(frozen=True)
class LossRun:
    """One run of an experiment: a loss (its label: report column, folder) and a repeat, and what builds it."""

    label: str
    spec: str
    mdf_options: dict[str, Any] = field(default_factory=dict)
    official_source: str | None = None
    """For ``mdf-official``: the authors' file that ``spec``'s weight file is converted from."""
    repeat: int = 0
    scale_to: LossRun | None = None
    """For ``A@B``: the loss whose mean gradient norm this run's loss is scaled to (:mod:`.scale_match`)."""

    @property
    def key(self) -> str:
        """The run's name in the manifest: the label, with ``#k`` for repeat k >= 1."""
        return self.label if self.repeat == 0 else f"{self.label}#{self.repeat}"

    @property
    def slug(self) -> str:
        """The run's folder name: the label made safe, with ``-repeatK`` for repeat k >= 1."""
        base = re.sub(r"[^A-Za-z0-9.+_-]", "_", self.label.replace("*", "x"))
        return base if self.repeat == 0 else f"{base}-repeat{self.repeat}"


def resolve_losses(config: dict[str, Any], weights_dir: Path) -> list[LossRun]:
    """Every (loss label, repeat) of the experiment as a :class:`LossRun`, label by label (files are not opened).

    Repeat k of a run trains with ``train.seed + k``; a loss that uses ``mdf`` takes the k-th of
    ``mdf.weights`` when that is a list (one phase-1 draw per repeat).
    """
    repeats = config["train"]["repeats"]
    runs = [_resolve(config, label, weights_dir, repeat) for label in config["losses"] for repeat in range(repeats)]
    slugs = [r.slug for r in runs]
    if len(set(slugs)) != len(slugs):
        raise ValueError(f"losses: labels {config['losses']} give clashing folder names {sorted(set(slugs))}")
    return runs


def mdf_sources(config: dict[str, Any]) -> list[str]:
    """``mdf.weights`` as a list (the pretrained loss named after the task by default)."""
    weights = config["mdf"]["weights"] or PRETRAINED_BY_TASK.get(config["task"])
    return list(weights) if isinstance(weights, list) else [weights]


def _resolve(config: dict[str, Any], label: str, weights_dir: Path, repeat: int) -> LossRun:
    main, at, reference = label.partition("@")
    if at:
        if not main or not reference or "@" in reference:
            raise ValueError(f"losses: expected LOSS@REFERENCE such as l2@mdf, got {label!r}")
        target = _resolve(config, reference, weights_dir, repeat)
        run = _resolve(config, main, weights_dir, repeat)
        return LossRun(label, run.spec, run.mdf_options, run.official_source, repeat, scale_to=target)
    alias = config["loss_aliases"].get(label)
    if alias is not None:
        if isinstance(alias, str):
            return LossRun(label, alias, repeat=repeat)
        if isinstance(alias, dict) and isinstance(alias.get("spec"), str):
            return LossRun(label, alias["spec"], dict(alias.get("mdf_options") or {}), repeat=repeat)
        raise ValueError(f"loss_aliases.{label}: expected a spec string or {{spec, mdf_options}}, got {alias!r}")
    if label == "mdf-official":
        return replace(_official_run(config, weights_dir), repeat=repeat)
    if any(term.strip().rpartition("*")[2].strip() == "mdf" for term in _TERMS.split(label)):
        sources = mdf_sources(config)
        source = sources[repeat % len(sources)]
        spec = "+".join(_with_mdf(term, source) for term in _TERMS.split(label))
        return LossRun(label, spec, dict(config["mdf"]["options"]), repeat=repeat)
    return LossRun(label, label, repeat=repeat)


def _official_run(config: dict[str, Any], weights_dir: Path) -> LossRun:
    official = config["official"]
    if not official["dir"]:
        raise ValueError(
            "official.dir: the loss 'mdf-official' needs the folder of the authors' Ds_*.pth files "
            "(--official-dir, e.g. ../shared/anchors/mdf-official)"
        )
    folder = Path(official["dir"])
    candidates = (official["file"],) if official["file"] else OFFICIAL_FILES[config["task"]]
    source = next((folder / name for name in candidates if (folder / name).is_file()), None)
    if source is None:
        raise FileNotFoundError(f"official.dir: none of {list(candidates)} found in {folder}")
    converted = weights_dir / f"mdf-official-{source.stem}.safetensors"
    return LossRun("mdf-official", f"mdf:{converted}", dict(official["options"]), official_source=str(source))


def _with_mdf(term: str, source: str) -> str:
    """A spec term with a bare ``mdf`` replaced by ``mdf:SOURCE``."""
    weight, star, name = term.strip().rpartition("*")
    return f"{weight.strip()}{star}mdf:{source}" if name.strip() == "mdf" else term.strip()


def run_seed(config: dict[str, Any], run: LossRun) -> int:
    """The training seed of ``run``: ``train.seed`` + its repeat (initialisation, patches, augmentation, noise)."""
    return int(config["train"]["seed"]) + run.repeat


def identity(config: dict[str, Any], run: LossRun, iterations: int, train_images: list[str]) -> dict[str, Any]:
    """What a checkpoint must share with the config that resumes it (``gan`` too when enabled,
    the reference loss of a scale-matched run). ``--converge`` is not part of it: a run trained
    to convergence is the same run continued past its budget."""
    gan = {"gan": config["gan"]} if config["gan"]["enabled"] else {}
    scaled = {"scale_to": {"spec": run.scale_to.spec, "mdf_options": run.scale_to.mdf_options}} if run.scale_to else {}
    train = {k: config["train"][k] for k in ("optimizer", "scheduler", "grad_clip")}
    return json.loads(json.dumps({
        "task": config["task"], "model": config["model"], "degradation": config["degradation"],
        "loss": run.spec, "mdf_options": run.mdf_options,
        "data": {k: config["data"][k] for k in ("patch_size", "batch_size", "augment")},
        "train": {"seed": run_seed(config, run), **train},
        "iterations": iterations, "train_images": train_images, **gan, **scaled,
    }, sort_keys=True))
