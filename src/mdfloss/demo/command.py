"""The main job: train a small loss, then reconstruct an image from noise with each loss.

As in the authors' README, the pixels of a noise image are optimised by Adam to minimise a
loss against a reference image; how fast and how cleanly the picture emerges shows what each
loss rewards. The demo first trains a quick MDF loss on the bundled seed photo (phase 1), then
runs the reconstruction with L2, that quick loss, the shipped pretrained losses and, when
their files are found, the authors' official weights (read safely, never unpickled).
Writes ``strip.png`` (snapshots), ``curves.png`` (PSNR per step), ``summary.json``.
"""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Callable
from importlib import resources
from pathlib import Path

import numpy as np
import torch

from .._files import read_rgb, write_atomically
from ..loss import MDFLoss, pretrained_names

BUNDLED_IMAGE = "dandelions-512.png"
# The quick loss's recipe: phase 1 is a GAN, so its result is a draw; 3 scales of 300 iterations
# gave the narrowest spread over phase-1 seeds and thread counts (benchmarks/README.md, demo_spread.py).
QUICK_SCALES, QUICK_ITERS = 3, 300
OFFICIAL_CANDIDATES = ("../shared/anchors/mdf-official/Ds_SISR.pth",)

Loss = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--out", type=Path, default=Path("demo-output"), help="output folder")
    parser.add_argument("--image", type=Path, help="reference image (default: the bundled photo)")
    parser.add_argument("--size", type=int, default=128, help="side of the centre crop to reconstruct")
    parser.add_argument("--steps", type=int, default=100, help="Adam steps per loss")
    parser.add_argument("--lr", type=float, default=0.05, help="Adam learning rate on the pixels")
    parser.add_argument("--official", type=Path, help="an authors' Ds_*.pth file to include")
    parser.add_argument("--quick-scales", type=int, default=QUICK_SCALES, help="scales of the loss trained by the demo")
    parser.add_argument("--quick-iters", type=int, default=QUICK_ITERS, help="iterations per scale of that loss")
    parser.add_argument("--skip-training", action="store_true", help="do not train the quick loss")
    parser.add_argument("--seed", type=int, default=0, help="random seed of the start image")


