#!/usr/bin/env python3
"""Build the detail-rich test set (issue 9, item 2) from photos that packages ship under free licences.

    python scripts/build_test_set.py --out data/test-detail [--size 256]

Every image is a ``--size`` x ``--size`` crop (no resampling) of a photo that an installed package
ships: scikit-image and scikit-learn (pip) and the Debian package ``lomiri-wallpapers-16.04``. The
large Debian photos are JPEGs, so they are first reduced x2 (2x2 box mean, ``PIL.Image.reduce``) to
wash out compression blocking; that is the only resampling. The small pip JPEGs (rocket, china,
flower) are saved at quality ~95 (quantisation table DC step 1) and are cropped as they are.

Crop rule (deterministic): on the luma (``PIL`` mode ``L``) of the (reduced) photo, the energy of
the 4-neighbour Laplacian (integer sum of squares) is summed over every candidate window on a grid
of stride ``size // 4`` (top-left corners at multiples of the stride, plus the last row/column
that fits); the window with the most energy wins, ties going to the smallest (top, left).
All arithmetic is integer, so the choice is exact.

Writes the PNGs atomically (temp file + os.replace), ``MANIFEST.json`` and ``LICENSES.md``, then
prints the PSNR of bicubic x4 (mdfloss.bench's downscale, PIL bicubic upscale, 8-bit, 4 px border
cropped, RGB) per image and the mean; exits 1 when fewer than 12 images or a mean above 30.5 dB.
"""

from __future__ import annotations

import argparse
import hashlib
import importlib.metadata
import importlib.util
import io
import json
import os
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

MIN_IMAGES = 12
MAX_MEAN_PSNR = 30.5
SCALE = 4
BORDER = 4


class BuildError(Exception):
    """A one-line, user-facing error."""


@dataclass(frozen=True)
class Source:
    name: str  # output stem
    kind: str  # "pip" or "deb"
    package: str  # import name (pip) or Debian package name (deb)
    distribution: str  # pip distribution name (for version and install hint); Debian package for deb
    path: str  # inside the package (pip: relative to the import package; deb: absolute Debian path)
    licence: str  # SPDX-like id
    licence_text: str  # what the package says, verbatim or closely quoted, with attribution
    reduce: int = 1  # box-mean pre-downscale factor (JPEG sources only)


DEB_DIR = "/usr/share/backgrounds"
DEB_PKG = "lomiri-wallpapers-16.04"
DEB_COPYRIGHT = f"/usr/share/doc/{DEB_PKG}/copyright"


def _deb(name: str, file: str, copyright_line: str, licence: str) -> Source:
    return Source(name, "deb", DEB_PKG, DEB_PKG, f"{DEB_DIR}/{file}", licence,
                  f"Debian {DEB_PKG} copyright file: 'Files: 16.04/{file} / Copyright: {copyright_line} / "
                  f"License: {licence}'", reduce=2)


