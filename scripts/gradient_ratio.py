#!/usr/bin/env python3
"""How strongly each loss pulls on a noisy image: value and gradient norm, for choosing mix weights.

    python scripts/gradient_ratio.py --loss mdf:denoise --loss l1 --loss l2 \
        --images ../shared/data/photos/train --sigma 15 25 50

For each noise level, on ``--count`` centre 48 px patches of the first photos of ``--images``
(the benchmark's patch size) with Gaussian noise of that sigma (seed 0) as the "output" and the
clean patches as the target: each loss's value and the norm of its gradient with respect to the
output, then the ratio of the first loss's gradient norm to each other's. In ``A + lambda * B``,
B moves the output about as much as A when lambda is near that ratio; far below it B is
negligible. This is the state at the start of denoising training (the network is the identity).
"""

from __future__ import annotations

import argparse
from pathlib import Path

import torch

from mdfloss._files import list_images
from mdfloss.analysis.sensitivity import load_image
from mdfloss.losses import build_loss


def centre_patches(folder: Path, count: int, size: int) -> torch.Tensor:
    """(count, 3, size, size) float32 centre crops of the first ``count`` images of ``folder``, in [0, 1]."""
    paths = list_images(folder, "--images")[:count]
    return torch.stack([load_image(path, size, fit="crop") for path in paths]).float()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--loss", action="append", required=True, help="a loss spec (first: the reference)")
    parser.add_argument("--images", type=Path, required=True)
    parser.add_argument("--sigma", type=float, nargs="+", default=[15, 25, 50], help="noise levels (of 255)")
    parser.add_argument("--count", type=int, default=8)
    parser.add_argument("--size", type=int, default=48)
    args = parser.parse_args()
    clean = centre_patches(args.images, args.count, args.size)
    losses = {spec: build_loss(spec) for spec in args.loss}
    reference = args.loss[0]
    print("| sigma | loss | value | gradient norm | " + f"{reference} gradient / this |\n|---|---|---|---|---|")
    for sigma in args.sigma:
        noisy = (clean + torch.randn(clean.shape, generator=torch.Generator().manual_seed(0)) * sigma / 255).clamp(0, 1)
        measured = {}
        for spec, loss in losses.items():
            output = noisy.clone().requires_grad_(True)
            value = loss(output, clean)
            (gradient,) = torch.autograd.grad(value, output)
            measured[spec] = (value.item(), gradient.norm().item())
        for spec, (value, norm) in measured.items():
            print(f"| {sigma:g} | {spec} | {value:.4g} | {norm:.4g} | {measured[reference][1] / norm:.3g} |")


if __name__ == "__main__":
    main()
