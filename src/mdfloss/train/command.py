"""``mdfloss train``: phase 1 from the command line (see docs/training.md)."""

from __future__ import annotations

import argparse
import shlex
import sys


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from .distortions import REGISTRY
    from .presets import PRESETS

    names = ", ".join(REGISTRY)
    parser.add_argument("--task", help=f"the task: {names}; with --distortion, a free label for the metadata")
    parser.add_argument("--distortion", metavar="NAME|MODULE:FUNCTION",
                        help=f"a registered distortion ({names}) or a plugin 'package.module:function' "
                             "called as f(batch_in_0_1, generator, **params); defaults to --task")
    parser.add_argument("--distortion-param", action="append", default=[], metavar="KEY=VALUE",
                        help="configure the distortion, e.g. sigma_max=30 or quality_min=5 (repeatable)")
    parser.add_argument("--seed", required=True, metavar="IMAGE", help="the seed image")
    parser.add_argument("--out", "-o", required=True, metavar="FILE", help="weight file to write (.safetensors)")
    parser.add_argument("--preset", choices=sorted(PRESETS), default="fast", help="settings preset (default: fast)")
    parser.add_argument("--scales", type=int, help="number of scales K (default 8)")
    parser.add_argument("--iters", type=int, help="iterations per scale")
    parser.add_argument("--crop", type=int, help="crop side in px for each training sample; 0 = whole image")
    parser.add_argument("--batch", type=int, help="crops per iteration")
    parser.add_argument("--max-side", type=int, help="first shrink the seed so its long side is at most this")
    parser.add_argument("--checkpoint-every", type=int, metavar="N", help="checkpoint every N iterations")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                        help="override any training setting, e.g. gp_every=8 (repeatable; see docs/training.md)")
    parser.add_argument("--device", default="cpu", help="cpu, cuda or cuda:N (default: cpu)")
    parser.add_argument("--threads", type=int, help="torch CPU threads (default: torch's choice)")
    parser.add_argument("--rng-seed", type=int, default=0, help="seed of every random stream (default 0)")
    parser.add_argument("--resume", action="store_true", help="continue from the checkpoint of an interrupted run")
    parser.add_argument("--log-dir", metavar="DIR", help="write log, samples and checkpoint here instead of beside --out")
    parser.add_argument("--quiet", action="store_true", help="no progress bars or messages")


def command_line(args: argparse.Namespace) -> str:
    """The command as typed when this process is ``mdfloss train ...``, else rebuilt from ``args``."""
    if sys.argv[1:2] == ["train"]:
        return shlex.join(["mdfloss", *sys.argv[1:]])
    words = ["mdfloss", "train"]
    for name, value in sorted(vars(args).items()):
        if name in ("command", "handler") or value in (None, False, []):
            continue
        flag = "--" + name.replace("_", "-")
        if value is True:
            words.append(flag)
        elif isinstance(value, list):
            for item in value:
                words += [flag, str(item)]
        else:
            words += [flag, str(value)]
    return shlex.join(words)


def run(args: argparse.Namespace) -> int:
    import torch

    from .distortions import parse_params
    from .trainer import train_loss

    if args.threads is not None:
        if args.threads < 1:
            raise SystemExit(f"mdfloss train: --threads: expected a positive int, got {args.threads}")
        torch.set_num_threads(args.threads)
    try:
        settings = parse_params(args.set)
        params = parse_params(args.distortion_param)
        train_loss(
            args.seed, args.out, args.task, distortion=args.distortion, distortion_params=params,
            preset=args.preset, scales=args.scales, iters=args.iters, crop=args.crop, batch=args.batch,
            checkpoint_every=args.checkpoint_every, max_side=args.max_side, settings=settings,
            device=args.device, rng_seed=args.rng_seed, resume=args.resume, quiet=args.quiet,
            log_dir=args.log_dir, command=command_line(args),
        )
    except (ValueError, TypeError, FileNotFoundError, FileExistsError) as error:
        print(f"mdfloss train: error: {error}", file=sys.stderr)
        return 2
    return 0
