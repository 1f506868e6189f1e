"""Cost of each loss in one training step: time, peak memory, multiply-adds (the paper's Table 1).

    python benchmarks/loss_cost.py [--reps 5] [--shapes 16x3x96x96,1x3x512x512] [--device cpu|cuda|all]
                                   [--threads 2] [--out FILE.md]

For every shape and device, each loss gets a prediction that requires grad and a target that
does not. One repetition times ``loss(prediction, target)`` (fwd) and then ``.backward()``; fwd+bwd
is their sum. The losses take turns within each repetition, so a burst of load from other
processes hits all of them alike; one warm-up repetition is discarded and the median of
``--reps`` is reported. The ratio tables divide medians measured in the same run.

Losses: L1, L2, SSIM, MS-SSIM, MS-SSIM+L1 (Zhao et al., alpha 0.84), as ``mdfloss.losses``
builds them; VGG16 perceptual and LPIPS-style VGG (``mdfloss.losses.perceptual``, random weights:
speed does not depend on them); MDF (``mdfloss.MDFLoss``) on ``DiscriminatorPyramid.official(8)``
(widths 32 x 4 + 64 x 4) with random convolutions and random BatchNorm statistics, with the
paper's and the official feature sets; and **MDF straightforward loop**: the official definition
written as a naive implementation would (per discriminator, module forward with BatchNorm
applied separately in eval mode, target and prediction in separate passes, the target with
grad enabled), the reference the fast implementation is measured against; and **MDF
convolutions only (floor)**: just the convolutions a fwd+bwd step of MDF needs, nothing else,
which bounds what any implementation can gain over the loop on the machine at hand.

Columns:

- **weights MB**: bytes of the loss's state dict (parameters and buffers) / 1e6.
- **peak MB**: the highest total of tensor bytes allocated during one fwd+bwd above what existed
  before it. CUDA: ``torch.cuda.max_memory_allocated``. CPU: the allocation and free events of
  ``torch.profiler`` (``profile_memory=True``), replayed in order (tracemalloc does not see torch's
  allocator, and RSS is blurred by the C allocator's caching).
- **GMAC**: multiply-adds of the convolutions in one fwd+bwd step, counted analytically from the
  shapes: the forward passes of prediction and target, and the backward pass to the prediction
  (input gradients only: every weight is frozen). Element-wise work, pooling and reductions are
  not counted, so L1/L2 show none. MDF counts its definition (two tail convolutions per
  discriminator; the implementation needs one).
- **GFLOP/s**: 2 x GMAC / fwd+bwd time.
"""

from __future__ import annotations

import argparse
import math
import os
import platform
import statistics
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from torch import nn

from mdfloss import DiscriminatorPyramid, MDFLoss
from mdfloss.discriminator import official_widths
from mdfloss.functional import SSIM_WINDOW, ms_ssim_window
from mdfloss.loss import channels_layout, folded_layers
from mdfloss.losses.classic import (
    ZHAO_L1_SIGMA,
    L1Loss,
    L2Loss,
    MSSSIML1Loss,
    MSSSIMLoss,
    SSIMLoss,
)
from mdfloss.losses.perceptual import VGG16_CONFIG, LPIPSVGGLoss, VGGPerceptualLoss

MDF_SCALES = 8
FLOOR = "MDF convolutions only (floor)"
VGG_CONVS_TO_RELU5_3 = 13
LPIPS_WIDTHS = (64, 128, 256, 512, 512)


# --------------------------------------------------------------------------- the reference loop


