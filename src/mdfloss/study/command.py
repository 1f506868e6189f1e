"""``mdfloss study``: build, run, export and scale a pairwise-comparison study (paper, section 4.3).

Examples::

    mdfloss study create --results runs/denoise --task denoise --images 20 --out study.sqlite
    mdfloss study serve study.sqlite --port 8000          # observers open http://HOST:8000/
    mdfloss study export study.sqlite --out answers.csv
    mdfloss study scale study.sqlite --out scaled/        # JND scores, intervals, Fig. 5 (and 6)
"""

from __future__ import annotations

import argparse
import csv
import io
import shutil
import sqlite3
import sys
import tempfile
from collections import defaultdict
from pathlib import Path
from typing import Any

from .._files import existing_file, read_table, write_atomically, write_csv
from .bounds import SESSIONS_PER_MINUTE

FLAG_DIST_L = 1.5
"""dist_L above which an observer is flagged for a look (pwcmp: 'about 1-1.5', no objective threshold)."""
FEW_OBSERVERS = 10
"""Below this many observers in a group, its bootstrap interval is not meaningful (docs/study.md:
65-85 % coverage of the 95 % interval at 5 observers)."""
REQUIRED_COLUMNS = ("observer", "block", "condition_A", "condition_B", "is_A_selected")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="study_command", metavar="SUBCOMMAND", required=True)
    create = sub.add_parser("create", help="build a study from a bench output folder or ref/ + <condition>/ folders")
    create.add_argument("--results", required=True,
                        help="a bench output folder (mdfloss bench --out) or a folder with ref/NAME.png and <condition>/NAME.png")
    create.add_argument("--task", help="the bench experiment of this task (sisr, denoise, jpeg)")
    create.add_argument("--experiment", help="the bench experiment by name, e.g. denoise-dncnn")
    create.add_argument("--dataset", help="the bench test dataset, e.g. val/sigma25 (default: the first)")
    create.add_argument("--losses", help="comma-separated conditions to compare (default: all)")
    create.add_argument("--images", type=int, help="use N randomly chosen images (default: all)")
    create.add_argument("--crop", type=int, default=256, help="larger images are cut to CROP x CROP px (default 256)")
    create.add_argument("--design", choices=("full", "asap"), default="full",
                        help="full: every pair, balanced across observers (the paper); asap: active sampling")
    create.add_argument("--trials", type=int, default=20, help="test comparisons per session (default 20)")
    create.add_argument("--golden-rate", type=float, default=0.1,
                        help="fraction of golden trials (reference vs a heavily distorted copy; default 0.1)")
    create.add_argument("--name", help="study name shown on the admin page (default: the output file's stem)")
    create.add_argument("--admin-token", help="admin page token (default: random, printed)")
    create.add_argument("--seed", type=int, default=0, help="random seed for the image choice and crops")
    create.add_argument("--out", required=True, help="the study file to write, e.g. study.sqlite")

    serve = sub.add_parser("serve", help="run the study's web server")
    serve.add_argument("study", help="a study file made by `mdfloss study create`")
    serve.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1; 0.0.0.0 for a lab network)")
    serve.add_argument("--port", type=int, default=8000, help="port (default 8000)")
    serve.add_argument("--sessions-per-minute", type=int, default=SESSIONS_PER_MINUTE,
                       help=f"new sessions one client address may start per minute (default {SESSIONS_PER_MINUTE}; 0: no limit)")
    serve.add_argument("--trusted-proxy",
                       help="address of a reverse proxy in front (e.g. 127.0.0.1): its X-Forwarded-For and "
                            "X-Forwarded-Proto are believed (see docs/study.md)")

    export = sub.add_parser("export", help="write the answers as CSV, one row per answer")
    export.add_argument("study", help="a study file")
    export.add_argument("--out", help="CSV file to write (default: standard output)")

    scale = sub.add_parser("scale", help="JND scores with 95%% intervals, significance, observer screening, plots")
    scale.add_argument("answers", help="a study file, or a CSV with columns " + ", ".join(REQUIRED_COLUMNS))
    scale.add_argument("--out", required=True, help="output folder")
    scale.add_argument("--bootstrap", type=int, default=1000, help="bootstrap resamples of observers (default 1000)")
    scale.add_argument("--prior", choices=("gaussian", "none"), default="gaussian", help="pwcmp's prior for unanimous pairs (default gaussian)")
    scale.add_argument("--min-golden", type=float, default=1.0,
                       help="fraction of golden trials an observer must pass to be kept (default 1.0: any mistake excludes, as in the paper)")
    scale.add_argument("--bench-results", help="a bench results.csv for the PSNR-vs-JND plot (default: the study's bench folder)")
    scale.add_argument("--seed", type=int, default=0, help="bootstrap seed")


