"""Helpers of the study tests: tiny generated images in the bench and folder layouts, and
simulated observers."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from PIL import Image

LOSSES = ("l1", "l2", "mdf")
QUALITY = {"l1": 0.0, "l2": -1.0, "mdf": 1.5}
"""True JND of each loss in the fake studies (simulated observers answer by it)."""


def _photo(rng: np.random.Generator, size: int) -> np.ndarray:
    y, x = np.mgrid[0:size, 0:size] / size
    base = np.stack([np.sin(6 * x + k) * np.cos(5 * y - k) for k in range(3)], -1) * 80 + 128
    return np.clip(base + rng.normal(0, 10, base.shape), 0, 255).astype(np.uint8)


def fake_bench(out: Path, images: int = 3, size: int = 48, dataset: str = "val/sigma25") -> Path:
    """A bench output folder with the layout of bench/runner.py: one experiment, three losses."""
    rng = np.random.default_rng(0)
    experiment = "denoise-dncnn"
    rows = ["task,model,loss,dataset,image,psnr,psnr_y,ssim,ms_ssim,lpips"]
    for n in range(images):
        stem = f"img{n}"
        clean = _photo(rng, size)
        target = out / experiment / "reference" / dataset / f"{stem}-target.png"
        target.parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(clean).save(target)
        for k, loss in enumerate(LOSSES):
            noisy = np.clip(clean + rng.normal(0, 6 + 8 * k, clean.shape), 0, 255).astype(np.uint8)
            path = out / experiment / loss / "images" / dataset / f"{stem}.png"
            path.parent.mkdir(parents=True, exist_ok=True)
            Image.fromarray(noisy).save(path)
            rows.append(f"denoise,dncnn,{loss},{dataset},{stem}.png,{30 - 3 * k + n * 0.1},0,0,0,")
    (out / "results.csv").write_text("\n".join(rows) + "\n")
    manifest = {"experiments": {experiment: {"task": "denoise", "losses": list(LOSSES),
                                             "runs": {loss: {"folder": f"{experiment}/{loss}"} for loss in LOSSES}}}}
    (out / "manifest.json").write_text(json.dumps(manifest))
    return out


def fake_folders(root: Path, images: int = 2, size: int = 40) -> Path:
    """The ``ref/NAME.png`` + ``<condition>/NAME.png`` layout."""
    rng = np.random.default_rng(1)
    for n in range(images):
        clean = _photo(rng, size)
        (root / "ref").mkdir(parents=True, exist_ok=True)
        Image.fromarray(clean).save(root / "ref" / f"p{n}.png")
        for k, loss in enumerate(LOSSES):
            (root / loss).mkdir(exist_ok=True)
            Image.fromarray(np.clip(clean + rng.normal(0, 5 + 5 * k, clean.shape), 0, 255).astype(np.uint8)).save(
                root / loss / f"p{n}.png")
    return root


def simulated_side(labels: dict[str, str], rng: np.random.Generator, quality: dict[str, float] = QUALITY) -> str:
    """A Thurstone observer's answer for a trial whose image URLs map to condition labels."""
    from mdfloss.study.scaling import SIGMA

    left, right = labels["left"], labels["right"]
    if "reference" in (left, right):  # golden: the undistorted copy is obvious
        return "left" if left == "reference" else "right"
    p_left = float(np.asarray(__import__("scipy").stats.norm.cdf((quality[left] - quality[right]) / SIGMA)))
    return "left" if rng.random() < p_left else "right"


def make_study(tmp_path: Path, *, design: str = "full", trials: int = 6, images: int = 2, golden_rate: float = 0.1,
               crop: int = 32, size: int = 40) -> Path:
    """A study file built by ``mdfloss study create`` from the folder layout."""
    from mdfloss.cli import main

    root = fake_folders(tmp_path / "layout", images=images, size=size)
    out = tmp_path / f"study-{design}.sqlite"
    code = main(["study", "create", "--results", str(root), "--design", design, "--trials", str(trials),
                 "--golden-rate", str(golden_rate), "--crop", str(crop), "--admin-token", "secret-admin",
                 "--out", str(out)])
    assert code == 0
    return out


def image_labels(study: Path) -> dict[str, str]:
    """Image path (as /img/PATH) -> condition label, read straight from the study file."""
    import sqlite3

    with sqlite3.connect(study) as connection:
        return {f"/img/{image}": label for image, label in connection.execute("SELECT image, label FROM condition")}


def trial_sides(study: Path, trial_id: int) -> dict[str, str]:
    """The condition labels a trial shows left and right, read straight from the study file."""
    import sqlite3

    with sqlite3.connect(study) as connection:
        left, right = connection.execute(
            "SELECT l.label, r.label FROM trial t JOIN condition l ON l.id = t.cond_left "
            "JOIN condition r ON r.id = t.cond_right WHERE t.id = ?", (trial_id,)).fetchone()
    return {"left": left, "right": right}
