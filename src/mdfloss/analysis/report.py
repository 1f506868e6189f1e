"""Outputs of the sensitivity analysis: the CSV of every value, the figure, the ratio tables (Markdown).

Every file is written atomically (:func:`mdfloss.weights.write_atomically`).
"""

from __future__ import annotations

import csv
import math
import statistics
from collections.abc import Sequence
from pathlib import Path

from .._files import write_atomically, write_csv
from .._version import __version__
from ..document import (
    Block,
    Bullets,
    Code,
    CodeBlock,
    Heading,
    Paragraph,
    Table,
    to_markdown,
)
from .gradients import STATES, ScaleShare, mean_shares
from .manifold import Descriptors
from .probes import JPEG, MATCH_TOLERANCE_DB, PARAMETER_NAMES, psnr_from_mse
from .sensitivity import REFERENCE_DISTORTION, Measurement, Ratio, per_unit_mse_ratios

CSV_COLUMNS = (
    "loss", "image", "distortion", "target_psnr", "achieved_psnr", "mse", "value", "parameter", "parameter_name",
    "matched",
)


def sensitivity_header(command: str, specs: dict[str, str], mdf_options: dict[str, object], images: Sequence[str], *,
                       fit: str, size: int, levels: Sequence[float], jpeg_qualities: Sequence[int], seed: int) -> str:
    """The Markdown head of ``ratios.md``: the command that wrote it, the losses, images and levels."""
    losses: list[str | Code] = ["Losses: "]
    for index, (label, spec) in enumerate(specs.items()):
        losses += [", " if index else "", Code(label), " = ", Code(spec)]
    losses.append((f"; MDF options {mdf_options}" if mdf_options else "") + ".")
    blocks: list[Block] = [
        Heading(1, "Loss sensitivity at matched PSNR"),
        Paragraph(f"Written by mdfloss {__version__}:"),
        CodeBlock([command]),
        Paragraph(*losses),
        Paragraph(f"Images: {len(images)} ({', '.join(images)}), {fit} to {size} px. "
                  f"Levels: {', '.join(f'{v:g}' for v in levels)} dB; JPEG qualities: "
                  f"{', '.join(map(str, jpeg_qualities)) or 'none'}; noise seed {seed}."),
    ]
    return to_markdown(blocks)


def write_shares(path: str | Path, shares: dict[str, Sequence[ScaleShare]]) -> Path:
    """One CSV row per (loss, state, image, scale)."""
    fields = ("loss", "state", "image", "scale", "loss_value", "loss_share", "gradient_share")
    rows = [{"loss": label, "state": s.state, "image": s.image, "scale": s.scale, "loss_value": f"{s.loss:.6g}",
             "loss_share": f"{s.loss_share:.6f}", "gradient_share": f"{s.gradient_share:.6f}"}
            for label, items in shares.items() for s in items]
    write_csv(Path(path), fields, rows)
    return Path(path)


def shares_markdown(command: str, experiment: str, shares: dict[str, Sequence[ScaleShare]]) -> str:
    """Per loss, a table of each scale's mean loss and gradient share at the start and as selected."""
    blocks: list[Block] = [
        Heading(1, f"Which discriminators drive training: {experiment}"),
        Paragraph(f"Written by mdfloss {__version__}:"), CodeBlock([command]),
        Paragraph("Mean over the validation images of each discriminator's share of the MDF loss and of its "
                  "gradient with respect to the network output (projection on the total gradient; the shares "
                  "sum to 1, a negative one pulls against the others); scale 0 is the coarsest. start: the "
                  "network before training (the identity); selected: the weights the benchmark tested."),
    ]
    for label, items in shares.items():
        means = mean_shares(items)
        scales = sorted({scale for _, scale in means})
        rows = [[str(k), *(f"{means[(state, k)][key]:.3f}" for key in ("loss_share", "gradient_share")
                           for state in STATES)] for k in scales]
        blocks += [Heading(2, label), Table(["scale", "loss share, start", "loss share, selected",
                                             "gradient share, start", "gradient share, selected"], rows)]
    return to_markdown(blocks)