def run(args: argparse.Namespace) -> int:
    handler = {"create": _create, "serve": _serve, "export": _export, "scale": _scale}[args.study_command]
    try:
        return handler(args)
    except sqlite3.Error as error:  # a damaged or locked study file: a failure, not a usage mistake
        raise RuntimeError(f"study file: {error}") from None


def _create(args: argparse.Namespace) -> int:
    from .build import from_bench, from_folders, select, write_images
    from .design import LONG_SESSION_MINUTES, MAX_SESSION_MINUTES, SECONDS_PER_TRIAL, session_minutes, session_trials
    from .store import create_study

    out = Path(args.out)
    if out.exists():
        raise FileExistsError(f"--out: expected a new study file, got {out} (it exists)")
    if args.trials < 1:
        raise ValueError(f"--trials: expected a positive number, got {args.trials}")
    if not 0 <= args.golden_rate < 0.5:
        raise ValueError(f"--golden-rate: expected a fraction in [0, 0.5), got {args.golden_rate}")
    minutes = session_minutes(args.trials, args.golden_rate)
    length = (f"{session_trials(args.trials, args.golden_rate)} trials with the golden ones, about {minutes} min "
              f"at {SECONDS_PER_TRIAL} s each")
    if minutes > MAX_SESSION_MINUTES:
        raise ValueError(f"--trials: expected sessions of at most {MAX_SESSION_MINUTES} minutes, got {args.trials} "
                         f"comparisons ({length}); give each observer fewer, the full design spreads the pairs")
    image_dir = out.with_name(f"{out.stem}-images")
    if image_dir.exists():
        raise FileExistsError(f"--out: the image folder {image_dir} exists; remove it or pick another --out")
    results = Path(args.results)
    if (results / "ref").is_dir():
        source = from_folders(results)
    else:
        source = from_bench(results, task=args.task, experiment=args.experiment, dataset=args.dataset)
    losses = [x.strip() for x in args.losses.split(",") if x.strip()] if args.losses else None
    chosen = select(source, losses, args.images, args.seed)
    if args.images is not None and args.images > len(chosen):
        print(f"note: --images {args.images} asked for more images than the {len(chosen)} that every condition has; "
              f"using all {len(chosen)}")
    out.parent.mkdir(parents=True, exist_ok=True)
    building = Path(tempfile.mkdtemp(prefix=f".{image_dir.name}.", dir=out.parent))
    try:
        blocks = write_images(chosen, building, args.crop, args.seed)
        building.rename(image_dir)
    except BaseException:
        shutil.rmtree(building, ignore_errors=True)
        raise
    conditions = sorted({c.label for b in blocks for c in b.conditions if c.role == "test"})
    try:
        create_study(out, name=args.name or out.stem, design=args.design, trials_per_session=args.trials,
                     golden_rate=args.golden_rate, seed=args.seed, image_dir=image_dir.name, blocks=blocks,
                     config={"source": source.info, "conditions": conditions, "crop": args.crop},
                     admin_token=args.admin_token)
    except BaseException:
        shutil.rmtree(image_dir, ignore_errors=True)
        raise
    from .store import Store

    store = Store(out)
    pairs = len(blocks) * len(conditions) * (len(conditions) - 1) // 2
    print(f"wrote {out} and {image_dir}/: {len(blocks)} images x {len(conditions)} conditions "
          f"({', '.join(conditions)}), {pairs} pairs, design {args.design}, {args.trials} comparisons per session "
          f"({length})")
    if minutes > LONG_SESSION_MINUTES:
        print(f"note: sessions of about {minutes} minutes are long; observers tire (fewer --trials per session "
              "and more observers give the same answers)")
    if "note" in source.info:
        print(f"note: {source.info['note']}")
    print(f"admin token: {store.study['admin_token']}")
    return 0


