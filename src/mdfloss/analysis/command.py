"""``mdfloss analyze``: what does a loss penalise?

``mdfloss analyze sensitivity --loss NAME_OR_FILE ... --images DIR --out DIR`` distorts every
image with noise, blur, a sinusoidal grating, a contrast reduction and a brightness shift at
matched PSNR levels, and with JPEG at fixed qualities, evaluates every loss (L2 and SSIM always
included), and writes ``sensitivity.csv``, ``sensitivity.png`` and ``ratios.md`` into ``--out``.
With ``--per-scale`` each discriminator of every MDF loss is also evaluated alone, and
``ratios.md`` gets a table of each one's share of its loss.

``mdfloss analyze iqa --dataset DIR_OR_FILE --loss NAME_OR_FILE ... --metric psnr,ssim --out DIR``
uses every loss and metric as a full-reference quality predictor on a dataset with human scores
(TID2013, KADID-10k, a CSV, or a ``mdfloss study`` file) and writes SROCC, KROCC and PLCC with
bootstrap intervals, overall and per distortion type (:mod:`.iqa`).

``mdfloss analyze manifold`` and ``mdfloss analyze gradients``: see their ``--help``. This
module parses; each analysis runs in its module of :mod:`mdfloss.analysis.runs`.
"""

from __future__ import annotations

import argparse
import importlib
import math
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

from .iqa import METRICS as IQA_METRICS
from .iqa_data import FORMATS
from .runs.gradients import SHARES_CSV, SHARES_MD
from .runs.manifold import SEPARABILITY_CSV, SEPARABILITY_MD
from .runs.sensitivity import CSV_NAME, FIGURE_NAME, RATIOS_NAME
from .sensitivity import DEFAULT_JPEG_QUALITIES, DEFAULT_LEVELS, FITS, MIN_SIDE

Number = TypeVar("Number", int, float)


def _distinct_numbers(text: str, convert: Callable[[str], Number], example: str,
                      valid: Callable[[Number], bool], expected: str) -> list[Number]:
    """Comma-separated numbers, sorted; an argparse error unless they are distinct and ``valid``."""
    try:
        values = [convert(part) for part in text.split(",")]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated {example}, got {text!r}") from None
    if not all(valid(v) for v in values) or len(set(values)) != len(values):
        raise argparse.ArgumentTypeError(f"expected distinct {expected}, got {text!r}")
    return sorted(values)


def psnr_levels(text: str) -> list[float]:
    """``"20,25,30"`` -> [20.0, 25.0, 30.0]: distinct PSNR levels in (0, 100] dB."""
    return _distinct_numbers(text, float, "PSNR levels in dB such as 20,30,40",
                             lambda v: math.isfinite(v) and 0 < v <= 100, "PSNR levels in (0, 100] dB")


def jpeg_qualities(text: str) -> list[int]:
    """``"10,50,90"`` -> [10, 50, 90]: JPEG qualities in [1, 95]; ``""`` -> no JPEG probe."""
    if not text.strip():
        return []
    return _distinct_numbers(text, int, "JPEG qualities such as 10,50,90", lambda q: 1 <= q <= 95,
                             "JPEG qualities in [1, 95]")


def _int_at_least(minimum: int):
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            value = minimum - 1
        if value < minimum:
            raise argparse.ArgumentTypeError(f"expected an integer >= {minimum}, got {text!r}")
        return value

    return parse


