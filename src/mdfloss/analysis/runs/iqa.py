"""``mdfloss analyze iqa``: losses and metrics as quality predictors on a dataset with human scores."""

from __future__ import annotations

import argparse
import sys
import time


def run(args: argparse.Namespace) -> int:
    from dataclasses import replace

    from ...losses import build_loss
    from ...runtime import resolve_device
    from ..iqa import labelled_predictors, loss_predictor, metric_names, metric_predictor, score_dataset, write_report
    from ..iqa_data import detect_format, load

    start = time.perf_counter()

    def say(message: str) -> None:
        print(f"[{time.perf_counter() - start:6.1f} s] {message}", file=sys.stderr, flush=True)

    metrics = [name for text in args.metric for name in metric_names(text)]
    if not args.loss and not metrics:
        raise ValueError("--loss/--metric: expected at least one loss or metric to evaluate, got neither")
    if not 0 <= args.min_golden <= 1:
        raise ValueError(f"--min-golden: expected a fraction in [0, 1], got {args.min_golden}")
    layout = args.format or detect_format(args.dataset)
    if args.scores_lower_is_better and layout != "csv":
        raise ValueError(f"--scores-lower-is-better: expected a CSV dataset, got the {layout} layout")
    device = resolve_device(args.device, "--device")
    dataset = load(args.dataset, layout, higher_is_better=not args.scores_lower_is_better, min_golden=args.min_golden)
    dataset = replace(dataset, pairs=dataset.pairs[: args.max_pairs])
    mdf_options = {key: value for key, value in {"features": args.mdf_features, "scales": args.mdf_scales}.items()
                   if value is not None}
    predictors = {}
    for label, (kind, spec) in labelled_predictors(args.loss, metrics).items():
        predictors[label] = (metric_predictor(spec) if kind == "metric" else
                             loss_predictor(build_loss(spec, device=device, mdf_options=mdf_options), spec))
    say(f"{dataset.name}: {len(dataset.pairs)} pairs; predictors: {', '.join(predictors)}")

    def progress(done: int, total: int) -> None:
        if done % 250 == 0 or done == total:
            say(f"{done}/{total} pairs")

    values = score_dataset(dataset, predictors, device, progress)
    written = write_report(args.out, args.command_line, dataset, predictors, values, args.bootstrap, args.seed)
    say("wrote " + ", ".join(str(path) for path in written))
    return 0