def write_separability(path: str | Path, rows: Sequence[dict[str, object]]) -> Path:
    """One CSV row per (loss, scale, distorted version): the cross-validated accuracy."""
    formatted = [dict(row, accuracy=f"{row['accuracy']:.4f}") for row in rows]
    write_csv(Path(path), ("loss", "scale", "version", "accuracy"), formatted)
    return Path(path)


def separability_markdown(command: str, rows: Sequence[dict[str, object]], photos: int, crops: int) -> str:
    """A table per loss: its discriminators (and all together) against JPEG, blur and permutation."""
    versions = list(dict.fromkeys(str(row["version"]) for row in rows))
    blocks: list[Block] = [
        Heading(1, "What the discriminators separate"),
        Paragraph(f"Written by mdfloss {__version__}:"), CodeBlock([command]),
        Paragraph(f"{crops} crops of {photos} photos, each as original, JPEG (q7-10), blurred (x4 bilinear down "
                  "and up) and pyramid-permuted; descriptor: the spatial mean of every channel of every compared "
                  "feature map; accuracy of a logistic regression telling each version from the originals, 5-fold "
                  "cross-validated with every photo in one fold (0.5 = chance). Scale 0 is the coarsest."),
    ]
    for label in dict.fromkeys(str(row["loss"]) for row in rows):
        own = [row for row in rows if row["loss"] == label]
        scales = list(dict.fromkeys(str(row["scale"]) for row in own))
        table = [[scale, *(f"{next(r['accuracy'] for r in own if str(r['scale']) == scale and r['version'] == v):.2f}"
                           for v in versions)] for scale in scales]
        blocks += [Heading(2, label), Table(["scale", *versions], table)]
    return to_markdown(blocks)


def tsne_plots(out: Path, label: str, found: Descriptors, seed: int) -> list[Path]:
    """``tsne-LABEL-2d.png`` and ``-3d.png``: the loss's descriptors embedded, coloured by version."""
    from matplotlib.figure import Figure

    from .manifold import embed

    paths = []
    slug = "".join(c if c.isalnum() or c in "-_." else "_" for c in label)
    for dimensions in (2, 3):
        points = embed(found.whole, dimensions, seed)
        figure = Figure(figsize=(5.5, 4.5), layout="constrained")
        axes = figure.add_subplot(projection="3d" if dimensions == 3 else None)
        for version in dict.fromkeys(found.versions):
            chosen = [i for i, v in enumerate(found.versions) if v == version]
            axes.scatter(*points[chosen].T, s=10, label=version)
        axes.set_title(f"{label}: t-SNE of the feature means ({dimensions}-D)")
        axes.legend(fontsize=8)
        path = out / f"tsne-{slug}-{dimensions}d.png"
        paths.append(write_atomically(path, lambda tmp, figure=figure: figure.savefig(tmp, format="png", dpi=110)))
    return paths


def write_measurements(path: str | Path, measurements: Sequence[Measurement]) -> Path:
    """One row per (loss, image, distortion, level); ``target_psnr`` is empty for JPEG.

    ``parameter`` is the probe's strength, named by ``parameter_name`` (sigma, sigma_px,
    amplitude, reduction, shift; quality for JPEG).
    """

    def write(temporary: str) -> None:
        with open(temporary, "w", newline="", encoding="utf-8") as stream:
            writer = csv.writer(stream)
            writer.writerow(CSV_COLUMNS)
            for m in measurements:
                writer.writerow([
                    m.loss, m.image, m.distortion, "" if math.isnan(m.target_psnr) else f"{m.target_psnr:g}",
                    f"{m.achieved_psnr:.4f}", f"{m.mse:.6e}", f"{m.value:.6e}", f"{m.parameter:.6g}",
                    PARAMETER_NAMES.get(m.distortion, ""), str(m.matched).lower(),
                ])

    return write_atomically(path, write)


