"""``mdfloss bench``: train a restoration network once per loss, test it, and write a report.

Examples::

    mdfloss bench --task denoise --model dncnn --losses l2,l1,mdf --train-dir D --val-dir D \\
        --test-dir D --iters 2000 --out runs/denoise
    mdfloss bench --preset cpu-mini --train-dir ../shared/data/photos/train \\
        --val-dir ../shared/data/photos/val --test-dir ../shared/data/photos/val \\
        --official-dir ../shared/anchors/mdf-official --out runs/cpu-mini
    torchrun --nproc_per_node 2 -m mdfloss.cli bench ...     # DDP (gloo on CPU, nccl on GPUs)
    mdfloss bench --out runs/cpu-mini --resume               # after an interruption: same command + --resume
    mdfloss bench --report-only --out runs/cpu-mini          # rebuild report.md / report.html
    mdfloss bench --re-evaluate --out runs/cpu-mini          # test the saved weights again (a metric changed)
    mdfloss bench compare runs/a:mdf runs/b:l2               # across folders (compare.py)
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from .._checks import check_int
from ..runtime import EXIT_INTERRUPTED
from . import compare as compare_module
from .config import (
    experiment_config,
    experiment_names,
    load_builtin,
    load_yaml,
    parse_assignment,
    preset_names,
)
from .degradations import TASKS
from .plugins import is_plugin

DEFAULT_MODELS = {"sisr": "edsr", "denoise": "dncnn", "jpeg": "dncnn"}
"""The built-in experiment whose settings a network plugin takes, per task."""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--task", choices=TASKS, help="restoration task")
    parser.add_argument("--model", help="network: edsr, srresnet, rrdb (sisr; rrdb trains a GAN), dncnn (denoise, jpeg), "
                                        "or your own as package.module:build (called with task= and scale=)")
    parser.add_argument("--losses", help="comma-separated loss labels or specs, e.g. l2,l1,msssim+l1,mdf,mdf-official; "
                                         "A@B scales loss A to B's gradient norm; package.module:Class is your own loss")
    parser.add_argument("--degradation", metavar="PACKAGE.MODULE:FUNCTION",
                        help="your own distortion f(batch, generator, **params) for denoise/jpeg "
                             "(params: --set degradation.params.NAME=VALUE)")
    parser.add_argument("--repeats", type=int, metavar="N",
                        help="train each loss N times with seeds train.seed .. train.seed + N - 1 (train.repeats)")
    parser.add_argument("--converge", action="store_true",
                        help="train each run past its iterations until its validation PSNR stops rising "
                             "(train.converge: min_gain_db, window, max_factor)")
    parser.add_argument("--train-dir", help="folder of training images")
    parser.add_argument("--val-dir", help="folder of validation images (model selection)")
    parser.add_argument("--test-dir", action="append", help="folder of test images (repeat for several datasets)")
    parser.add_argument("--iters", type=int, help="training iterations per loss (replaces train.epochs)")
    parser.add_argument("--preset", help=f"a set of experiments: {', '.join(preset_names())}")
    parser.add_argument("--config", help="a YAML experiment config or preset (see docs/bench.md)")
    parser.add_argument("--out", help="output folder (required unless comparing)")
    parser.add_argument("--set", dest="assignments", action="append", default=[], metavar="KEY=VALUE",
                        help="override any config key, e.g. --set train.optimizer.lr=1e-4 (repeatable)")
    parser.add_argument("--mdf", action="append", default=[], metavar="[TASK=]NAME_OR_FILE[,...]",
                        help="weights of the loss 'mdf': a pretrained name or a weight file (default: the task's "
                             "name), or one per repeat, comma-separated (phase-1 draws)")
    parser.add_argument("--official-dir", help="folder of the authors' Ds_*.pth files, for the loss 'mdf-official'")
    parser.add_argument("--vgg-weights", help="torchvision vgg16-397923af.pth (default: the torch hub cache)")
    parser.add_argument("--lpips-heads", help="lpips weights/v0.1/vgg.pth (default: the installed lpips package)")
    parser.add_argument("--device", help="auto (default), cpu, cuda or cuda:K")
    parser.add_argument("--workers", type=int, help="DataLoader worker processes")
    parser.add_argument("--jobs", type=int, default=1, metavar="N",
                        help="train N runs at once in separate processes (on a CPU: N cores, train.threads each)")
    parser.add_argument("--resume", action="store_true", help="continue runs from their checkpoints, skip finished ones")
    parser.add_argument("--reuse", type=Path, metavar="DIR",
                        help="take over runs finished in benchmark folder DIR with the same settings and loss weights")
    parser.add_argument("--stop-after", type=int, metavar="N", help="stop each run after N iterations, as if killed")
    parser.add_argument("--estimate", action="store_true", help="time a few iterations per loss and print the expected duration")
    parser.add_argument("--report-only", action="store_true", help="only rebuild the report from OUT/results.csv")
    parser.add_argument("--re-evaluate", action="store_true",
                        help="test every finished run of OUT again with today's metrics (its saved weights), "
                             "then rebuild the report")
    parser.add_argument("--no-progress", action="store_true", help="no progress bars")
    parser.add_argument("--tensorboard", action="store_true", help="also log to TensorBoard (needs tensorboard)")
    actions = parser.add_subparsers(dest="action", metavar="compare", required=False)
    compare = actions.add_parser("compare", help="a loss of one benchmark folder against losses of others",
                                 description=compare_module.__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    compare_module.add_arguments(compare)


def run(args: argparse.Namespace) -> int:
    if args.action == "compare":
        return compare_module.run(args)
    if args.out is None:
        raise ValueError("--out: expected the output folder of the benchmark")
    out = Path(args.out)
    if args.report_only:
        _write_report(out)
        return 0
    if args.re_evaluate:
        return _re_evaluate(out, args)
    configs = build_configs(args)
    check_int("--jobs", args.jobs, minimum=1)
    if args.reuse is not None and not (args.reuse / "manifest.json").is_file():
        raise ValueError(f"--reuse: expected a benchmark folder (with manifest.json), got {str(args.reuse)!r}")
    from ..runtime import scoped_threads
    from .distributed import Context, setup, teardown

    context = setup(configs[0]["train"]["device"])
    if args.jobs > 1 and context.distributed:
        raise ValueError("--jobs: expected 1 under torchrun (each process already trains one share of a run)")
    try:
        with scoped_threads(configs[0]["train"]["threads"], "train.threads"):
            if args.estimate:
                if context.is_main:  # single-process work: no barrier may wait for the other ranks
                    from .estimate import estimate

                    print(estimate(configs, out, Context(device=context.device)))
                return 0
            return _train_all(configs, out, context, args)
    finally:
        teardown(context)


def _train_all(configs: list[dict[str, Any]], out: Path, context: Any, args: argparse.Namespace) -> int:
    from .distributed import StopFlag, stop_on_signals
    from .fit import TrainingInterrupted
    from .manifest import record_command
    from .parallel import train_in_parallel
    from .runner import run_experiment

    if context.is_main:
        record_command(out, args.command_line)
    context.barrier()
    try:
        if args.jobs > 1:
            train_in_parallel(configs, out, args.jobs, resume=args.resume, device=context.device,
                              threads=configs[0]["train"]["threads"] or 1, reuse=args.reuse)
        else:
            stop = StopFlag()
            with stop_on_signals(stop):
                for config in configs:
                    run_experiment(config, out, context, resume=args.resume, stop=stop, reuse=args.reuse)
    except TrainingInterrupted as interrupted:
        if context.is_main:
            print(f"mdfloss bench: {interrupted}", file=sys.stderr)
        return EXIT_INTERRUPTED
    if context.is_main:
        _write_report(out, out / "results.csv")
    return 0


def _re_evaluate(out: Path, args: argparse.Namespace) -> int:
    from ..runtime import resolve_device
    from .distributed import Context
    from .reevaluate import re_evaluate

    done, missing = re_evaluate(out, Context(device=resolve_device(args.device or "auto", "--device")))
    print(f"re-tested {len(done)} run(s)" + (f"; left as they were (no weight files): {', '.join(missing)}"
                                             if missing else ""))
    _write_report(out, out / "results.csv")
    return 0


def _write_report(out: Path, *written: Path) -> None:
    """Build the report of ``out`` and say which files were written."""
    from .report import build_report

    paths = [*written, *build_report(out)]
    print(f"wrote {', '.join(map(str, paths[:-1]))} and {paths[-1]}")


def build_configs(args: argparse.Namespace) -> list[dict[str, Any]]:
    """One resolved config per experiment, from the preset / config file / task and model, then the flags."""
    overrides = _flag_layer(args) + [parse_assignment(a) for a in args.assignments]
    experiments: list[tuple[str | None, list[dict[str, Any]]]] = []
    source = load_yaml(args.config) if args.config else None
    if args.preset and source is not None:
        raise ValueError("--preset and --config: give one of them (a preset file can be passed with --config)")
    if args.preset:
        if args.preset not in preset_names():
            raise ValueError(f"--preset: expected one of {preset_names()}, got {args.preset!r}")
        source = load_builtin(f"preset-{args.preset}")
    if source is not None and "experiments" in source:
        unknown = set(source) - {"experiments", "common", "description"}
        if unknown:
            raise ValueError(f"preset: unknown keys {sorted(unknown)} (expected description, common, experiments)")
        own_model = [{"model": {"type": args.model}}] if args.model and is_plugin(args.model) else []
        for name, own in source["experiments"].items():
            experiments.append((name, [{"base": name}, source.get("common") or {}, own or {}, *own_model]))
        experiments = [e for e in experiments if _selected(e[0], args)]
        if not experiments:
            raise ValueError(f"--task/--model: no experiment of the preset matches (it has {list(source['experiments'])})")
    elif source is not None:
        base = source.get("base")
        task, model = source.get("task"), (source.get("model") or {}).get("type")
        if base is None and f"{task}-{model}" in experiment_names():
            source = {"base": f"{task}-{model}", **source}
        experiments.append((None, [source, _task_model_layer(args)]))
    else:
        if not (args.task and args.model):
            raise ValueError("--task and --model (or --preset, or --config) are needed to choose an experiment")
        if is_plugin(args.model):  # the task's built-in experiment, with the user's network
            name = f"{args.task}-{DEFAULT_MODELS[args.task]}"
            experiments.append((name, [{"base": name}, {"model": {"type": args.model}}]))
        else:
            name = f"{args.task}-{args.model}"
            if name not in experiment_names():
                raise ValueError(f"--task/--model: no built-in experiment {name!r}; built-in: {experiment_names()}")
            experiments.append((name, [{"base": name}]))
    plain = [o for o in overrides if "__task__" not in o]
    configs = []
    for _, layers in experiments:
        task = experiment_config(layers + plain)["task"]
        chosen = [{k: v for k, v in o.items() if k != "__task__"} for o in overrides if o.get("__task__", task) == task]
        configs.append(experiment_config(layers + chosen))
    names = [c["name"] for c in configs]
    if len(set(names)) != len(names):
        raise ValueError(f"experiments: expected distinct names, got {names}")
    return configs


def _selected(name: str, args: argparse.Namespace) -> bool:
    task, _, model = name.partition("-")
    any_model = args.model is None or is_plugin(args.model)
    return (args.task is None or task == args.task) and (any_model or model == args.model)


def _task_model_layer(args: argparse.Namespace) -> dict[str, Any]:
    layer: dict[str, Any] = {}
    if args.task:
        layer["task"] = args.task
    if args.model:
        layer["model"] = {"type": args.model}
    return layer


def _flag_layer(args: argparse.Namespace) -> list[dict[str, Any]]:
    """The dedicated flags as config layers (applied before --set)."""
    data = {k: v for k, v in (("train_dir", args.train_dir), ("val_dir", args.val_dir),
                              ("workers", args.workers)) if v is not None}
    if args.test_dir:
        data["test_dir"] = args.test_dir[0] if len(args.test_dir) == 1 else list(args.test_dir)
    layer: dict[str, Any] = {}
    if data:
        layer["data"] = data
    train: dict[str, Any] = {}
    if args.iters is not None:
        train.update(iters=args.iters, epochs=None)
    if args.repeats is not None:
        train["repeats"] = args.repeats
    if args.converge:
        train["converge"] = {"enabled": True}
    if args.stop_after is not None:
        train["stop_after"] = args.stop_after
    if args.device:
        train["device"] = args.device
    if train:
        layer["train"] = train
    if args.losses:
        layer["losses"] = [s.strip() for s in args.losses.split(",") if s.strip()]
    if args.official_dir:
        layer["official"] = {"dir": args.official_dir}
    if args.degradation:
        layer["degradation"] = {"plugin": args.degradation}
    perceptual: dict[str, Any] = {}
    if args.vgg_weights:
        perceptual["vgg"] = {"weights": args.vgg_weights}
        perceptual["lpips"] = {"weights": args.vgg_weights}
    if args.lpips_heads:
        perceptual.setdefault("lpips", {})["heads"] = args.lpips_heads
    if perceptual:
        layer["perceptual"] = perceptual
    logging = {}
    if args.no_progress:
        logging["progress"] = False
    if args.tensorboard:
        logging["tensorboard"] = True
    if logging:
        layer["logging"] = logging
    layers = [layer]
    for item in args.mdf:
        task, sep, value = item.partition("=")
        if not (sep and task in TASKS):
            task, value = "", item
        weights: str | list[str] = [v.strip() for v in value.split(",")] if "," in value else value
        layers.append({"__task__": task, "mdf": {"weights": weights}} if task else {"mdf": {"weights": weights}})
    return layers
