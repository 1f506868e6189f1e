"""Finding the image files of a folder: one rule for every command that reads photo sets."""

from __future__ import annotations

import os
from pathlib import Path

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp", ".ppm")


def list_images(folder: str | os.PathLike[str], argument: str = "images") -> list[Path]:
    """The image files directly in ``folder``, sorted by name.

    Raises FileNotFoundError when ``folder`` is not a directory and ValueError when it holds no
    image; both messages start with ``argument``, the name the user gave the folder under.
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise FileNotFoundError(f"{argument}: expected a folder of images, got {folder} (not a directory)")
    images = sorted(p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)
    if not images:
        raise ValueError(f"{argument}: expected image files ({', '.join(IMAGE_SUFFIXES)}) in {folder}, found none")
    return images