def _add_device_and_threads(parser: argparse.ArgumentParser, device: bool = True) -> None:
    if device:
        parser.add_argument("--device", default="cpu", help="auto, cpu, cuda or cuda:K: the losses' device (default: cpu)")
    parser.add_argument("--threads", type=_int_at_least(1), default=None, metavar="N",
                        help="CPU threads for torch (default: torch's; 1 is fastest on a busy shared machine)")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    analyses = parser.add_subparsers(dest="analysis", metavar="ANALYSIS", required=True)
    sub = analyses.add_parser(
        "sensitivity", help="loss values for noise, blur, grating, contrast, brightness and JPEG at matched PSNR",
        description="Distort every image with Gaussian noise, Gaussian blur, a sinusoidal grating, a contrast "
                    "reduction and a brightness shift at matched PSNR levels, and with JPEG at fixed qualities; "
                    f"evaluate every loss (l2 and ssim always included); write {CSV_NAME} (every value), "
                    f"{FIGURE_NAME} (loss vs PSNR, one panel per loss) and {RATIOS_NAME} (loss per unit of MSE "
                    "relative to a brightness shift).",
    )
    sub.set_defaults(command_name="analyze sensitivity")
    sub.add_argument("--loss", action="append", default=[], metavar="NAME_OR_FILE",
                     help="a loss: a pretrained MDF name, a .safetensors file, an authors' Ds_*.pth, or a "
                          "bench spec (mdf:..., l1, msssim...); repeat for several. l2 and ssim are always added")
    sub.add_argument("--images", type=Path, required=True, metavar="DIR", help="folder of reference images")
    sub.add_argument("--out", type=Path, required=True, metavar="DIR",
                     help=f"folder for {CSV_NAME}, {FIGURE_NAME} and {RATIOS_NAME}")
    sub.add_argument("--levels", type=psnr_levels, default=list(DEFAULT_LEVELS), metavar="DB,DB,...",
                     help="target PSNR levels (default: 20,25,30,35,40)")
    sub.add_argument("--ratio-level", type=float, default=30.0, metavar="DB",
                     help="level of the per-unit-MSE ratio table, one of --levels (default: 30)")
    sub.add_argument("--jpeg-qualities", type=jpeg_qualities, default=list(DEFAULT_JPEG_QUALITIES), metavar="Q,Q,...",
                     help="JPEG qualities (default: 10,30,50,70,90; '' for none)")
    sub.add_argument("--size", type=_int_at_least(MIN_SIDE), default=256, metavar="PX",
                     help="square side the images are brought to (default: 256)")
    sub.add_argument("--fit", choices=FITS, default="resize",
                     help="resize: downscale the shorter side to --size, then centre-crop (default); "
                          "crop: centre-crop at native resolution")
    sub.add_argument("--max-images", type=_int_at_least(1), default=None, metavar="N",
                     help="use only the first N images (sorted by name)")
    sub.add_argument("--seed", type=int, default=0, help="seed of the noise realisation (default: 0)")
    sub.add_argument("--mdf-features", choices=("paper", "official"), default=None,
                     help="feature set of every MDF loss (default: the library's, 'paper')")
    sub.add_argument("--mdf-scales", type=_int_at_least(1), default=None, metavar="N",
                     help="use the coarsest N discriminators of every MDF loss "
                          "(default: all; the authors' code uses 8)")
    sub.add_argument("--per-scale", action="store_true",
                     help="also evaluate each discriminator of every MDF loss alone, and tabulate its share")
    _add_device_and_threads(sub)

    manifold = analyses.add_parser(
        "manifold", help="what each discriminator separates: original, JPEG, blurred and pyramid-permuted crops",
        description="Describe crops of every photo in four versions (original, JPEG q7-10, x4 blurred, "
                    "pyramid-permuted) by the channel means of each MDF loss's feature maps; write the "
                    f"cross-validated accuracy of a linear classifier per loss and scale ({SEPARABILITY_CSV}, "
                    f"{SEPARABILITY_MD}) and 2-D/3-D t-SNE plots per loss (tsne-LOSS-2d.png, -3d.png).",
    )
    manifold.set_defaults(command_name="analyze manifold")
    manifold.add_argument("--loss", action="append", default=[], metavar="NAME_OR_FILE",
                          help="an MDF loss: a pretrained name, a .safetensors file or an authors' Ds_*.pth (repeat)")
    manifold.add_argument("--discriminator", action="append", default=[], type=Path, metavar="FILE",
                          help="a GAN run's discriminator.safetensors (mdfloss bench GAN runs; repeat)")
    manifold.add_argument("--images", type=Path, action="append", required=True, metavar="DIR",
                          help="a folder of photos (repeatable)")
    manifold.add_argument("--crop", type=_int_at_least(32), default=128, metavar="PX", help="crop side (default 128)")
    manifold.add_argument("--crops-per-image", type=_int_at_least(1), default=4, metavar="N",
                          help="non-overlapping crops per photo (default 4)")
    manifold.add_argument("--seed", type=int, default=0, help="seed of the JPEG qualities, permutations, t-SNE")
    manifold.add_argument("--out", type=Path, required=True, metavar="DIR", help="output folder")
    _add_device_and_threads(manifold)

    shares = analyses.add_parser(
        "gradients", help="which discriminators drive a bench run's training: per-scale loss and gradient shares",
        description="For MDF runs of a benchmark folder: each discriminator's share of the loss and of the "
                    "gradient on the validation images, for the network at the start (the identity) and as "
                    f"selected after training; writes {SHARES_CSV} and {SHARES_MD}.",
    )
    shares.set_defaults(command_name="analyze gradients")
    shares.add_argument("--bench-dir", type=Path, required=True, metavar="DIR", help="a benchmark output folder")
    shares.add_argument("--experiment", required=True, help="an experiment of it, e.g. denoise-dncnn")
    shares.add_argument("--loss", action="append", required=True, metavar="LABEL",
                        help="an MDF run of the experiment, e.g. mdf or mdf-official; repeat for several")
    shares.add_argument("--out", type=Path, required=True, metavar="DIR", help=f"folder for {SHARES_CSV} and {SHARES_MD}")
    _add_device_and_threads(shares, device=False)


    iqa = analyses.add_parser(
        "iqa", help="losses and metrics as quality predictors: SROCC, KROCC, PLCC against human scores",
        description="Evaluate every loss and metric on every (distorted, reference) pair of a dataset with human "
                    "scores and correlate them with the scores (SROCC, KROCC, and PLCC after the 4-parameter "
                    "logistic fit), each with a bootstrap 95% interval, overall and per distortion type. Losses "
                    "and MDSI are lower-is-better: they are negated before the statistics, so a positive SROCC "
                    "always means agreement with people. Writes iqa-values.csv, iqa-correlations.csv, iqa.md and "
                    "a scatter plot per predictor.",
    )
    iqa.set_defaults(command_name="analyze iqa")
    iqa.add_argument("--dataset", type=Path, required=True, metavar="PATH",
                     help="a TID2013 folder (mos_with_names.txt, reference_images/, distorted_images/), a KADID-10k "
                          "folder (dmos.csv, images/), a CSV file (reference, distorted, score[, distortion]; paths "
                          "relative to it) or a study file of `mdfloss study`")
    iqa.add_argument("--format", choices=FORMATS, default=None, help="the dataset's layout (default: detected)")
    iqa.add_argument("--loss", action="append", default=[], metavar="NAME_OR_FILE",
                     help="a loss as a predictor: a pretrained MDF name, a .safetensors file, an authors' Ds_*.pth, "
                          "or a bench spec (l2, msssim, mdf:denoise...); repeat for several")
    iqa.add_argument("--metric", action="append", default=[], metavar="NAME,NAME",
                     help=f"metrics as predictors, comma-separated, from {', '.join(IQA_METRICS)}")
    iqa.add_argument("--out", type=Path, required=True, metavar="DIR", help="folder for the outputs")
    iqa.add_argument("--bootstrap", type=_int_at_least(0), default=1000, metavar="N",
                     help="bootstrap resamples of the pairs for the 95%% intervals (default: 1000; 0: none)")
    iqa.add_argument("--seed", type=int, default=0, help="seed of the bootstrap (default: 0)")
    iqa.add_argument("--scores-lower-is-better", action="store_true",
                     help="for --format csv: a lower score means better quality (a DMOS)")
    iqa.add_argument("--min-golden", type=float, default=1.0, metavar="FRACTION",
                     help="for a study: fraction of golden trials an observer must pass (default: 1.0, as "
                          "`mdfloss study scale`)")
    iqa.add_argument("--max-pairs", type=_int_at_least(1), default=None, metavar="N",
                     help="use only the first N pairs of the dataset (a quick try)")
    iqa.add_argument("--mdf-features", choices=("paper", "official"), default=None,
                     help="feature set of every MDF loss (default: the library's, 'paper')")
    iqa.add_argument("--mdf-scales", type=_int_at_least(1), default=None, metavar="N",
                     help="use the coarsest N discriminators of every MDF loss (default: all)")
    _add_device_and_threads(iqa)


def run(args: argparse.Namespace) -> int:
    """Run the chosen analysis (its module in :mod:`mdfloss.analysis.runs`)."""
    module = importlib.import_module(f"mdfloss.analysis.runs.{args.analysis}")
    return module.run(args)
