"""How much the demo's quick loss varies with the random seed and the thread count.

    TQDM_DISABLE=1 OMP_NUM_THREADS=1 python benchmarks/demo_spread.py --rng-seeds 0 1 2 3 4 5 6 7 \
        --threads 1 2 [--scales 3 --iters 300] --out benchmarks/results/demo-spread.csv

For every (threads, rng seed) it does what ``make demo`` does with its quick loss: trains a SISR
loss on the bundled photo (fast preset; the demo's 3 scales and 300 iterations per scale unless
``--scales``/``--iters`` say otherwise; phase-1 random streams seeded with the rng seed), then
reconstructs the demo's 128 px crop from the demo's noise start with 100 Adam steps (lr 0.05)
and records the final PSNR. Phase 1 is a GAN: a different thread count changes the order of
floating-point sums, which after a few hundred adversarial steps is as good as another random
seed. Rows are appended to ``--out`` as they finish (a rerun skips the rows already there); a
Markdown summary per recipe and thread count is printed.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from importlib import resources
from pathlib import Path

import torch

from mdfloss import MDFLoss
from mdfloss._files import read_csv, write_csv
from mdfloss.runtime import scoped_threads
from mdfloss.demo.command import BUNDLED_IMAGE, QUICK_ITERS, QUICK_SCALES, _centre_crop, _load_rgb, reconstruct
from mdfloss.train import train_loss

FIELDS = ["scales", "iters", "threads", "rng_seed", "psnr_db", "train_seconds"]


def quick_loss_psnr(photo: Path, scales: int, iters: int, threads: int, rng_seed: int) -> tuple[float, float]:
    """Train a SISR loss like the demo's with ``threads`` and ``rng_seed``; returns (PSNR dB, training s)."""
    target = _centre_crop(_load_rgb(photo), 128)
    start = torch.rand(target.shape, generator=torch.Generator().manual_seed(0))
    with tempfile.TemporaryDirectory() as folder:
        began = time.perf_counter()
        with scoped_threads(threads):
            weights = train_loss(photo, Path(folder) / "quick.safetensors", task="sisr", preset="fast",
                                 scales=scales, iters=iters, rng_seed=rng_seed, quiet=True)
        seconds = time.perf_counter() - began
        result = reconstruct(target, start, MDFLoss.from_file(weights), 100, 0.05, [])
    return result["psnr"][-1], seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rng-seeds", type=int, nargs="+", default=list(range(8)))
    parser.add_argument("--threads", type=int, nargs="+", default=[1])
    parser.add_argument("--scales", type=int, default=QUICK_SCALES, help=f"scales of the loss (the demo's: {QUICK_SCALES})")
    parser.add_argument("--iters", type=int, default=QUICK_ITERS, help=f"iterations per scale (the demo's: {QUICK_ITERS})")
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/demo-spread.csv"))
    args = parser.parse_args()
    rows = read_csv(args.out)
    recipe = {"scales": str(args.scales), "iters": str(args.iters)}
    done = {(int(row["threads"]), int(row["rng_seed"])) for row in rows
            if {key: row[key] for key in recipe} == recipe}
    with resources.as_file(resources.files("mdfloss.data") / BUNDLED_IMAGE) as photo:
        for threads in args.threads:
            for rng_seed in args.rng_seeds:
                if (threads, rng_seed) in done:
                    continue
                psnr, seconds = quick_loss_psnr(photo, args.scales, args.iters, threads, rng_seed)
                rows.append({**recipe, "threads": threads, "rng_seed": rng_seed, "psnr_db": f"{psnr:.2f}",
                             "train_seconds": f"{seconds:.0f}"})
                write_csv(args.out, FIELDS, rows)
                print(f"{args.scales} scales x {args.iters}, threads {threads}, rng seed {rng_seed}: "
                      f"{psnr:.2f} dB ({seconds:.0f} s of training)", flush=True)
    print("\n| scales | iterations per scale | threads | runs | median dB | min dB | max dB | values dB |")
    print("|---|---|---|---|---|---|---|---|")
    for key in sorted({(int(r["scales"]), int(r["iters"]), int(r["threads"])) for r in rows}):
        values = [float(r["psnr_db"]) for r in rows if (int(r["scales"]), int(r["iters"]), int(r["threads"])) == key]
        listed = ", ".join(f"{v:.1f}" for v in values)
        print(f"| {key[0]} | {key[1]} | {key[2]} | {len(values)} | {statistics.median(values):.2f} "
              f"| {min(values):.2f} | {max(values):.2f} | {listed} |")


if __name__ == "__main__":
    main()
