"""``mdfloss seed synth``: write a synthetic seed image (see :mod:`mdfloss.seeds.synthetic`).

    mdfloss seed synth --kind pink-noise --size 1024x768 --rng-seed 0 --out pink.png
    mdfloss seed synth --kind pyramid-permutation --like photo.png --size 1024x768 --out permuted.png
"""

from __future__ import annotations

import argparse
import re
from pathlib import Path

from .synthetic import KINDS


def parse_size(text: str) -> tuple[int, int]:
    """``"1024x768"`` -> (width, height)."""
    match = re.fullmatch(r"\s*(\d+)\s*[xX]\s*(\d+)\s*", text)
    if match is None:
        raise argparse.ArgumentTypeError(f"expected WIDTHxHEIGHT such as 1024x768, got {text!r}")
    return int(match[1]), int(match[2])


def add_arguments(parser: argparse.ArgumentParser) -> None:
    actions = parser.add_subparsers(dest="seed_command", metavar="ACTION", required=True)
    synth = actions.add_parser("synth", help="write a synthetic seed image",
                               description="Write a synthetic seed image: pink noise (1/f^2 power spectrum), "
                                           "contrast rings, or a photo's Laplacian pyramid with every level's "
                                           "pixels permuted.")
    synth.set_defaults(command_name="seed synth")
    synth.add_argument("--kind", choices=KINDS, required=True, help="what to make")
    synth.add_argument("--like", type=Path, metavar="PHOTO", help="the photo to permute (pyramid-permutation only)")
    synth.add_argument("--size", type=parse_size, required=True, metavar="WxH", help="image size, e.g. 1024x768")
    synth.add_argument("--rng-seed", type=int, default=0, help="seed of the random generator (default 0)")
    synth.add_argument("--out", type=Path, required=True, metavar="FILE.png", help="the PNG to write")


def run(args: argparse.Namespace) -> int:
    import torch

    from .._files import write_png
    from ..train.seed import load_seed
    from .synthetic import synthesize

    width, height = args.size
    like = load_seed(args.like).pixels if args.like is not None else None
    generator = torch.Generator().manual_seed(args.rng_seed)
    image = synthesize(args.kind, height, width, generator, like=like)
    write_png(args.out, image)
    print(f"wrote {args.out}: {args.kind}, {width}x{height} px, rng seed {args.rng_seed}")
    return 0
