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
}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="mdfloss", description="Task-specific image reconstruction losses.")
    parser.add_argument("--version", action="version", version=f"mdfloss {__version__}")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name, (module_name, help_text) in COMMANDS.items():
        module = importlib.import_module(module_name)
        sub = subparsers.add_parser(name, help=help_text, description=help_text)
        module.add_arguments(sub)
        sub.set_defaults(handler=module.run)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return int(args.handler(args) or 0)


if __name__ == "__main__":
    sys.exit(main())
