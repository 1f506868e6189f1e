"""``mdfloss ablate NAME``: one command per ablation of the paper (docs/ablations.md).

    mdfloss ablate seeds --natural a.png --natural b.png DATA... --out OUT        # Fig. 7
    mdfloss ablate seed-count --seeds PHOTOS --counts 1,2,4,8 DATA... --out OUT  # appendix Fig. 13
    mdfloss ablate scales DATA... --out OUT                                      # appendix Table 2
    mdfloss ablate task DATA... --out OUT                                        # Fig. 8, as a 3x3 matrix

DATA is ``--train-dir D --val-dir D --test-dir D`` as for ``mdfloss bench``. ``seeds`` and
``seed-count`` first make their seeds and train one loss per variant (phase 1, fast preset,
``--jobs`` at a time), then benchmark them on the cpu protocol; ``scales`` and ``task`` run the
bench presets ``ablation-scales`` and ``ablation-task``. Rerun the same command to resume;
``--reuse DIR`` takes over runs that a benchmark folder already finished with the same settings
(the task matrix's diagonal is the cpu preset's ``mdf`` column).
"""

from __future__ import annotations

import argparse
from pathlib import Path

from ..bench.degradations import TASKS

ABLATIONS = ("seeds", "seed-count", "scales", "task")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="ablation", metavar="ABLATION", required=True)
    for name, text in (("seeds", "natural against synthetic seed images (paper Fig. 7)"),
                       ("seed-count", "1, 2, 4, 8 seed images for one loss (paper appendix Fig. 13)"),
                       ("scales", "the coarsest or finest n discriminators only (paper appendix Table 2)"),
                       ("task", "each task's network with each task's loss (paper Fig. 8)")):
        ablation = sub.add_parser(name, help=text, description=text)
        ablation.set_defaults(command_name=f"ablate {name}")
        ablation.add_argument("--train-dir", required=True, help="training images of the restoration networks")
        ablation.add_argument("--val-dir", required=True, help="validation images (model selection)")
        ablation.add_argument("--test-dir", required=True, action="append", help="test images (repeatable)")
        ablation.add_argument("--out", type=Path, required=True, help="the ablation's folder")
        ablation.add_argument("--jobs", type=int, default=2, help="runs at once, one core each (default 2)")
        ablation.add_argument("--set", dest="assignments", action="append", default=[], metavar="KEY=VALUE",
                              help="override a bench config key, as mdfloss bench --set (repeatable)")
        ablation.add_argument("--no-progress", action="store_true", help="no progress bars (as mdfloss bench)")
        ablation.add_argument("--reuse", type=Path, metavar="DIR",
                              help="take over runs finished in benchmark folder DIR with the same settings, "
                                   "as mdfloss bench --reuse (e.g. the cpu preset's mdf runs)")
        if name in ("seeds", "seed-count"):
            ablation.add_argument("--task", choices=TASKS, default="sisr",
                                  help="the task of the losses and of the benchmark (default sisr)")
            ablation.add_argument("--loss-iters", type=int, help="phase-1 iterations per scale (default: the "
                                                                 "fast preset's)")
        if name == "seeds":
            ablation.add_argument("--natural", type=Path, action="append", required=True, metavar="PHOTO",
                                  help="a natural seed photo (repeat; the paper used 2); the synthetic seeds "
                                       "take the first one's size, and permute its pyramid")
        if name == "seed-count":
            ablation.add_argument("--seeds", type=Path, required=True, metavar="DIR",
                                  help="a folder of photos; a loss with n seeds uses the first n by name")
            ablation.add_argument("--counts", default="1,2,4,8", help="numbers of seeds (default 1,2,4,8)")


def parse_counts(text: str) -> list[int]:
    """``"1,2,4,8"`` -> [1, 2, 4, 8]."""
    try:
        return [int(n) for n in text.split(",") if n.strip()]
    except ValueError:
        raise ValueError(f"--counts: expected numbers of seeds such as 1,2,4,8, got {text!r}") from None


def run(args: argparse.Namespace) -> int:
    from ..cli import main

    data = ["--train-dir", args.train_dir, "--val-dir", args.val_dir]
    for folder in args.test_dir:
        data += ["--test-dir", folder]
    bench = ["bench", *data, "--jobs", str(args.jobs), "--resume", "--out", str(args.out)]
    for assignment in args.assignments:
        bench += ["--set", assignment]
    if args.reuse is not None:
        bench += ["--reuse", str(args.reuse)]
    if args.no_progress:
        bench.append("--no-progress")
    if args.ablation in ("scales", "task"):
        return main([*bench, "--preset", f"ablation-{args.ablation}"])
    from .._files import list_images
    from .plans import seed_count_plan, seeds_plan
    from .steps import (
        make_synthetic_seeds,
        train_losses,
        write_config,
        write_seed_preview,
    )

    if args.ablation == "seeds":
        plan = seeds_plan(list(args.natural), args.task, args.out)
    else:
        plan = seed_count_plan(list_images(args.seeds, "--seeds"), parse_counts(args.counts), args.task)
    make_synthetic_seeds(plan, args.out)
    write_seed_preview(plan, args.out)
    train_losses(plan, args.out, args.jobs, iters=args.loss_iters)
    return main([*bench, "--config", str(write_config(plan, args.out))])