def _serve(args: argparse.Namespace) -> int:
    from .serving import StudyServer
    from .store import Store

    if args.sessions_per_minute < 0:
        raise ValueError(f"--sessions-per-minute: expected 0 (no limit) or more, got {args.sessions_per_minute}")
    store = Store(args.study)
    server = StudyServer(store, args.host, args.port, sessions_per_minute=args.sessions_per_minute,
                         trusted_proxy=args.trusted_proxy)
    print(f"study {store.study['name']} ({store.study['design']} design) at {server.url}/")
    print(f"admin page: {server.url}/admin?token={store.study['admin_token']}")
    print("stop with Ctrl-C", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.stop()
    return 0


def _export(args: argparse.Namespace) -> int:
    from .server import export_csv
    from .store import Store

    text = export_csv(Store(args.study))
    if args.out is None:
        sys.stdout.write(text)
    else:
        write_atomically(args.out, lambda tmp: Path(tmp).write_text(text, encoding="utf-8"))
        print(f"wrote {args.out} ({text.count(chr(10)) - 1} answers)", file=sys.stderr)
    return 0


def read_answers_csv(path: Path) -> list[dict[str, str]]:
    """Rows of an answers CSV; ValueError naming the missing columns or the bad line."""
    rows = read_table(path, REQUIRED_COLUMNS, "answers")
    for line, row in enumerate(rows, start=2):
        if row["is_A_selected"] not in ("0", "1"):
            raise ValueError(f"answers: {path} line {line}: is_A_selected: expected 0 or 1, got {row['is_A_selected']!r}")
        if row.get("golden", "0") not in ("0", "1", ""):
            raise ValueError(f"answers: {path} line {line}: golden: expected 0 or 1, got {row['golden']!r}")
    return rows


def _scale(args: argparse.Namespace) -> int:
    import numpy as np

    from .plots import jnd_plot, psnr_jnd_plot
    from .scaling import scale_answers, screened_answers

    source = existing_file(args.answers, "answers", "a study file or an answers CSV")
    if args.bootstrap < 0:
        raise ValueError(f"--bootstrap: expected 0 or more resamples, got {args.bootstrap}")
    if not 0 <= args.min_golden <= 1:
        raise ValueError(f"--min-golden: expected a fraction in [0, 1], got {args.min_golden}")
    config: dict[str, Any] = {}
    if source.read_bytes()[:16] == b"SQLite format 3\x00":
        from .server import export_csv
        from .store import Store

        store = Store(source)
        config = store.config
        rows = list(csv.DictReader(io.StringIO(export_csv(store))))
    else:
        rows = read_answers_csv(source)
    answers, golden, excluded = screened_answers(rows, args.min_golden)
    if not answers:
        raise ValueError(f"answers: expected answered test trials in {source}, found none")
    kept = [a for a in answers if a.observer not in excluded]
    psnr = _bench_psnr(args.bench_results, config, sorted({a.block for a in kept}),
                       sorted({c for a in kept for c in (a.condition_a, a.condition_b)}))
    result = scale_answers(answers, excluded=excluded, samples=args.bootstrap, prior=args.prior, seed=args.seed)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)

    scores, pairs = [], []
    for group in result.groups:
        if group.boot is None:
            scores.append({"group": group.name, "condition": "", "jnd": "", "ci_low": "", "ci_high": "",
                           "answers": group.answers, "note": group.error})
            continue
        b = group.boot
        notes = [f"{b.redrawn} disconnected resamples drawn again"] if b.redrawn else []
        if group.observers < FEW_OBSERVERS:
            notes.append(_few_observers(group.observers))
        for k, condition in enumerate(group.conditions):
            scores.append({"group": group.name, "condition": condition, "jnd": f"{b.jnd[k]:.4f}",
                           "ci_low": f"{b.low[k]:.4f}", "ci_high": f"{b.high[k]:.4f}", "answers": group.answers,
                           "note": "; ".join(notes)})
        for i, first in enumerate(group.conditions):
            for j in range(i + 1, len(group.conditions)):
                p = group.p_values[i, j] if group.p_values is not None else float("nan")
                second = group.conditions[j]
                wins, losses = int(group.counts[i, j]), int(group.counts[j, i])
                pairs.append({"group": group.name, "condition_i": first, "condition_j": second,
                              "jnd_difference": f"{b.jnd[i] - b.jnd[j]:.4f}", "p_value": f"{p:.4g}",
                              "significant": int(bool(p < 0.05)), "comparisons": wins + losses,
                              "share_i": f"{wins / (wins + losses):.4f}" if wins + losses else ""})
    write_csv(out / "jnd.csv", ["group", "condition", "jnd", "ci_low", "ci_high", "answers", "note"], scores)
    write_csv(out / "significance.csv", ["group", "condition_i", "condition_j", "jnd_difference", "p_value", "significant",
                                         "comparisons", "share_i"], pairs)
    counts: dict[str, int] = defaultdict(int)
    for a in answers:
        counts[a.observer] += 1
    loo = dict(zip(result.observers, zip(result.loo_L, result.dist_L)))
    observers = []
    for observer in sorted(set(counts) | set(golden)):
        L, dist = loo.get(observer, (float("nan"), float("nan")))
        passed, total = golden.get(observer, (0, 0))
        observers.append({"observer": observer, "answers": counts[observer], "golden_passed": passed,
                          "golden_total": total, "excluded": excluded.get(observer, ""),
                          "loo_L": f"{L:.4f}", "dist_L": f"{dist:.3f}", "flagged": int(bool(dist > FLAG_DIST_L))})
    write_csv(out / "observers.csv", ["observer", "answers", "golden_passed", "golden_total", "excluded", "loo_L",
                                "dist_L", "flagged"], observers)

    pooled = result.groups[-1]
    images = result.groups[:-1]
    written = ["jnd.csv", "significance.csv", "observers.csv"]
    if pooled.boot is not None:
        jnd_plot(pooled, images, out / "fig5-jnd.png",
                 title=f"{len(images)} images, {len(result.observers)} observers, {pooled.answers} comparisons")
        written.append("fig5-jnd.png")
        if psnr:
            psnr_jnd_plot(pooled, psnr, out / "fig6-psnr-jnd.png")
            written.append("fig6-psnr-jnd.png")
    _print_summary(result, excluded, observers, np)
    print(f"wrote {', '.join(str(out / w) for w in written)}")
    return 0


