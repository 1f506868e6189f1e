"""Build a study's images from a bench output folder or from a ``ref/NAME.png`` folder layout.

Bench layout (see :mod:`mdfloss.bench.runner`)::

    OUT/<experiment>/reference/<dataset>/<image>-target.png
    OUT/<experiment>/<loss>/images/<dataset>/<image>.png

Folder layout::

    DIR/ref/NAME.png          the reference
    DIR/<condition>/NAME.png  one reconstruction per condition

Images larger than ``crop`` are cut to the ``crop`` x ``crop`` window where the conditions differ
most from each other, so observers look at the part that tells the losses apart. Every block
also gets a golden copy: the reference heavily blurred and noised.
"""

from __future__ import annotations

import json
import os
import random
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .._files import IMAGE_SUFFIXES, list_images, read_rgb
from .store import BlockSpec, ConditionSpec

RESERVED = ("reference", "distorted")
"""Condition labels kept for golden rows of the export."""


@dataclass
class Source:
    """Where a study's images come from (recorded in the study for the Fig. 6 plot)."""

    blocks: dict[str, dict[str, Path]]
    """block name -> {"ref": reference path, condition label: path}"""
    info: dict[str, str]


def from_folders(root: str | os.PathLike[str]) -> Source:
    """``root/ref/NAME.png`` and ``root/<condition>/NAME.png``: one block per reference image."""
    root = Path(root)
    references = list_images(root / "ref", "--results (folder layout) ref/")
    conditions = sorted(d for d in root.iterdir() if d.is_dir() and d.name != "ref")
    blocks = {}
    for reference in references:
        found = {"ref": reference}
        for folder in conditions:
            match = next((p for p in folder.iterdir() if p.stem == reference.stem
                          and p.suffix.lower() in IMAGE_SUFFIXES), None)
            if match is not None:
                found[folder.name] = match
        blocks[reference.stem] = found
    return Source(blocks, {"kind": "folders", "root": str(root.resolve())})


def from_bench(out: str | os.PathLike[str], *, task: str | None = None, experiment: str | None = None,
               dataset: str | None = None) -> Source:
    """The test images of one bench experiment and dataset (the only one, or the one chosen)."""
    out = Path(out)
    if not out.is_dir():
        raise FileNotFoundError(f"--results: expected a bench output folder (mdfloss bench --out) or a folder "
                                f"with ref/, got {out} (not a directory)")
    manifest_path = out / "manifest.json"
    manifest = json.loads(manifest_path.read_text(encoding="utf-8")) if manifest_path.is_file() else {}
    described = manifest.get("experiments", {})
    experiments = sorted(d.name for d in out.iterdir() if (d / "reference").is_dir())
    if task is not None:
        experiments = [e for e in experiments if described.get(e, {}).get("task", e.split("-")[0]) == task]
    if experiment is not None:
        experiments = [e for e in experiments if e == experiment]
    if len(experiments) != 1:
        raise ValueError(f"--results: expected exactly one experiment (choose with --task or --experiment), "
                         f"found {experiments or 'none'} in {out}")
    name = experiments[0]
    reference_root = out / name / "reference"
    datasets = sorted(str(p.parent.relative_to(reference_root)) for p in reference_root.rglob("*-target.png"))
    datasets = sorted(set(datasets))
    if dataset is not None:
        if dataset not in datasets:
            raise ValueError(f"--dataset: expected one of {datasets}, got {dataset!r}")
        datasets = [dataset]
    if not datasets:
        raise ValueError(f"--results: expected reference images <image>-target.png under {reference_root}, found none")
    chosen = datasets[0]
    runs = described.get(name, {}).get("runs", {})
    losses = {}
    for folder in sorted(d for d in (out / name).iterdir() if d.is_dir() and d.name != "reference"):
        label = next((k for k, r in runs.items() if Path(r.get("folder", "")).name == folder.name), folder.name)
        if (folder / "images" / chosen).is_dir():
            losses[label] = folder / "images" / chosen
    blocks = {}
    for target in sorted((reference_root / chosen).glob("*-target.png")):
        stem = target.name[: -len("-target.png")]
        found = {"ref": target}
        for label, folder in losses.items():
            if (folder / f"{stem}.png").is_file():
                found[label] = folder / f"{stem}.png"
        blocks[f"{chosen}/{stem}"] = found
    info = {"kind": "bench", "root": str(out.resolve()), "experiment": name, "dataset": chosen,
            "task": described.get(name, {}).get("task", name.split("-")[0])}
    if len(datasets) > 1:
        info["note"] = f"dataset {chosen} of {datasets} (choose with --dataset)"
    return Source(blocks, info)


