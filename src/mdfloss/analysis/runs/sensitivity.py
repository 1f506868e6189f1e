"""``mdfloss analyze sensitivity``: every loss on matched-PSNR distortions of every image."""

from __future__ import annotations

import argparse
import sys
import time
from typing import Any

REFERENCE_LOSSES = ("l2", "ssim")
CSV_NAME, FIGURE_NAME, RATIOS_NAME = "sensitivity.csv", "sensitivity.png", "ratios.md"


def labelled_specs(requested: list[str]) -> dict[str, str]:
    """``{label: spec}`` of the requested losses, then L2 and SSIM; a repeated label keeps the spec."""
    from ...losses.spec import loss_label, loss_spec

    specs = list(dict.fromkeys(loss_spec(text) for text in requested))
    specs += [name for name in REFERENCE_LOSSES if name not in {s.lower() for s in specs}]
    labelled: dict[str, str] = {}
    for spec in specs:
        label = loss_label(spec)
        labelled[spec if label in labelled else label] = spec
    return labelled


def single_scale_parts(losses: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """``{label: {"label[k]": the loss with discriminator k only}}`` for every MDF loss."""
    from ...loss import MDFLoss

    return {label: {f"{label}[{k}]": part for k, part in loss.scale_parts().items()}
            for label, loss in losses.items() if isinstance(loss, MDFLoss)}


def run(args: argparse.Namespace) -> int:
    from ..._files import list_images
    from ...losses import build_loss
    from ...runtime import resolve_device
    from .. import report
    from ..sensitivity import distort, load_image, measure_losses

    def say(message: str) -> None:
        print(f"[{time.perf_counter() - start:6.1f} s] {message}", file=sys.stderr, flush=True)

    start = time.perf_counter()
    if args.ratio_level not in args.levels:
        raise ValueError(f"--ratio-level: expected one of --levels {args.levels}, got {args.ratio_level:g}")
    device = resolve_device(args.device, "--device")
    mdf_options = {"features": args.mdf_features, "scales": args.mdf_scales}
    mdf_options = {key: value for key, value in mdf_options.items() if value is not None}
    specs = labelled_specs(args.loss)
    paths = list_images(args.images, "--images")[: args.max_images]
    losses = {label: build_loss(spec, device=device, mdf_options=mdf_options) for label, spec in specs.items()}
    try:
        references = {path.name: load_image(path, args.size, args.fit) for path in paths}
    except OSError as error:
        raise ValueError(f"--images: {error}") from None
    wholes = list(losses)
    parts = single_scale_parts(losses) if args.per_scale else {}
    for names in parts.values():
        losses.update(names)
    sizes = sorted({tuple(image.shape[-2:]) for image in references.values()})
    say(f"{len(references)} images at {', '.join(f'{h}x{w}' for h, w in sizes)} px; losses: {', '.join(losses)}")

    measurements = []
    for name, image in references.items():
        samples = distort(name, image, args.levels, args.jpeg_qualities, args.seed)
        measurements += measure_losses(losses, image, samples, device)
        say(f"{name}: {len(samples)} distortions x {len(losses)} losses")

    header = report.sensitivity_header(
        args.command_line, specs, mdf_options, list(references), fit=args.fit, size=args.size, levels=args.levels,
        jpeg_qualities=args.jpeg_qualities, seed=args.seed,
    )
    ratios = report.ratios_markdown(measurements, list(losses), args.levels, args.ratio_level, header)
    if parts:
        shares = {whole: list(names) for whole, names in parts.items()}
        ratios += "\n" + report.scale_shares_markdown(measurements, shares, args.ratio_level)
    out = args.out
    written = [
        report.write_measurements(out / CSV_NAME, measurements),
        report.plot(out / FIGURE_NAME, measurements, wholes,
                    title=f"{len(references)} images, {args.size} px: loss vs PSNR per distortion"),
        report.write_text(out / RATIOS_NAME, ratios),
    ]
    say("wrote " + ", ".join(str(path) for path in written))
    return 0
