"""Forward time of mdfloss.metrics' HaarPSI, DSS and MDSI beside piq's, one thread.

    python benchmarks/iqa_metric_cost.py [--reps 7] [--shapes 1x3x256x256,16x3x96x96] [--dtype float32]

For every shape, the six functions (ours and piq's for each metric) take turns within each
repetition on the same random image pair (a smooth image and a noisy copy, no grad); one warm-up
repetition is discarded and the median of ``--reps`` is printed, with the ratio ours / piq of
medians from the same run. piq's metric modules are loaded without ``piq/__init__.py`` (which
imports torchvision); see tests/_metrics_support.py. piq's MDSI takes the reference first.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from _metrics_support import load_piq_module, piq_version, random_pair  # noqa: E402

from mdfloss.metrics import dss, haarpsi, mdsi  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reps", type=int, default=7)
    parser.add_argument("--shapes", default="1x3x256x256,16x3x96x96")
    parser.add_argument("--dtype", default="float32", choices=["float32", "float64"])
    args = parser.parse_args()
    torch.set_num_threads(1)
    dtype = getattr(torch, args.dtype)
    piq = {name: load_piq_module(name) for name in ("haarpsi", "dss", "mdsi")}
    if any(m is None for m in piq.values()):
        sys.exit("piq is not installed: pip install -c constraints.txt piq")
    pairs = [
        ("HaarPSI", lambda x, y: haarpsi.haarpsi(x, y), lambda x, y: piq["haarpsi"].haarpsi(x, y)),
        ("DSS", lambda x, y: dss.dss(x, y), lambda x, y: piq["dss"].dss(x, y)),
        ("MDSI", lambda x, y: mdsi.mdsi(x, y), lambda x, y: piq["mdsi"].mdsi(y, x)),
    ]
    print(f"torch {torch.__version__}, piq {piq_version()}, {args.dtype}, 1 thread, median of {args.reps} (ms)\n")
    print("| shape | metric | mdfloss | piq | mdfloss / piq |")
    print("|---|---|---:|---:|---:|")
    for spec in args.shapes.split(","):
        shape = tuple(int(v) for v in spec.split("x"))
        x, y = random_pair(shape, dtype)  # type: ignore[arg-type]
        times: dict[tuple[str, str], list[float]] = {}
        with torch.no_grad():
            for rep in range(args.reps + 1):
                for name, ours, theirs in pairs:
                    for who, fn in (("ours", ours), ("piq", theirs)):
                        start = time.perf_counter()
                        fn(x, y)
                        elapsed = (time.perf_counter() - start) * 1e3
                        if rep:
                            times.setdefault((name, who), []).append(elapsed)
        for name, _, _ in pairs:
            a, b = statistics.median(times[(name, "ours")]), statistics.median(times[(name, "piq")])
            print(f"| {spec} | {name} | {a:.1f} | {b:.1f} | {a / b:.2f}x |")


if __name__ == "__main__":
    main()