def _bench_psnr(given: str | None, config: dict[str, Any], blocks: list[str], conditions: list[str]) -> dict[str, float]:
    """Mean PSNR per condition for Fig. 6, from ``--bench-results`` (refused when it does not match)
    or from the bench folder the study was made from (a note instead of the plot when it does not)."""
    from .bench_psnr import mean_psnr

    source = config.get("source", {})
    if given is not None:
        return mean_psnr(existing_file(given, "--bench-results", "a bench results.csv"), blocks, conditions,
                         source.get("task"))
    path = Path(source.get("root", "")) / "results.csv"
    if source.get("kind") != "bench" or not path.is_file():
        return {}
    try:
        return mean_psnr(path, blocks, conditions, source.get("task"), argument="the study's bench results")
    except ValueError as error:
        print(f"note: no Fig. 6: {error}")
        return {}


def _few_observers(count: int) -> str:
    return (f"interval not meaningful: {count} observer{'s' if count != 1 else ''} answered here, "
            f"about {FEW_OBSERVERS} or more are needed")


def _print_summary(result: Any, excluded: dict[str, str], observers: list[dict[str, Any]], np: Any) -> None:
    pooled = result.groups[-1]
    kept = len(result.observers)
    print(f"{kept} observers scaled, {len(excluded)} excluded by golden trials; "
          f"{sum(o['flagged'] for o in observers)} flagged by leave-one-out (dist_L > {FLAG_DIST_L})")
    broken = [g for g in result.groups if g.error]
    for group in broken:
        print(f"not scaled: {group.name}: {group.error}")
    if pooled.boot is None:
        return
    few = [g for g in result.groups[:-1] if g.boot is not None and g.observers < FEW_OBSERVERS]
    if pooled.observers < FEW_OBSERVERS:
        print(f"note: the 95% intervals are not meaningful with {pooled.observers} observers "
              f"(about {FEW_OBSERVERS} or more are needed); read the JNDs as a pilot's")
    elif few:
        print(f"note: {len(few)} of {len(result.groups) - 1} images have fewer than {FEW_OBSERVERS} observers: "
              "their per-image intervals are not meaningful (see the note column of jnd.csv)")
    print(f"{'condition':<16} {'JND':>7}  95% interval")
    for k in np.argsort(-pooled.boot.jnd):
        print(f"{pooled.conditions[k]:<16} {pooled.boot.jnd[k]:7.2f}  [{pooled.boot.low[k]:.2f}, {pooled.boot.high[k]:.2f}]")
