"""The ``mdfloss`` command. Each subcommand lives in a ``command`` module next to what it drives
and is imported only when it runs, so ``mdfloss --help`` stays fast and light.

A subcommand module has ``add_arguments(parser)`` and ``run(args) -> int`` (a parser may set a
longer ``command_name`` for the messages, e.g. "analyze sensitivity"); :func:`run_command`
gives every one of them the same conduct:

* a user's mistake (a bad value, a missing file: ValueError, TypeError, FileNotFoundError,
  FileExistsError...) is one line, ``mdfloss COMMAND: error: ...``, and exit code 2, never a
  traceback; argparse reports bad flags the same way (codes and exceptions: :mod:`mdfloss.runtime`);
* a failure at run time (RuntimeError, OSError, a diverging loss) is one line and exit code 1;
* Ctrl-C is exit code 130;
* ``--threads N``, where a command has it, holds for that command only;
* ``args.command_line`` is the command as typed, for the files that record how they were made.

``MDFLOSS_TRACEBACK=1`` in the environment shows the full traceback instead of the one line.
"""

from __future__ import annotations

import argparse
import importlib
import os
import shlex
import sys

from ._version import __version__
from .runtime import (
    EXIT_INTERRUPTED,
    EXIT_RUNTIME,
    EXIT_USAGE,
    RUNTIME_ERRORS,
    USER_ERRORS,
    scoped_threads,
)

# subcommand -> module with `add_arguments(parser)` and `run(args) -> int`
COMMANDS = {
    "demo": ("mdfloss.demo.command", "reconstruct an image from noise with L2 and with MDF"),
    "train": ("mdfloss.train.command", "train a task-specific MDF loss on one seed image (phase 1)"),
    "seed": ("mdfloss.seeds.command", "make a synthetic seed image (pink noise, contrast rings, pyramid permutation)"),
    "convert": ("mdfloss.official.command", "convert the authors' Ds_*.pth into an mdfloss weight file, safely"),
    "analyze": ("mdfloss.analysis.command", "what a loss penalises: sensitivity to distortions at matched PSNR"),
    "bench": ("mdfloss.bench.command", "train restoration networks with each loss and compare them (report)"),
    "ablate": ("mdfloss.ablation.command", "the paper's ablations, one command each: seeds, seed-count, scales, task"),
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


def run_command(args: argparse.Namespace) -> int:
    """Run the parsed subcommand with the conduct of the module docstring; returns the exit code."""
    prefix = f"mdfloss {getattr(args, 'command_name', args.command)}"
    if os.environ.get("MDFLOSS_TRACEBACK", "") not in ("", "0"):
        with scoped_threads(getattr(args, "threads", None)):
            return int(args.handler(args) or 0)
    try:
        with scoped_threads(getattr(args, "threads", None)):
            return int(args.handler(args) or 0)
    except KeyboardInterrupt:
        print(f"{prefix}: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except USER_ERRORS as error:
        print(f"{prefix}: error: {error}", file=sys.stderr)
        return EXIT_USAGE
    except RUNTIME_ERRORS as error:
        print(f"{prefix}: failed: {error}", file=sys.stderr)
        return EXIT_RUNTIME


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    command = next((arg for arg in argv if not arg.startswith("-")), None)
    args = build_parser(command).parse_args(argv)
    args.command_line = shlex.join(["mdfloss", *argv])
    return run_command(args)


if __name__ == "__main__":
    sys.exit(main())
