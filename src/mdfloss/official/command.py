"""``mdfloss convert``: turn the authors' ``Ds_*.pth`` into an mdfloss weight file.

The pickle is read without executing anything (see :mod:`mdfloss.official`); the output is a
safetensors file written atomically, loadable with ``MDFLoss.from_file``.
"""

from __future__ import annotations

import argparse
import hashlib
from pathlib import Path


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("official", type=Path, metavar="OFFICIAL.pth",
                        help="a discriminator file of gfxdisp/mdf, e.g. weights/Ds_SISR.pth")
    parser.add_argument("-o", "--output", type=Path, required=True, metavar="OUT.safetensors",
                        help="the mdfloss weight file to write (replaced atomically if it exists)")


def run(args: argparse.Namespace) -> int:
    from ..weights import save_pyramid
    from .reader import load_official

    if args.output.resolve() == args.official.resolve():
        raise ValueError(f"--output: {args.output} would overwrite the input")
    pyramid, metadata = load_official(args.official)
    written = save_pyramid(args.output, pyramid, metadata)
    digest = hashlib.sha256(written.read_bytes()).hexdigest()
    print(
        f"{args.official.name}: {len(pyramid)} scales, widths {pyramid.widths}, "
        f"task {metadata.get('task', 'unknown')} -> {written} (sha256 {digest})"
    )
    return 0