def curves(measurements: Sequence[Measurement], loss: str) -> dict[str, list[tuple[float, float, float, float]]]:
    """``{distortion: [(psnr, mean, min, max) of the value over images]}``, by increasing PSNR.

    Probes are placed at their target PSNR, JPEG qualities at the PSNR of their mean MSE over
    images (so that L2's JPEG points lie on its probe line).
    """
    groups: dict[tuple[str, float], list[Measurement]] = {}
    for m in measurements:
        if m.loss == loss:
            key = m.parameter if m.distortion == JPEG else m.target_psnr
            groups.setdefault((m.distortion, key), []).append(m)
    result: dict[str, list[tuple[float, float, float, float]]] = {}
    for (distortion, _), rows in groups.items():
        values = [m.value for m in rows]
        psnr = psnr_from_mse(statistics.fmean(m.mse for m in rows)) if distortion == JPEG else rows[0].target_psnr
        result.setdefault(distortion, []).append((psnr, statistics.fmean(values), min(values), max(values)))
    return {distortion: sorted(points) for distortion, points in result.items()}


def plot(path: str | Path, measurements: Sequence[Measurement], losses: Sequence[str], title: str = "") -> Path:
    """One panel per loss: x = PSNR (dB), y = loss value, one line per distortion.

    Probe lines are the mean over images at each target PSNR, with a band from the minimum to
    the maximum; JPEG (dashed) joins the means at each quality (see :func:`curves`), with every image's
    own (PSNR, value) as a faint dot since its PSNR differs from image to image.
    """
    from matplotlib.figure import Figure

    columns = len(losses) if len(losses) <= 3 else 2 if len(losses) == 4 else 3
    rows = math.ceil(len(losses) / columns)
    figure = Figure(figsize=(4.2 * columns, 3.4 * rows), layout="constrained")
    axes = figure.subplots(rows, columns, squeeze=False).ravel()
    for ax, loss in zip(axes, losses):
        lines = curves(measurements, loss)
        for distortion, points in lines.items():
            x, mean, low, high = zip(*points)
            if distortion == JPEG:
                (line,) = ax.plot(x, mean, "s--", markersize=3.5, label=distortion)
                own = [(m.achieved_psnr, m.value) for m in measurements if m.loss == loss and m.distortion == JPEG]
                ax.scatter(*zip(*own), s=6, color=line.get_color(), alpha=0.35, linewidths=0)
            else:
                (line,) = ax.plot(x, mean, "o-", markersize=3.5, label=distortion)
                ax.fill_between(x, low, high, color=line.get_color(), alpha=0.15, linewidth=0)
        if all(v > 0 for points in lines.values() for _, _, v, _ in points):
            ax.set_yscale("log")
        ax.set_title(loss, fontsize=10)
        ax.set_xlabel("PSNR (dB)")
        ax.set_ylabel("loss value")
        ax.grid(True, alpha=0.3)
    for ax in axes[len(losses):]:
        ax.set_visible(False)
    axes[0].legend(fontsize=8)
    if title:
        figure.suptitle(title, fontsize=10)
    return write_atomically(path, lambda temporary: figure.savefig(temporary, format="png", dpi=120))


def _cell(ratio: Ratio | None) -> str:
    if ratio is None:
        return "-"
    if ratio.count == 1:
        return f"{ratio.median:.3g}"
    return f"{ratio.median:.3g} ({ratio.low:.3g}-{ratio.high:.3g})"


