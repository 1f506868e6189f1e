#!/usr/bin/env python3
"""Each run's convergence by the slope rule (mdfloss.bench.convergence) and by the old endpoint rule,
for a benchmark folder whose report predates the slope rule.

    python scripts/slope_gains.py docs/results/cpu > docs/results/cpu/convergence-slope.md
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from mdfloss.bench.convergence import ConvergenceRule
from mdfloss.bench.report.page import validation_psnr


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("folder", type=Path, help="a benchmark output folder")
    folder = parser.parse_args().folder
    manifest = json.loads((folder / "manifest.json").read_text(encoding="utf-8"))
    print(f"# Convergence of {folder}: gain predicted over one more quarter of the run\n")
    print(f"`python scripts/slope_gains.py {folder}`; converged: under 0.1 dB.\n")
    print("| experiment | run | iterations | slope rule [dB] | endpoint rule, val(last) - val(3/4) [dB] |")
    print("|---|---|---|---|---|")
    for name, entry in manifest["experiments"].items():
        rule = ConvergenceRule(budget=int(entry["iterations"]))
        for key, run in entry["runs"].items():
            curve = validation_psnr(folder, run)
            last_iteration, last_value = curve[-1]
            endpoint = last_value - [v for i, v in curve if i <= 0.75 * last_iteration][-1]
            print(f"| {name} | {key} | {last_iteration} | {rule.predicted_gain(curve):+.3f} | {endpoint:+.3f} |")


if __name__ == "__main__":
    main()
