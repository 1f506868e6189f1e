"""Phase-1 speed: seconds per iteration at every scale, fast preset vs a SinGAN-style loop.

    python benchmarks/train_speed.py --seed ../shared/data/seeds/dandelions.png [--threads 1]

For each scale k of the seed's pyramid (random weights: speed does not depend on them):

- **fast**: one iteration of the ``fast`` preset (``ScaleTrainer.step``): ``batch`` random crops,
  1 D step + 1 G step sharing one G forward, lazy gradient penalty, inputs cropped from a
  precomputed bank. Also the one-off cost of computing that bank for the next scale.
- **SinGAN-style**: one iteration as SinGAN trains (the ``paper`` preset's loop as SinGAN wrote
  it): the whole image, 3 D steps, each re-drawing the coarser input through every frozen
  generator with fresh distortions and taking a gradient penalty, then 3 G steps, each
  regenerating the fake and running a separate reconstruction forward.

SinGAN-style iterations above ``--singan-max-pixels`` (memory and minutes per iteration on a
CPU) are not run: their time is extrapolated linearly in pixel count from the largest measured
scale of the same width, and marked "est.". Timings are medians over ``--repeats`` iterations
after one warm-up iteration. Prints a markdown table.
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

import torch
import torch.nn.functional as F

from mdfloss.discriminator import PatchDiscriminator
from mdfloss.train.distortions import make_distortion
from mdfloss.train.generator import ResidualGenerator, singan_init_
from mdfloss.train.presets import resolve_settings
from mdfloss.train.seed import load_seed, seed_pyramid
from mdfloss.train.trainer import (
    ScaleTrainer,
    distort,
    gradient_penalty,
    pad_margin,
    stream,
)

DEFAULT_SEED = Path(__file__).resolve().parents[2] / "shared" / "data" / "seeds" / "dandelions.png"


def median_seconds(function, repeats: int) -> float:
    function()
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        function()
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def new_pair(width: int, rng: torch.Generator) -> tuple[ResidualGenerator, PatchDiscriminator]:
    return singan_init_(ResidualGenerator(width), rng), singan_init_(PatchDiscriminator(width), rng)


class SinGANStyleIteration:
    """One SinGAN iteration at scale k (index ``level``), whole image, frozen chain re-drawn per D step."""

    def __init__(self, reals, level, widths, distortion, rng, alpha=100.0, gp_weight=0.1, steps=3):
        self.reals, self.level, self.distortion, self.rng = reals, level, distortion, rng
        self.alpha, self.gp_weight, self.steps = alpha, gp_weight, steps
        self.frozen = [new_pair(w, rng)[0].eval().requires_grad_(False) for w in widths[:level]]
        self.generator, self.discriminator = new_pair(widths[level], rng)
        self.optimizer_g = torch.optim.Adam(self.generator.parameters(), lr=5e-4, betas=(0.5, 0.999))
        self.optimizer_d = torch.optim.Adam(self.discriminator.parameters(), lr=5e-4, betas=(0.5, 0.999))
        self.reconstruction_input = self.draw_concat(distorted=False)

    @torch.no_grad()
    def draw_concat(self, distorted: bool = True) -> torch.Tensor:
        """The padded, distorted input of scale k through every frozen coarser generator."""
        x = self.reals[0]
        for generator, real in zip(self.frozen, self.reals[1:]):
            x = generator(distort(self.distortion, pad_margin(x), self.rng) if distorted else pad_margin(x))
            x = F.interpolate(x, size=real.shape[-2:], mode="bicubic", align_corners=False)
        padded = pad_margin(x)
        return distort(self.distortion, padded, self.rng) if distorted else padded

    def __call__(self) -> None:
        real = self.reals[self.level]
        for _ in range(self.steps):
            self.optimizer_d.zero_grad()
            (-self.discriminator(real).mean()).backward()
            inputs = self.draw_concat()
            with torch.no_grad():
                fake = self.generator(inputs)
            self.discriminator(fake).mean().backward()
            (self.gp_weight * gradient_penalty(self.discriminator, real, fake, self.rng)).backward()
            self.optimizer_d.step()
        self.discriminator.requires_grad_(False)
        for _ in range(self.steps):
            self.optimizer_g.zero_grad()
            (-self.discriminator(self.generator(inputs)).mean()).backward()
            rec = F.mse_loss(self.generator(self.reconstruction_input), real)
            (self.alpha * rec).backward()
            self.optimizer_g.step()
        self.discriminator.requires_grad_(True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seed", type=Path, default=DEFAULT_SEED, help="seed image (default: dandelions.png)")
    parser.add_argument("--task", default="denoise")
    parser.add_argument("--scales", type=int, default=8)
    parser.add_argument("--repeats", type=int, default=5, help="timed iterations per measurement (median)")
    parser.add_argument("--threads", type=int, help="torch threads (default: torch's choice)")
    parser.add_argument("--singan-max-pixels", type=int, default=640 * 360,
                        help="largest image the SinGAN-style loop is run on; beyond, extrapolated")
    args = parser.parse_args()
    if not args.seed.is_file():
        raise SystemExit(f"seed image not found: {args.seed} (pass --seed)")
    if args.threads:
        torch.set_num_threads(args.threads)

    fast = resolve_settings("fast", {"scales": args.scales})
    paper = resolve_settings("paper", {"scales": args.scales})
    distortion = make_distortion(args.task)
    reals = [(level * 2 - 1)[None] for level in seed_pyramid(load_seed(args.seed), args.scales)]
    widths = fast.widths()
    rng = stream(0, 0, "benchmark")

    rows, measured_singan = [], {}
    for level, real in enumerate(reals):
        height, width = real.shape[-2:]
        previous = reals[level - 1] if level else real
        bank = pad_margin(F.interpolate(previous, size=(height, width), mode="bicubic", align_corners=False))
        bank = bank.expand(fast.bank_size, -1, -1, -1).contiguous()
        generator, discriminator = new_pair(widths[level], rng)
        trainer = ScaleTrainer(level + 1, real, bank, generator, discriminator, distortion, fast, rng)
        fast_s = median_seconds(trainer.step, args.repeats)
        bank_s = 0.0
        if level + 1 < len(reals):
            started = time.perf_counter()
            with torch.no_grad():
                for slot in bank.split(1):
                    generator.eval()(distort(distortion, slot, rng))
            bank_s = time.perf_counter() - started
        pixels = height * width
        if pixels <= args.singan_max_pixels:
            singan = SinGANStyleIteration(reals, level, widths, distortion, rng)
            singan_s = median_seconds(singan, max(1, min(args.repeats, 3)) if pixels > 50_000 else args.repeats)
            measured_singan[widths[level]] = (pixels, singan_s)
            estimated = False
        else:
            base_pixels, base_s = measured_singan[widths[level]]
            singan_s, estimated = base_s * pixels / base_pixels, True
        rows.append((level + 1, f"{height}x{width}", widths[level], trainer.crop_size(), fast_s, bank_s,
                     singan_s, estimated))
        print(f"scale {level + 1} done", flush=True)

    print(f"\nseed {args.seed.name}, task {args.task}, torch {torch.__version__}, "
          f"{torch.get_num_threads()} threads; median of {args.repeats} iterations\n")
    print("| scale | size (HxW) | width | fast crop x batch | fast s/iter | bank s (once) | SinGAN-style s/iter | "
          "SinGAN / fast |")
    print("|---|---|---|---|---|---|---|---|")
    fast_total = singan_total = 0.0
    for scale, size, width, crop, fast_s, bank_s, singan_s, estimated in rows:
        mark = " (est.)" if estimated else ""
        print(f"| {scale} | {size} | {width} | {crop[0]}x{crop[1]} x {fast.batch} | {fast_s:.3f} | {bank_s:.1f} | "
              f"{singan_s:.2f}{mark} | {singan_s / fast_s:.0f}x |")
        fast_total += fast.iters * fast_s + bank_s
        singan_total += paper.iters * singan_s
    print(f"\nprojected training time: fast preset ({fast.iters} it/scale) {fast_total / 60:.1f} min; "
          f"SinGAN-style loop at the paper's {paper.iters} it/scale {singan_total / 3600:.1f} h")


if __name__ == "__main__":
    main()