SOURCES: tuple[Source, ...] = (
    Source("astronaut", "pip", "skimage", "scikit-image", "data/astronaut.png", "public-domain",
           "skimage.data.astronaut: 'Photograph of Eileen Collins ... downloaded from the NASA Great Images "
           "database. No known copyright restrictions, released into the public domain.'"),
    Source("chelsea", "pip", "skimage", "scikit-image", "data/chelsea.png", "CC0-1.0",
           "skimage.data.chelsea: 'No copyright restrictions. CC0 by the photographer (Stefan van der Walt).'"),
    Source("coffee", "pip", "skimage", "scikit-image", "data/coffee.png", "CC0-1.0",
           "skimage.data.coffee: 'This photograph is courtesy of Pikolo Espresso Bar. No copyright "
           "restrictions. CC0 by the photographer (Rachel Michetti).'"),
    Source("rocket", "pip", "skimage", "scikit-image", "data/rocket.jpg", "public-domain",
           "skimage.data.rocket: 'Launch photo of DSCOVR on Falcon 9 by SpaceX ... The image was captured "
           "by SpaceX and released in the public domain.'"),
    Source("china", "pip", "sklearn", "scikit-learn", "datasets/images/china.jpg", "CC-BY-2.0",
           "sklearn/datasets/images/README.txt: 'Released under a creative commons license "
           "(https://creativecommons.org/licenses/by/2.0/). Attribution: Some rights reserved by "
           "danielbuechele (https://www.flickr.com/photos/danielbuechele/). Retrieved 21st August, 2011 "
           "by Robert Layton.'"),
    Source("flower", "pip", "sklearn", "scikit-learn", "datasets/images/flower.jpg", "CC-BY-2.0",
           "sklearn/datasets/images/README.txt: 'Released under a creative commons license "
           "(https://creativecommons.org/licenses/by/2.0/). Attribution: Some rights reserved by "
           "danielbuechele [link: https://www.flickr.com/photos/vultilion/]. Retrieved 21st August, 2011 "
           "by Robert Layton.'"),
    _deb("bridge", "Bridge_by_Sander_Klootwijk.jpg", "2018. Sander Klootwijk", "CC-BY-SA-4.0"),
    _deb("dragonfly", "Dragonfly_by_Bolly.jpg", '"Bolly", 2018', "CC-BY-SA-4.0"),
    _deb("picture-0b", "Picture_0B_by_freespace.jpg", 'Trevor "Freespace", 2018', "CC-BY-4.0"),
    _deb("wine", "Wine_by_Jakkub_Mede.jpg", "Jakub Mede, 2018", "CC-BY-4.0"),
    _deb("aitzgorri", "aitzgorri_by_Aitzol_Berasategi.jpg", "Aitzol Berasategi, 2018", "CC-BY-4.0"),
    _deb("friends", "friends_by_Aitzol_Berasategi.jpg", "Aitzol Berasategi, 2018", "CC-BY-4.0"),
    _deb("sunset", "sunset_by_Aitzol_Berasategi.jpg", "Aitzol Berasategi, 2018", "CC-BY-4.0"),
)


# ---------------------------------------------------------------------------------------------
# locating sources


def pip_file(source: Source) -> tuple[Path, str]:
    """The file inside an installed pip package (found through the import system) and its version."""
    install = f"pip install {source.distribution} (or: make test-set)"
    try:
        spec = importlib.util.find_spec(source.package)
    except (ImportError, ValueError):
        spec = None
    if spec is None or not spec.submodule_search_locations:
        raise BuildError(f"{source.distribution} is not installed (needed for {source.path}): run {install}")
    root = Path(next(iter(spec.submodule_search_locations)))
    path = root / source.path
    if not path.is_file():
        raise BuildError(f"{source.distribution} has no {source.path} (looked in {root}): run {install}")
    return path, importlib.metadata.version(source.distribution)


def deb_version(package: str) -> str:
    try:
        out = subprocess.run(["dpkg-query", "-W", "-f=${Version}", package], capture_output=True, text=True)
    except OSError:
        return "unknown"
    return out.stdout.strip() if out.returncode == 0 and out.stdout.strip() else "unknown"


def deb_file(source: Source) -> tuple[Path, str]:
    path = Path(source.path)
    if not path.is_file():
        raise BuildError(f"{path} not found: it comes from the Debian package {source.package}; "
                         f"run apt-get update && apt-get install -y {source.package}")
    return path, deb_version(source.package)


def locate(source: Source) -> tuple[Path, str]:
    return pip_file(source) if source.kind == "pip" else deb_file(source)


# ---------------------------------------------------------------------------------------------
# the crop rule


def load_rgb(path: Path, reduce: int = 1) -> np.ndarray:
    from PIL import Image

    with Image.open(path) as im:
        im = im.convert("RGB")
        if reduce > 1:
            im = im.reduce(reduce)
        return np.asarray(im, dtype=np.uint8).copy()