def run(args: argparse.Namespace) -> int:
    args.out.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(args.seed)
    with resources.as_file(resources.files("mdfloss.data") / BUNDLED_IMAGE) as bundled:
        image_path = args.image or bundled
        target = _centre_crop(_load_rgb(image_path), args.size)
        losses: dict[str, Loss] = {"L2": torch.nn.MSELoss()}
        if not args.skip_training:
            quick = _train_quick_loss(bundled, args.out / "quick-sisr.safetensors", args.quick_scales, args.quick_iters)
            losses["MDF quick (trained now)"] = MDFLoss.from_file(quick)
    for name in pretrained_names():
        losses[f"MDF pretrained {name}"] = MDFLoss.pretrained(name)
    official = args.official or next((Path(p) for p in OFFICIAL_CANDIDATES if Path(p).is_file()), None)
    if official is not None:
        losses[f"MDF official {official.stem}"] = MDFLoss.from_official(official, scales=8)
    else:
        print("authors' weights not found (pass --official Ds_SISR.pth to include them)")

    start = torch.rand(target.shape, generator=torch.Generator().manual_seed(args.seed))
    snapshot_steps = sorted({0, args.steps // 10, args.steps // 4, args.steps // 2, args.steps})
    results = {}
    for name, loss in losses.items():
        began = time.perf_counter()
        results[name] = reconstruct(target, start, loss, args.steps, args.lr, snapshot_steps, name)
        results[name]["seconds"] = time.perf_counter() - began
        print(f"{name:32s} PSNR {results[name]['psnr'][-1]:6.2f} dB after {args.steps} steps "
              f"({results[name]['seconds']:.1f} s)")

    _plot_strip(target, results, snapshot_steps, args.out / "strip.png")
    _plot_curves(results, args.out / "curves.png")
    summary = {
        "image": str(image_path), "size": args.size, "steps": args.steps, "lr": args.lr,
        "final_psnr_db": {name: r["psnr"][-1] for name, r in results.items()},
        "seconds": {name: r["seconds"] for name, r in results.items()},
    }
    write_atomically(args.out / "summary.json", lambda tmp: Path(tmp).write_text(json.dumps(summary, indent=2)))
    print(f"wrote {args.out / 'strip.png'}, {args.out / 'curves.png'} and {args.out / 'summary.json'}")
    return 0


def reconstruct(
    target: torch.Tensor, start: torch.Tensor, loss: Loss, steps: int, lr: float,
    snapshot_steps: list[int], label: str = "",
) -> dict:
    """Adam on the pixels of ``start`` (1, 3, H, W), projected onto [0, 1] after each step.

    Returns the PSNR (dB) after every step (index 0 = start) and snapshots as uint8 HWC arrays.
    """
    from tqdm import tqdm

    image = start.clone().requires_grad_(True)
    optimizer = torch.optim.Adam([image], lr=lr)
    psnr = [_psnr(image.detach(), target)]
    snapshots = {0: _to_uint8(image.detach())}
    for step in tqdm(range(1, steps + 1), desc=label, leave=False):
        optimizer.zero_grad(set_to_none=True)
        loss(image, target).backward()
        optimizer.step()
        with torch.no_grad():
            image.clamp_(0, 1)
        psnr.append(_psnr(image.detach(), target))
        if step in snapshot_steps:
            snapshots[step] = _to_uint8(image.detach())
    return {"psnr": psnr, "snapshots": snapshots}


def _train_quick_loss(seed: Path, out: Path, scales: int, iters: int) -> Path:
    """Phase 1 on one thread: a GAN's result depends on the order of its float sums, so a
    fixed thread count makes the quick loss the same whatever the machine's core count."""
    from ..runtime import scoped_threads
    from ..train import train_loss

    print(f"training a {scales}-scale SISR loss on {seed.name} ({iters} iterations per scale, one thread)")
    with scoped_threads(1):
        return train_loss(seed, out, task="sisr", preset="fast", scales=scales, iters=iters)


def _load_rgb(path: Path) -> torch.Tensor:
    """(1, 3, H, W) float32 in [0, 1]."""
    array = read_rgb(path).astype(np.float32) / 255.0
    return torch.from_numpy(array).permute(2, 0, 1).unsqueeze(0).contiguous()


def _centre_crop(image: torch.Tensor, size: int) -> torch.Tensor:
    height, width = image.shape[-2:]
    if size > min(height, width):
        raise ValueError(f"size: expected at most the image's shorter side {min(height, width)}, got {size}")
    top, left = (height - size) // 2, (width - size) // 2
    return image[..., top : top + size, left : left + size].contiguous()


def _psnr(x: torch.Tensor, y: torch.Tensor) -> float:
    mse = torch.mean((x - y) ** 2).item()
    return float("inf") if mse == 0 else 10 * np.log10(1.0 / mse)


def _to_uint8(image: torch.Tensor) -> np.ndarray:
    return (image[0].permute(1, 2, 0).clamp(0, 1).numpy() * 255 + 0.5).astype(np.uint8)


def _plot_strip(target: torch.Tensor, results: dict, steps: list[int], path: Path) -> None:
    """A grid: one row per loss, snapshots at ``steps`` then the reference."""
    plt = _pyplot()
    reference = _to_uint8(target)
    columns = len(steps) + 1
    figure, axes = plt.subplots(len(results), columns, figsize=(1.6 * columns, 1.7 * len(results)), squeeze=False)
    for row, (name, result) in zip(axes, results.items()):
        tiles = [result["snapshots"][s] for s in steps] + [reference]
        titles = [f"step {s}" for s in steps] + ["reference"]
        for axis, tile, title in zip(row, tiles, titles):
            axis.imshow(tile)
            axis.set_xticks([])
            axis.set_yticks([])
            axis.set_title(title, fontsize=7)
        row[0].set_ylabel(name, fontsize=7)
    figure.tight_layout()
    _save_figure(figure, path)


def _plot_curves(results: dict, path: Path) -> None:
    plt = _pyplot()
    figure, axes = plt.subplots(figsize=(7, 4))
    for name, result in results.items():
        axes.plot(result["psnr"], label=name)
    axes.set(xlabel="Adam step", ylabel="PSNR to the reference (dB)", title="Reconstruction from noise")
    axes.grid(alpha=0.3)
    axes.legend(fontsize=8)
    figure.tight_layout()
    _save_figure(figure, path)


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _save_figure(figure, path: Path) -> None:
    write_atomically(path, lambda tmp: figure.savefig(tmp, format="png", dpi=120))
    _pyplot().close(figure)