class StraightforwardMDF(nn.Module):
    """The official MDF definition as a plain loop (the speed reference; same values as MDFLoss).

    For each discriminator: ``features = D.features(x, "official")`` (module forward: conv, then
    BatchNorm in eval mode, then LeakyReLU), once for the target and once for the prediction,
    both with grad enabled; then the per-sample mean squared difference of each feature.
    """

    def __init__(self, pyramid: DiscriminatorPyramid, input_range: tuple[float, float] = (-1.0, 1.0)) -> None:
        super().__init__()
        self.pyramid = pyramid.eval().requires_grad_(False)
        self.low, self.high = input_range

    def forward(self, prediction: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        gain = self.high - self.low
        prediction, target = prediction * gain + self.low, target * gain + self.low
        total = 0
        for discriminator in self.pyramid.discriminators:
            target_features = discriminator.features(target, "official")
            for fp, ft in zip(discriminator.features(prediction, "official"), target_features):
                total = total + ((fp - ft) ** 2).mean(dim=(1, 2, 3))
        return total.mean()


class ConvolutionsOnly(nn.Module):
    """The floor for any MDF implementation on this machine: only the convolutions of a step.

    Per discriminator, the 5 BatchNorm-folded convolutions on the target (no grad) and on the
    prediction (whose backward computes input gradients only: the weights are frozen), in
    MDFLoss's memory layout, with no activation, difference or reduction. Not a loss: its
    value is meaningless, its time is what MDFLoss would take if everything but the
    convolutions were free.
    """

    def __init__(self, pyramid: DiscriminatorPyramid) -> None:
        super().__init__()
        self.pyramid = pyramid.eval().requires_grad_(False)

    def forward(self, prediction: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        layout = channels_layout(prediction)
        total = prediction.new_zeros(())
        for discriminator in self.pyramid.discriminators:
            layers = [(w.contiguous(memory_format=layout), b) for w, b in folded_layers(discriminator, prediction.dtype)]
            with torch.no_grad():
                h = target.contiguous(memory_format=layout)
                for weight, bias in layers[:-1]:
                    h = F.conv2d(h, weight, bias)
            h = prediction.contiguous(memory_format=layout)
            for weight, bias in layers:
                h = F.conv2d(h, weight, bias)
            total = total + h.sum()
        return total


def random_pyramid(seed: int = 0) -> DiscriminatorPyramid:
    """The authors' 8 widths with random convolutions and BatchNorm statistics, as after training."""
    generator = torch.Generator().manual_seed(seed)
    pyramid = DiscriminatorPyramid.official(MDF_SCALES)
    with torch.no_grad():
        for module in pyramid.modules():
            if isinstance(module, nn.BatchNorm2d):
                n = module.num_features
                module.weight.copy_(1 + 0.2 * torch.randn(n, generator=generator))
                module.bias.copy_(0.1 * torch.randn(n, generator=generator))
                module.running_mean.copy_(0.1 * torch.randn(n, generator=generator))
                module.running_var.copy_(0.5 + torch.rand(n, generator=generator))
    return pyramid.eval()


# --------------------------------------------------------------------------- multiply-adds


def conv_macs(batch: int, c_in: int, c_out: int, kernel: tuple[int, int], out: tuple[int, int], groups: int = 1) -> int:
    return batch * c_out * (c_in // groups) * kernel[0] * kernel[1] * out[0] * out[1]


def mdf_macs(shape: tuple[int, ...]) -> int:
    """One fwd+bwd: 5 valid 3x3 convolutions per discriminator, x2 forward passes + 1 backward."""
    n, _, h, w = shape
    one_pass = 0
    for width in official_widths(MDF_SCALES):
        channels = [3, width, width, width, width, 1]
        for layer in range(5):
            one_pass += conv_macs(n, channels[layer], channels[layer + 1], (3, 3), (h - 2 * (layer + 1), w - 2 * (layer + 1)))
    return 3 * one_pass


def vgg_pass_macs(shape: tuple[int, ...]) -> tuple[int, list[tuple[int, int, int]]]:
    """MACs of VGG16 up to relu5_3 for one pass, and the (channels, h, w) of each block end."""
    n, _, h, w = shape
    macs, channels, convs, ends = 0, 3, 0, []
    for item in VGG16_CONFIG:
        if convs == VGG_CONVS_TO_RELU5_3:
            break
        if item == "M":
            ends.append((channels, h, w))
            h, w = h // 2, w // 2
            continue
        macs += conv_macs(n, channels, int(item), (3, 3), (h, w))
        channels, convs = int(item), convs + 1
    ends.append((channels, h, w))
    return macs, ends


def vgg_macs(shape: tuple[int, ...]) -> int:
    return 3 * vgg_pass_macs(shape)[0]


def lpips_macs(shape: tuple[int, ...]) -> int:
    """VGG16 plus the 1x1 heads on the five squared differences (forward and backward)."""
    macs, ends = vgg_pass_macs(shape)
    heads = sum(conv_macs(shape[0], c, 1, (1, 1), (h, w)) for c, h, w in ends)
    return 3 * macs + 2 * heads


def gaussian_filter_macs(n: int, c: int, h: int, w: int, window: int) -> int:
    """pytorch_msssim's separable depthwise filter: along H, then along W (skipped if too small)."""
    macs = 0
    if h >= window:
        h = h - window + 1
        macs += conv_macs(n, c, c, (window, 1), (h, w), groups=c)
    if w >= window:
        macs += conv_macs(n, c, c, (1, window), (h, w - window + 1), groups=c)
    return macs


def ssim_macs(shape: tuple[int, ...], window: int = SSIM_WINDOW) -> int:
    """5 filtered maps forward (x, y, x^2, y^2, xy); 3 depend on the prediction in the backward."""
    return 8 * gaussian_filter_macs(*shape, window)


def ms_ssim_macs(shape: tuple[int, ...]) -> int:
    n, c, h, w = shape
    window = ms_ssim_window(min(h, w))
    macs = 0
    for level in range(5):
        macs += 8 * gaussian_filter_macs(n, c, h, w, window)
        if level < 4:  # avg_pool2d(2) with padding h % 2, as pytorch_msssim
            h, w = (h + 2 * (h % 2) - 2) // 2 + 1, (w + 2 * (w % 2) - 2) // 2 + 1
    return macs


def ms_ssim_l1_macs(shape: tuple[int, ...]) -> int:
    """MS-SSIM plus the Gaussian-weighted L1: along W, then along H, forward and backward."""
    n, c, h, w = shape
    width = min(2 * math.ceil(3 * ZHAO_L1_SIGMA) + 1, h, w)
    width -= 1 - width % 2
    gauss = conv_macs(n, c, c, (1, width), (h, w - width + 1), groups=c)
    gauss += conv_macs(n, c, c, (width, 1), (h - width + 1, w - width + 1), groups=c)
    return ms_ssim_macs(shape) + 2 * gauss


# --------------------------------------------------------------------------- the losses


@dataclass
class Entry:
    name: str
    build: Callable[[], nn.Module]
    overhead: str
    macs: Callable[[tuple[int, ...]], int]
    module: nn.Module | None = None
    times: dict[str, list[float]] = field(default_factory=lambda: {"fwd": [], "fwd+bwd": []})
    peak: float = 0.0


def entries(pyramid: DiscriminatorPyramid) -> list[Entry]:
    free = dict(check_range=False)
    return [
        Entry("L1", lambda: L1Loss(), "none", lambda s: 0),
        Entry("L2", lambda: L2Loss(), "none", lambda s: 0),
        Entry("SSIM", lambda: SSIMLoss(), "none", ssim_macs),
        Entry("MS-SSIM", lambda: MSSSIMLoss(), "none", ms_ssim_macs),
        Entry("MS-SSIM+L1", lambda: MSSSIML1Loss(), "none", ms_ssim_l1_macs),
        Entry("VGG16 perceptual", lambda: VGGPerceptualLoss(weights="random", **free), "1.3M images", vgg_macs),
        Entry("LPIPS-style VGG", lambda: LPIPSVGGLoss(weights="random", heads="uniform", **free),
              "1.3M + 161k images", lpips_macs),
        Entry("MDF straightforward loop", lambda: StraightforwardMDF(pyramid), "one image", mdf_macs),
        Entry("MDF official features", lambda: MDFLoss(pyramid, features="official", **free), "one image", mdf_macs),
        Entry("MDF paper features", lambda: MDFLoss(pyramid, features="paper", **free), "one image", mdf_macs),
        Entry(FLOOR, lambda: ConvolutionsOnly(pyramid), "-", mdf_macs),
    ]


# --------------------------------------------------------------------------- measuring


def synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def time_step(module: nn.Module, prediction: torch.Tensor, target: torch.Tensor) -> tuple[float, float]:
    """(fwd ms, fwd+bwd ms) of one call and its backward."""
    prediction.grad = None
    device = prediction.device
    synchronize(device)
    start = time.perf_counter()
    value = module(prediction, target)
    synchronize(device)
    middle = time.perf_counter()
    value.backward()
    synchronize(device)
    end = time.perf_counter()
    return (middle - start) * 1e3, (end - start) * 1e3


def peak_memory_mb(module: nn.Module, prediction: torch.Tensor, target: torch.Tensor) -> float:
    """Peak of tensor bytes allocated during one fwd+bwd, above those alive before it, / 1e6."""
    prediction.grad = None
    if prediction.device.type == "cuda":
        synchronize(prediction.device)
        torch.cuda.reset_peak_memory_stats(prediction.device)
        before = torch.cuda.memory_allocated(prediction.device)
        module(prediction, target).backward()
        synchronize(prediction.device)
        return (torch.cuda.max_memory_allocated(prediction.device) - before) / 1e6
    from torch.profiler import ProfilerActivity, profile
    from torch.profiler._memory_profiler import Action, MemoryProfile

    with profile(activities=[ProfilerActivity.CPU], profile_memory=True, record_shapes=True, with_stack=True) as prof:
        module(prediction, target).backward()
    created: dict[object, int] = {}
    current = peak = 0
    for _, action, (key, _version), size in MemoryProfile(prof.profiler.kineto_results).timeline:
        if key.device.type != "cpu":
            continue
        if action == Action.CREATE:
            created[key] = size
            current += size
        elif action == Action.DESTROY and key in created:  # tensors from before the step are not counted
            current -= created.pop(key)
        peak = max(peak, current)
    return peak / 1e6


def state_mb(module: nn.Module) -> float:
    return sum(t.numel() * t.element_size() for t in module.state_dict().values()) / 1e6


def measure(shape: tuple[int, ...], device: torch.device, reps: int, pyramid: DiscriminatorPyramid) -> list[Entry]:
    generator = torch.Generator().manual_seed(1)
    target = torch.rand(shape, generator=generator)
    prediction = (target + 0.05 * torch.randn(shape, generator=generator)).clamp(0, 1)
    prediction, target = prediction.to(device).requires_grad_(True), target.to(device)
    table = entries(pyramid.to(device))
    for entry in table:
        entry.module = entry.build().to(device)
    check_equal_values(table, prediction, target)
    for repetition in range(reps + 1):  # the first is a warm-up
        for entry in table:
            fwd, total = time_step(entry.module, prediction, target)
            if repetition:
                entry.times["fwd"].append(fwd)
                entry.times["fwd+bwd"].append(total)
        print(f"  {shape_name(shape)} {device.type}: repetition {repetition}/{reps} done", file=sys.stderr, flush=True)
    for entry in table:
        entry.peak = peak_memory_mb(entry.module, prediction, target)
    return table


def check_equal_values(table: list[Entry], prediction: torch.Tensor, target: torch.Tensor) -> None:
    """The loop and MDFLoss(features="official") must agree, or the comparison means nothing."""
    by_name = {entry.name: entry.module for entry in table}
    with torch.no_grad():
        loop = by_name["MDF straightforward loop"](prediction, target)
        fast = by_name["MDF official features"](prediction, target)
    if not torch.allclose(loop, fast, rtol=1e-4, atol=1e-6):
        raise RuntimeError(f"MDF loop and MDFLoss disagree: {float(loop)} vs {float(fast)}")


# --------------------------------------------------------------------------- reporting


def shape_name(shape: tuple[int, ...]) -> str:
    return "x".join(str(s) for s in shape)


def results_table(table: list[Entry], shape: tuple[int, ...]) -> list[str]:
    lines = [
        "| loss | weights MB | training overhead | fwd ms | fwd+bwd ms | peak MB | GMAC | GFLOP/s |",
        "|---|---:|---|---:|---:|---:|---:|---:|",
    ]
    for entry in table:
        macs = entry.macs(shape)
        fwd, total = statistics.median(entry.times["fwd"]), statistics.median(entry.times["fwd+bwd"])
        gmac = f"{macs / 1e9:.3g}" if macs else "-"
        rate = f"{2 * macs / (total / 1e3) / 1e9:.3g}" if macs else "-"
        lines.append(
            f"| {entry.name} | {state_mb(entry.module):.1f} | {entry.overhead} | {fwd:.1f} | {total:.1f} | "
            f"{entry.peak:.0f} | {gmac} | {rate} |"
        )
    return lines


def ratio_table(table: list[Entry]) -> list[str]:
    """Speed-ups of MDFLoss: ratio of medians, and in brackets the ratio of the best repetitions."""
    times = {entry.name: entry.times for entry in table}

    def speedup(reference: str, name: str, kind: str) -> str:
        ours, theirs = times[name][kind], times[reference][kind]
        return f"{statistics.median(theirs) / statistics.median(ours):.2f}x ({min(theirs) / min(ours):.2f}x)"

    loop, vgg = "MDF straightforward loop", "VGG16 perceptual"
    lines = [
        "| MDF | fwd+bwd speed-up vs straightforward loop | fwd+bwd speed-up vs VGG16 perceptual | "
        "fwd speed-up vs loop | fwd speed-up vs VGG16 |",
        "|---|---:|---:|---:|---:|",
    ]
    for name in ("MDF official features", "MDF paper features", FLOOR):
        lines.append(
            f"| {name} | {speedup(loop, name, 'fwd+bwd')} | {speedup(vgg, name, 'fwd+bwd')} | "
            f"{speedup(loop, name, 'fwd')} | {speedup(vgg, name, 'fwd')} |"
        )
    return lines + [
        "",
        "Speed-ups: ratio of the medians (in brackets: of the best repetitions). The floor's row is the "
        "most any implementation of these convolutions could gain on this machine.",
    ]


def machine(device: torch.device, threads: int) -> str:
    if device.type == "cuda":
        return f"{torch.cuda.get_device_name(device)}, torch {torch.__version__}"
    model = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as handle:
            model = next(line.split(":", 1)[1].strip() for line in handle if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    return f"{model}, {threads} thread(s), float32, torch {torch.__version__}"


def parse_shape(text: str) -> tuple[int, ...]:
    parts = tuple(int(p) for p in text.lower().split("x"))
    if len(parts) != 4 or parts[1] != 3 or min(parts) < 1:
        raise argparse.ArgumentTypeError(f"expected a shape NxCxHxW with C = 3, such as 16x3x96x96, got {text!r}")
    return parts


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--reps", type=int, default=5, help="timed repetitions after one warm-up (median reported)")
    parser.add_argument("--shapes", default="16x3x96x96,1x3x512x512", help="comma-separated NxCxHxW")
    parser.add_argument("--device", choices=("cpu", "cuda", "all"), default="all",
                        help="all = the CPU, plus CUDA when available")
    parser.add_argument("--threads", type=int, default=2, help="torch CPU threads")
    parser.add_argument("--out", help="also write the markdown to this file")
    args = parser.parse_args(argv)
    shapes = [parse_shape(s) for s in args.shapes.split(",")]
    torch.set_num_threads(args.threads)
    devices = [torch.device("cpu")] if args.device in ("cpu", "all") else []
    if args.device in ("cuda", "all"):
        if torch.cuda.is_available():
            devices.append(torch.device("cuda"))
        elif args.device == "cuda":
            print("no CUDA device: nothing to measure", file=sys.stderr)
            return 0
    command = "python benchmarks/loss_cost.py " + " ".join(sys.argv[1:] if argv is None else argv)
    lines = [f"Command: `{command.strip()}`", ""]
    pyramid = random_pyramid()
    for device in devices:
        for shape in shapes:
            load_before = os.getloadavg()[0]
            table = measure(shape, device, args.reps, pyramid)
            block = [
                f"### {shape_name(shape)} on {device.type}: {machine(device, args.threads)}",
                "",
                f"Median of {args.reps} repetitions after a warm-up; MDF = 8 discriminators, widths 32 x 4 + 64 x 4. "
                f"Load average (other processes share the machine): {load_before:.1f} before, "
                f"{os.getloadavg()[0]:.1f} after.",
                "",
                *results_table(table, shape),
                "",
                *ratio_table(table),
                "",
            ]
            print("\n".join(block), flush=True)
            lines += block
    if args.out:
        from pathlib import Path

        from mdfloss.weights import write_atomically

        text = "\n".join(lines)
        write_atomically(args.out, lambda path: Path(path).write_text(text))
    return 0


if __name__ == "__main__":
    sys.exit(main())