def luma(image: np.ndarray) -> np.ndarray:
    """PIL's integer ITU-R 601 luma (mode ``L``) as int64."""
    from PIL import Image

    return np.asarray(Image.fromarray(image).convert("L"), dtype=np.int64)


def laplacian_energy(gray: np.ndarray) -> np.ndarray:
    """Squared 4-neighbour Laplacian (int64), zero on the 1 px frame."""
    lap = np.zeros_like(gray, dtype=np.int64)
    g = gray.astype(np.int64)
    lap[1:-1, 1:-1] = 4 * g[1:-1, 1:-1] - g[:-2, 1:-1] - g[2:, 1:-1] - g[1:-1, :-2] - g[1:-1, 2:]
    return lap * lap


def grid_positions(length: int, size: int, stride: int) -> list[int]:
    """Multiples of ``stride`` that fit, plus the last position that fits (flush with the edge)."""
    last = length - size
    positions = list(range(0, last + 1, stride))
    if positions[-1] != last:
        positions.append(last)
    return positions


def choose_crop(image: np.ndarray, size: int) -> tuple[int, int, int]:
    """(top, left, energy) of the ``size`` x ``size`` window with the most Laplacian energy."""
    h, w = image.shape[:2]
    if h < size or w < size:
        raise BuildError(f"image of {w}x{h} px is smaller than the {size} px crop")
    energy = laplacian_energy(luma(image))
    integral = np.zeros((h + 1, w + 1), dtype=np.int64)
    integral[1:, 1:] = energy.cumsum(0).cumsum(1)
    stride = max(4, (size // 4) // 4 * 4)
    best: tuple[int, int, int] | None = None
    for top in grid_positions(h, size, stride):
        for left in grid_positions(w, size, stride):
            e = int(integral[top + size, left + size] - integral[top, left + size]
                    - integral[top + size, left] + integral[top, left])
            if best is None or e > best[2]:
                best = (top, left, e)
    assert best is not None
    return best


# ---------------------------------------------------------------------------------------------
# writing


def png_bytes(image: np.ndarray) -> bytes:
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(image).save(buf, format="PNG", optimize=False, compress_level=9)
    return buf.getvalue()


def write_atomic(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def manifest_entry(source: Source, version: str, crop: tuple[int, int], size: int, data: bytes,
                   psnr: float) -> dict:
    top, left = crop
    return {
        "file": f"{source.name}.png",
        "size": [size, size],
        "licence": source.licence,
        "licence_text": source.licence_text,
        "source_package": source.distribution,
        "source_kind": "pip" if source.kind == "pip" else "debian",
        "source_version": version,
        "path_in_package": source.path,
        "pre_downscale": (f"x{source.reduce} box mean (PIL Image.reduce) to wash out JPEG blocking"
                          if source.reduce > 1 else None),
        "crop_box": {"left": left, "top": top, "right": left + size, "bottom": top + size,
                     "in": "reduced image" if source.reduce > 1 else "original image"},
        "bicubic_x4_psnr_db": round(psnr, 4),
        "sha256": hashlib.sha256(data).hexdigest(),
    }


def write_manifest(out: Path, entries: list[dict], size: int, mean_psnr: float) -> None:
    manifest = {
        "description": "Detail-rich test crops for mdfloss bench (issue 9, item 2); built by scripts/build_test_set.py",
        "crop_rule": "max 4-neighbour Laplacian energy of the luma on a grid of stride size/4; ties to smallest (top, left)",
        "crop_size": size,
        "pillow_version": importlib.metadata.version("pillow"),
        "numpy_version": importlib.metadata.version("numpy"),
        "bicubic_x4_mean_psnr_db": round(mean_psnr, 4),
        "images": entries,
    }
    write_atomic(out / "MANIFEST.json", (json.dumps(manifest, indent=2, sort_keys=False) + "\n").encode())


def write_licences(out: Path, entries: list[dict]) -> None:
    lines = ["# Licences and attributions", "",
             "Each PNG is a crop of a photo shipped by the package named; modified (cropped"
             " and, where stated, reduced x2) by scripts/build_test_set.py of mdfloss.", ""]
    for e in entries:
        box = e["crop_box"]
        lines += [f"## {e['file']}", "",
                  f"- Licence: {e['licence']}",
                  f"- Source: {e['source_package']} {e['source_version']} ({e['source_kind']}), `{e['path_in_package']}`",
                  f"- As the package states it: {e['licence_text']}",
                  f"- Changes: crop ({box['left']}, {box['top']})-({box['right']}, {box['bottom']}) of the {box['in']}"
                  + (f"; {e['pre_downscale']}" if e["pre_downscale"] else ""), ""]
    write_atomic(out / "LICENSES.md", "\n".join(lines).encode())


# ---------------------------------------------------------------------------------------------
# the check


def bicubic_x4_psnr(hr: np.ndarray, scale: int = SCALE, border: int = BORDER) -> float:
    """PSNR (dB, RGB, 8-bit) of bicubic down x``scale`` (mdfloss bench's degradation) and bicubic up."""
    from PIL import Image

    try:
        from mdfloss.bench.degradations import bicubic_downscale
    except ImportError as exc:
        raise BuildError(f"cannot import mdfloss.bench.degradations.bicubic_downscale ({exc}): "
                         "run make install (pip install -e '.[test]')") from exc
    h, w = hr.shape[:2]
    hr = hr[: h - h % scale, : w - w % scale]
    lr = bicubic_downscale(hr, scale)
    up = np.asarray(Image.fromarray(lr).resize((hr.shape[1], hr.shape[0]), Image.Resampling.BICUBIC))
    a = hr[border:-border, border:-border].astype(np.float64)
    b = up[border:-border, border:-border].astype(np.float64)
    mse = float(np.mean((a - b) ** 2))
    return float("inf") if mse == 0 else 10 * np.log10(255.0**2 / mse)


def build(out: Path, size: int, sources: tuple[Source, ...] = SOURCES) -> tuple[list[dict], float]:
    located = [(s, *locate(s)) for s in sources]  # fail early, before writing anything
    out.mkdir(parents=True, exist_ok=True)
    entries = []
    for source, path, version in located:
        image = load_rgb(path, source.reduce)
        top, left, _ = choose_crop(image, size)
        crop = np.ascontiguousarray(image[top: top + size, left: left + size])
        data = png_bytes(crop)
        write_atomic(out / f"{source.name}.png", data)
        entries.append(manifest_entry(source, version, (top, left), size, data, bicubic_x4_psnr(crop)))
    mean = float(np.mean([e["bicubic_x4_psnr_db"] for e in entries])) if entries else float("nan")
    write_manifest(out, entries, size, mean)
    write_licences(out, entries)
    return entries, mean


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, required=True, help="output folder (e.g. data/test-detail)")
    parser.add_argument("--size", type=int, default=256, help="crop side in px, a multiple of 4 (default 256)")
    args = parser.parse_args(argv)
    if args.size < 4 * (2 * BORDER + 1) or args.size % 4:
        parser.error(f"--size must be a multiple of 4 and at least {4 * (2 * BORDER + 1)}, got {args.size}")
    try:
        entries, mean = build(args.out, args.size)
    except BuildError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(f"{'image':<14} {'source':<26} {'licence':<14} bicubic x4 PSNR")
    for e in entries:
        print(f"{e['file']:<14} {e['source_package']:<26} {e['licence']:<14} {e['bicubic_x4_psnr_db']:.2f} dB")
    print(f"mean bicubic x4 PSNR over {len(entries)} images: {mean:.2f} dB (wrote {args.out})")
    if len(entries) < MIN_IMAGES:
        print(f"error: only {len(entries)} images, need at least {MIN_IMAGES}", file=sys.stderr)
        return 1
    if not mean <= MAX_MEAN_PSNR:
        print(f"error: mean bicubic x4 PSNR {mean:.2f} dB is above {MAX_MEAN_PSNR} dB", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
