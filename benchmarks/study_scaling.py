"""How well does `mdfloss study scale` recover known scores, for the full and the asap design?

Simulated Thurstone observers (1 JND = 75 % preference) with known true scores spread evenly
over 0-3 JND, 4, 6 and 8 conditions per image (one image). Each observer answers as many
comparisons as the full design has pairs (K(K-1)/2); `full` gives every pair once per observer,
`asap` chooses them by expected information gain (batches of K-1, as the server does).

Prints, per number of conditions and observers: RMSE of the recovered scores (mean-centred, JND),
the coverage of the 95 % bootstrap intervals (resampling observers) and their mean width, and how
many comparisons `asap` needs for the RMSE that `full` reaches (log-log interpolation).

    OMP_NUM_THREADS=1 python benchmarks/study_scaling.py [--runs 40] [--coverage-runs 20]
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from mdfloss.study import simulate
from mdfloss.study.scaling import bootstrap, pw_scale

OBSERVERS = (5, 10, 20, 40)


def rmse(q: np.ndarray, true: np.ndarray) -> float:
    return float(np.sqrt(np.mean((q - (true - true.mean())) ** 2)))


def draw(design: str, true: np.ndarray, observers: int, rng: np.random.Generator) -> np.ndarray:
    pairs = len(true) * (len(true) - 1) // 2
    if design == "full":
        return simulate.full_design(true, observers, rng)
    return simulate.asap_design(true, observers, pairs, rng)


def comparisons_for(target: float, comparisons: np.ndarray, errors: np.ndarray) -> float:
    """Comparisons at which the log-log line through (comparisons, errors) reaches ``target``."""
    slope, intercept = np.polyfit(np.log(comparisons), np.log(errors), 1)
    return float(np.exp((np.log(target) - intercept) / slope))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=40, help="simulated studies per cell for the RMSE")
    parser.add_argument("--coverage-runs", type=int, default=20, help="studies per cell for the interval coverage")
    parser.add_argument("--bootstrap", type=int, default=200, help="bootstrap resamples per study")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    rng = np.random.default_rng(args.seed)
    start = time.time()
    print("| K | design | observers | comparisons | RMSE (JND) | 95% CI coverage | mean CI width |")
    print("|---|---|---|---|---|---|---|")
    savings = []
    for k in (4, 6, 8):
        true = np.linspace(0, 3, k)
        pairs = k * (k - 1) // 2
        curves = {}
        for design in ("full", "asap"):
            errors = []
            for observers in OBSERVERS:
                values, covered, width = [], [], []
                for run in range(args.runs):
                    mats = draw(design, true, observers, rng)
                    if run < args.coverage_runs:
                        boot = bootstrap(mats, args.bootstrap, seed=run)
                        q = boot.jnd
                        centred = true - true.mean()
                        covered.append(np.mean((boot.low <= centred) & (centred <= boot.high)))
                        width.append(np.mean(boot.high - boot.low))
                    else:
                        q = pw_scale(mats.sum(0))
                    values.append(rmse(q, true))
                errors.append(np.mean(values))
                print(f"| {k} | {design} | {observers} | {observers * pairs} | {np.mean(values):.3f} "
                      f"| {100 * np.mean(covered):.0f}% | {np.mean(width):.2f} |", flush=True)
            curves[design] = np.array(errors)
        comparisons = np.array(OBSERVERS) * pairs
        for observers, target in zip(OBSERVERS, curves["full"]):
            needed = comparisons_for(target, comparisons, curves["asap"])
            savings.append((k, observers * pairs, target, needed))
    print()
    print("| K | full: comparisons | full: RMSE | asap: comparisons for that RMSE | asap saves |")
    print("|---|---|---|---|---|")
    for k, full, target, needed in savings:
        print(f"| {k} | {full} | {target:.3f} | {needed:.0f} | {100 * (1 - needed / full):.0f}% |")
    print(f"\n{time.time() - start:.0f} s")


if __name__ == "__main__":
    main()