def select(source: Source, losses: list[str] | None, images: int | None, seed: int) -> dict[str, dict[str, Path]]:
    """Keep the chosen conditions (all of them by default) and ``images`` random images that have all of them."""
    available = sorted({c for b in source.blocks.values() for c in b} - {"ref"})
    wanted = losses or available
    unknown = [c for c in wanted if c not in available]
    if unknown:
        raise ValueError(f"--losses: expected labels among {available}, got unknown {unknown}")
    clash = [c for c in wanted if c in RESERVED]
    if clash:
        raise ValueError(f"--losses: the labels {list(RESERVED)} are reserved for golden trials, got {clash}")
    if len(wanted) < 2:
        raise ValueError(f"--losses: expected at least 2 conditions to compare, got {wanted}")
    complete = {name: {c: b[c] for c in ["ref", *wanted]} for name, b in source.blocks.items()
                if all(c in b for c in wanted)}
    if not complete:
        raise ValueError(f"--results: expected images that every condition {wanted} has, found none")
    names = sorted(complete)
    if images is not None:
        if images < 1:
            raise ValueError(f"--images: expected a positive number, got {images}")
        names = sorted(random.Random(seed).sample(names, min(images, len(names))))
    return {name: complete[name] for name in names}


def _save(path: Path, array: np.ndarray) -> None:
    from PIL import Image

    from .._files import write_atomically

    write_atomically(path, lambda tmp: Image.fromarray(array).save(tmp, format="PNG"))


def crop_window(images: list[np.ndarray], size: int) -> tuple[int, int]:
    """Top-left corner of the ``size`` window where the conditions differ most (largest summed std)."""
    height, width = images[0].shape[:2]
    if height <= size and width <= size:
        return 0, 0
    spread = np.std(np.stack([i.astype(float) for i in images]), axis=0).sum(axis=-1)
    integral = np.pad(spread.cumsum(0).cumsum(1), ((1, 0), (1, 0)))
    h, w = min(size, height), min(size, width)
    sums = integral[h:, w:] - integral[:-h, w:] - integral[h:, :-w] + integral[:-h, :-w]
    top, left = np.unravel_index(int(np.argmax(sums)), sums.shape)
    return int(top), int(left)


def golden_copy(reference: np.ndarray, seed: int) -> np.ndarray:
    """The reference blurred (Gaussian, radius 4) with strong noise (sigma 40/255): obviously worse."""
    from PIL import Image, ImageFilter

    blurred = np.asarray(Image.fromarray(reference).filter(ImageFilter.GaussianBlur(4)), dtype=float)
    noise = np.random.default_rng(seed).normal(0, 40, blurred.shape)
    return np.clip(blurred + noise, 0, 255).astype(np.uint8)


def write_images(chosen: dict[str, dict[str, Path]], image_dir: Path, crop: int, seed: int) -> list[BlockSpec]:
    """Crop, copy and describe every block's images under ``image_dir`` (block folders 000, 001, ...)."""
    if crop < 16:
        raise ValueError(f"--crop: expected at least 16 px, got {crop}")
    blocks = []
    for number, (name, paths) in enumerate(chosen.items()):
        arrays = {label: read_rgb(path) for label, path in paths.items()}
        shapes = {label: a.shape for label, a in arrays.items()}
        if len(set(shapes.values())) > 1:
            raise ValueError(f"image {name}: expected every condition to have the reference's size, got {shapes}")
        tests = [a for label, a in arrays.items() if label != "ref"]
        top, left = crop_window(tests, crop)
        arrays = {label: a[top:top + crop, left:left + crop] for label, a in arrays.items()}
        arrays["golden"] = golden_copy(arrays["ref"], seed + number)
        folder = f"{number:03d}"
        names = random.Random(seed + number).sample(range(100), len(arrays))  # URLs must not reveal the loss
        specs = []
        for index, (label, array) in zip(names, arrays.items()):
            relative = f"{folder}/{index:02d}.png"
            _save(image_dir / relative, array)
            role = {"ref": "reference", "golden": "golden"}.get(label, "test")
            specs.append(ConditionSpec({"ref": "reference", "golden": "distorted"}.get(label, label), role,
                                       relative, array.shape[1], array.shape[0]))
        blocks.append(BlockSpec(name, specs))
    return blocks