def ratios_markdown(
    measurements: Sequence[Measurement],
    losses: Sequence[str],
    levels: Sequence[float],
    reference_level: float,
    header: str = "",
) -> str:
    """The per-unit-MSE ratio table at ``reference_level`` (probes and JPEG), then one per level.

    ``header`` is Markdown put first.
    """
    probes = list(dict.fromkeys(m.distortion for m in measurements if m.distortion not in (JPEG, REFERENCE_DISTORTION)))
    qualities = sorted({int(m.parameter) for m in measurements if m.distortion == JPEG})
    columns = probes + [f"{JPEG} q{q}" for q in qualities]
    images = sorted({m.image for m in measurements})

    reference = per_unit_mse_ratios(measurements, reference_level)
    blocks: list[Block] = [
        Heading(2, f"Loss per unit of MSE, relative to a brightness shift at {reference_level:g} dB"),
        Paragraph(
            f"(loss / MSE) of each distortion divided by (loss / MSE) of the {REFERENCE_DISTORTION} shift at "
            f"{reference_level:g} dB, per image; median over {len(images)} images (min-max). Probes at "
            f"{reference_level:g} dB; JPEG at its own PSNR. The brightness shift is 1 by definition and L2 is 1 "
            "everywhere; above 1 = penalised more than an equally strong brightness change."
        ),
        Table(["loss", *columns], [[loss, *(_cell(reference.get(loss, {}).get(c)) for c in columns)]
                                   for loss in losses]),
    ]
    jpeg_psnr = []
    for quality in qualities:
        values = {
            m.image: m.achieved_psnr for m in measurements if m.distortion == JPEG and int(m.parameter) == quality
        }
        jpeg_psnr.append(f"q{quality} {min(values.values()):.1f}-{max(values.values()):.1f} dB")
    if jpeg_psnr:
        blocks.append(Paragraph("PSNR of the JPEG probes (min-max over images): " + ", ".join(jpeg_psnr) + "."))

    by_level = {level: per_unit_mse_ratios(measurements, level) for level in levels}
    rows = []
    for loss in losses:
        for level in levels:
            table = by_level[level].get(loss, {})
            rows.append([loss, f"{level:g}", *(f"{table[p].median:.3g}" if p in table else "-" for p in probes)])
    blocks += [
        Heading(2, "The same ratio at every level"),
        Paragraph("Each probe against the brightness shift of the same level (median over images)."),
        Table(["loss", "PSNR (dB)", *probes], rows),
    ]

    misses = sorted({
        (m.image, m.distortion, m.target_psnr, m.achieved_psnr)
        for m in measurements if m.distortion != JPEG and not m.matched
    })
    total = len({(m.image, m.distortion, m.target_psnr) for m in measurements if m.distortion != JPEG})
    matched = (f"{total - len(misses)} of {total} probe images are within "
               f"{MATCH_TOLERANCE_DB:g} dB of their target PSNR.")
    if misses:
        matched += "\nNot reachable (the strongest distortion is used and kept in the CSV with matched=false):"
    blocks += [Heading(2, "Matching"), Paragraph(matched)]
    if misses:
        blocks.append(Bullets([f"{image}: {d} at {target:g} dB reaches only {achieved:.2f} dB"
                               for image, d, target, achieved in misses]))
    text = to_markdown(blocks)
    return f"{header.rstrip()}\n\n{text}" if header else text


def scale_shares_markdown(measurements: Sequence[Measurement], parts: dict[str, list[str]], level: float) -> str:
    """Each discriminator's share of its MDF loss: ``100 * value(part) / value(whole)`` in percent.

    ``parts`` maps a whole loss to its single-discriminator losses (which sum to it). Probes at
    ``level`` dB and every JPEG quality; median over images.
    """
    at_level = [m for m in measurements if m.distortion == JPEG or m.target_psnr == level]
    values = {(m.loss, m.image, m.condition): m.value for m in at_level}
    conditions = list(dict.fromkeys(m.condition for m in at_level))
    images = sorted({m.image for m in measurements})
    rows = []
    for whole, names in parts.items():
        for part in names:
            cells = []
            for condition in conditions:
                keys = [(image, condition) for image in images if values.get((whole, image, condition), 0) > 0]
                shares = [100 * values[(part, *key)] / values[(whole, *key)] for key in keys if (part, *key) in values]
                cells.append(f"{statistics.median(shares):.3g}" if shares else "-")
            rows.append([part, *cells])
    return to_markdown([
        Heading(2, f"Each discriminator's share of its loss at {level:g} dB"),
        Paragraph(
            "100 x (the loss with one discriminator) / (the loss with all of them), median over images; a "
            "row's shares sum to about 100 per column. A discriminator far above the others decides what the "
            "loss rewards."
        ),
        Table(["loss", *conditions], rows),
    ])


def write_text(path: str | Path, text: str) -> Path:
    def write(temporary: str) -> None:
        Path(temporary).write_text(text, encoding="utf-8")

    return write_atomically(path, write)
