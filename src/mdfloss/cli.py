"""The ``mdfloss`` command. Each subcommand lives next to what it drives and is imported only
when it runs, so ``mdfloss --help`` stays fast and light."""

from __future__ import annotations

import argparse
import importlib
import sys

from . import __version__

# subcommand -> module with `add_arguments(parser)` and `run(args) -> int`
COMMANDS = {
    "demo": ("mdfloss.demo", "reconstruct an image from noise with L2 and with MDF"),
    "train": ("mdfloss.train.command", "train a task-specific MDF loss on one seed image (phase 1)"),
    "convert": ("mdfloss.official_command", "convert the authors' Ds_*.pth into an mdfloss weight file, safely"),
    "analyze": ("mdfloss.analysis.command", "what a loss penalises: sensitivity to distortions at matched PSNR"),
    "bench": ("mdfloss.bench.command", "train restoration networks with each loss and compare them (report)"),
    "study": ("mdfloss.study.command", "a pairwise-comparison study in the browser, scaled to JND units (paper Fig. 5)"),
}


def build_parser(command: str | None = None) -> argparse.ArgumentParser:
    """The full parser of ``command`` (its module imported); the others get their help line only."""
    parser = argparse.ArgumentParser(prog="mdfloss", description="Task-specific image reconstruction losses.")
    parser.add_argument("--version", action="version", version=f"mdfloss {__version__}")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name, (module_name, help_text) in COMMANDS.items():
        sub = subparsers.add_parser(name, help=help_text, description=help_text)
        if name == command:
            module = importlib.import_module(module_name)
            module.add_arguments(sub)
            sub.set_defaults(handler=module.run)
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    command = next((arg for arg in argv if not arg.startswith("-")), None)
    args = build_parser(command).parse_args(argv)
    return int(args.handler(args) or 0)


if __name__ == "__main__":
    sys.exit(main())
