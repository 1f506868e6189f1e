#!/usr/bin/env python3
"""The GPU check: three measurements in one command and one results file, within a time budget.

    python scripts/gpu_check.py --out benchmarks/results/gpu-check.md       # make gpu-check (CUDA, <= 10 min)
    python scripts/gpu_check.py --device cpu --tests tests/test_runtime.py --shapes 1x3x48x48 \
        --reps 1 --preset cpu-mini --task denoise --losses l2 --image-size 96 --out check.md   # the CPU path

1. **CUDA tests**: ``pytest -k cuda`` over ``--tests`` (every test case with "cuda" in its name
   or parameters; without a GPU they skip);
2. **loss cost** (paper Table 1): ``benchmarks/loss_cost.py`` on ``--device``, every loss beside
   VGG16 with random weights (the timing does not depend on them);
3. **benchmark speed**: ``mdfloss bench --preset PRESET --estimate`` on ``--device``, timed on
   generated images (random smooth RGB, ``--image-size`` px): seconds per iteration and the
   expected duration of each run of the preset (``paper`` by default).

Each step runs as a subprocess with what is left of ``--budget`` seconds (a step that runs out
is stopped and reported as such); the results file holds the machine, then each step's command,
wall time, exit status and output. Exits 1 if a step failed or ran out of time, else 0.
"""

from __future__ import annotations

import argparse
import platform
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from mdfloss._files import write_atomically

ROOT = Path(__file__).resolve().parents[1]


@dataclass
class Step:
    title: str
    command: list[str]
    seconds: float = 0.0
    status: str = ""
    output: str = ""

    def run(self, deadline: float) -> bool:
        """Runs the command with the time left before ``deadline``; True when it exits with 0."""
        left = deadline - time.monotonic()
        start = time.monotonic()
        if left <= 0:
            self.status = "not run: no time left"
            return False
        try:
            done = subprocess.run(self.command, cwd=ROOT, capture_output=True, text=True, timeout=left)
            self.status, self.output, ok = f"exit {done.returncode}", done.stdout + done.stderr, done.returncode == 0
        except subprocess.TimeoutExpired as expired:
            captured = [part.decode() if isinstance(part, bytes) else part or "" for part in (expired.stdout, expired.stderr)]
            self.status, self.output, ok = f"stopped after {left:.0f} s (budget)", "".join(captured), False
        self.seconds = time.monotonic() - start
        return ok

    def markdown(self, work: Path, last_lines: int = 60) -> list[str]:
        """The step as Markdown; the interpreter shown as ``python``, the generated files as ``WORK``."""
        def shown(text: str) -> str:
            return text.replace(sys.executable, "python").replace(str(work), "WORK")

        output = "\n".join(self.output.strip().splitlines()[-last_lines:])
        return [f"## {self.title}", "", f"`{shown(' '.join(self.command))}`", "",
                f"{self.status}, {self.seconds:.0f} s", "", "```", shown(output), "```", ""]


def write_images(folder: Path, count: int, size: int, seed: int = 0) -> Path:
    """``count`` smooth random RGB PNGs of ``size`` x ``size`` px (speed does not depend on content)."""
    from PIL import Image

    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    for index in range(count):
        coarse = rng.integers(0, 256, (size // 8 + 1, size // 8 + 1, 3), dtype=np.uint8)
        image = Image.fromarray(coarse).resize((size, size), Image.Resampling.BICUBIC)
        image.save(folder / f"image{index}.png")
    return folder


def machine(device: str) -> str:
    """One line: the GPU (or CPU), torch and Python."""
    where = torch.cuda.get_device_name(0) if device == "cuda" and torch.cuda.is_available() else platform.processor()
    return f"{where or platform.machine()}; torch {torch.__version__}; Python {platform.python_version()}"


def steps(args: argparse.Namespace, images: Path, out: Path) -> list[Step]:
    python = sys.executable
    bench = [python, "-m", "mdfloss.cli", "bench", "--preset", args.preset, "--losses", args.losses,
             "--train-dir", str(images / "train"), "--val-dir", str(images / "val"), "--test-dir", str(images / "val"),
             "--device", args.device, "--estimate", "--no-progress", "--out", str(out / "bench"),
             *(["--task", args.task] if args.task else [])]
    return [
        Step("CUDA tests", [python, "-m", "pytest", "-q", "-rs", "-p", "no:cacheprovider", "-k", "cuda", *args.tests]),
        Step("Loss cost (paper Table 1), VGG16 with random weights",
             [python, "benchmarks/loss_cost.py", "--device", args.device, "--shapes", args.shapes,
              "--reps", str(args.reps)]),
        Step(f"Benchmark speed: `{args.preset}` preset, seconds per iteration", bench),
    ]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, required=True, help="the results file (Markdown)")
    parser.add_argument("--device", choices=("cuda", "cpu"), default="cuda")
    parser.add_argument("--budget", type=float, default=570, help="seconds for all steps (default 570: under 10 min)")
    parser.add_argument("--tests", nargs="+", default=["tests"], help="test paths searched for CUDA cases")
    parser.add_argument("--shapes", default="16x3x96x96,1x3x512x512", help="loss cost shapes, NxCxHxW")
    parser.add_argument("--reps", type=int, default=5, help="loss cost repetitions (median)")
    parser.add_argument("--preset", default="paper", help="benchmark preset to time (default paper)")
    parser.add_argument("--task", choices=("sisr", "denoise", "jpeg"), help="time one task only (default: all)")
    parser.add_argument("--losses", default="l2,l1,ssim,msssim,msssim+l1,mdf",
                        help="losses to time (default: the preset's that need no ImageNet weights)")
    parser.add_argument("--image-size", type=int, default=512, help="side of the generated images (px)")
    args = parser.parse_args(argv)
    if args.device == "cuda" and not torch.cuda.is_available():
        parser.error("--device cuda: no CUDA device here (use --device cpu for the CPU path)")
    deadline = time.monotonic() + args.budget
    with tempfile.TemporaryDirectory() as temporary:
        work = Path(temporary)
        write_images(work / "images" / "train", 4, args.image_size, seed=0)
        write_images(work / "images" / "val", 1, args.image_size, seed=1)
        checks = steps(args, work / "images", work)
        passed = [step.run(deadline) for step in checks]
    lines = ["# GPU check", "", f"Machine: {machine(args.device)}", "",
             f"Command: `python scripts/gpu_check.py {' '.join(sys.argv[1:] if argv is None else argv)}`",
             "", "WORK: a temporary folder of generated images.", ""]
    for step in checks:
        lines += step.markdown(work)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    write_atomically(args.out, lambda temporary: Path(temporary).write_text("\n".join(lines), encoding="utf-8"))
    print(f"wrote {args.out}: " + ", ".join(f"{s.title.split(' (')[0]}: {s.status}" for s in checks))
    return 0 if all(passed) else 1


if __name__ == "__main__":
    sys.exit(main())
