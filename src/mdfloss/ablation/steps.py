"""The steps of an ablation (see :mod:`.plans`): make the seeds, train the losses, write the bench config.

Each step skips what is already there, so an interrupted ablation resumes where it stopped.
"""

from __future__ import annotations

import multiprocessing
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

from .plans import LossToTrain, Plan, bench_config

PHASE_ONE_RNG_SEED = 0


def make_synthetic_seeds(plan: Plan, out: Path) -> None:
    """Write ``OUT/seeds/<name>.png`` for each synthetic seed of the plan that is not there yet."""
    import torch

    from .._files import write_png
    from ..seeds.synthetic import synthesize
    from ..train.seed import load_seed

    for name, recipe in plan.synthetic.items():
        path = out / "seeds" / name
        if path.is_file():
            continue
        like = load_seed(recipe["like"]).pixels
        height, width = like.shape[-2:]
        kind = recipe["kind"]
        image = synthesize(kind, height, width, torch.Generator().manual_seed(PHASE_ONE_RNG_SEED),
                           like=like if kind == "pyramid-permutation" else None)
        write_png(path, image)


def write_seed_preview(plan: Plan, out: Path, cell: tuple[int, int] = (180, 320), gap: int = 8) -> Path:
    """``OUT/seeds-preview.png``: every distinct seed of the plan, left to right, each as a whole
    (centre-cropped to the cell's aspect, then Lanczos-resized to ``cell`` = (height, width) px)
    above a centre crop of ``cell`` at full resolution (where shrinking would alias, as the rings do)."""
    import torch

    from .._files import write_png
    from ..train.seed import lanczos_resize, load_seed

    seeds = list(dict.fromkeys(seed for loss in plan.losses for seed in loss.seeds))
    height, width = cell
    canvas = torch.ones(3, 2 * height + gap, len(seeds) * (width + gap) - gap)
    for index, path in enumerate(seeds):
        pixels = load_seed(path).pixels
        rows, cols = pixels.shape[-2:]
        keep_rows, keep_cols = min(rows, cols * height // width), min(cols, rows * width // height)
        top, left = (rows - keep_rows) // 2, (cols - keep_cols) // 2
        whole = lanczos_resize(pixels[:, top : top + keep_rows, left : left + keep_cols], cell)
        top, left = max(0, (rows - height) // 2), max(0, (cols - width) // 2)
        crop = pixels[:, top : top + height, left : left + width]
        x = index * (width + gap)
        canvas[:, :height, x : x + width] = whole
        canvas[:, height + gap : height + gap + crop.shape[-2], x : x + crop.shape[-1]] = crop
    return write_png(out / "seeds-preview.png", canvas)


def train_losses(plan: Plan, out: Path, jobs: int, iters: int | None = None) -> None:
    """Train ``OUT/losses/<label>.safetensors`` for each loss not trained yet, ``jobs`` at a time
    (``iters`` per scale, by default the fast preset's)."""
    pending = [loss for loss in plan.losses if not (out / "losses" / f"{loss.label}.safetensors").is_file()]
    if not pending:
        return
    with ProcessPoolExecutor(max_workers=jobs, mp_context=multiprocessing.get_context("spawn")) as pool:
        for future in [pool.submit(_train_one, loss, plan.task, out, iters) for loss in pending]:
            future.result()


def _train_one(loss: LossToTrain, task: str, out: Path, iters: int | None) -> Path:
    """One phase-1 run on one thread (fast preset, default scales), resumable from its checkpoint."""
    import shlex

    import torch

    from ..train import train_loss

    torch.set_num_threads(1)
    target = out / "losses" / f"{loss.label}.safetensors"
    words = ["mdfloss", "train", "--task", task]
    for seed in loss.seeds:
        words += ["--seed", str(seed)]
    words += ["--iters", str(iters)] if iters is not None else []
    words += ["--out", str(target), "--rng-seed", str(PHASE_ONE_RNG_SEED), "--threads", "1", "--quiet", "--resume"]
    return train_loss(list(loss.seeds), target, task, iters=iters, rng_seed=PHASE_ONE_RNG_SEED, resume=True,
                      quiet=True, command=shlex.join(words))


def write_config(plan: Plan, out: Path) -> Path:
    """``OUT/ablation.yaml``: the benchmark of the trained losses (see :func:`.plans.bench_config`)."""
    import yaml

    from .._files import write_atomically

    text = yaml.safe_dump(bench_config(plan, out), sort_keys=False)
    return write_atomically(out / "ablation.yaml", lambda tmp: Path(tmp).write_text(text, encoding="utf-8"))
