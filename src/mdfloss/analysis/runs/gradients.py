"""``mdfloss analyze gradients``: each discriminator's share of the loss and gradient of bench runs."""

from __future__ import annotations

import argparse

SHARES_CSV, SHARES_MD = "gradient-shares.csv", "gradient-shares.md"


def run(args: argparse.Namespace) -> int:
    from .. import report
    from ..gradients import training_shares

    shares = {label: training_shares(args.bench_dir, args.experiment, label) for label in args.loss}
    written = [report.write_shares(args.out / SHARES_CSV, shares),
               report.write_text(args.out / SHARES_MD, report.shares_markdown(args.command_line, args.experiment, shares))]
    print("wrote " + ", ".join(str(path) for path in written))
    return 0
