"""``mdfloss train``: phase 1 from the command line (see docs/training.md)."""

from __future__ import annotations

import argparse


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
    parser.add_argument("--seed", required=True, action="append", metavar="IMAGE",
                        help="the seed image; repeat for several (every scale then learns from all of them)")
    parser.add_argument("--out", "-o", required=True, metavar="FILE", help="weight file to write (.safetensors)")
    parser.add_argument("--preset", choices=sorted(PRESETS), default="fast", help="settings preset (default: fast)")
    parser.add_argument("--scales", type=int, help="number of scales K (default 8)")
    parser.add_argument("--default-scales", type=_scale_choice, metavar="N|I,J,...",
                        help="record in the file which discriminators a loss uses by default: the coarsest N, or "
                             "these indices (0 = coarsest); an explicit scales= still overrides it")
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


def _scale_choice(text: str) -> int | list[int]:
    """``--default-scales``: ``"3"`` (the coarsest 3) or ``"0,2"`` (these indices)."""
    try:
        return [int(part) for part in text.split(",") if part.strip()] if "," in text else int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected N or comma-separated indices like 0,1,2, got {text!r}") from None


def run(args: argparse.Namespace) -> int:
    from .distortions import parse_params
    from .trainer import train_loss

    train_loss(
        args.seed, args.out, args.task, distortion=args.distortion, distortion_params=parse_params(args.distortion_param),
        preset=args.preset, scales=args.scales, iters=args.iters, crop=args.crop, batch=args.batch,
        checkpoint_every=args.checkpoint_every, max_side=args.max_side, settings=parse_params(args.set),
        device=args.device, rng_seed=args.rng_seed, resume=args.resume, quiet=args.quiet,
        log_dir=args.log_dir, command=args.command_line, default_scales=args.default_scales,
    )
    return 0
