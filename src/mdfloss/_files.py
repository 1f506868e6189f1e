"""Files every tool writes and reads: atomic writes, image folders, CSV tables.

* :func:`write_atomically`: a file is replaced whole or not at all (temporary file + rename);
* :func:`existing_file`: a path that must name a file, one message for every reader;
* :func:`list_images`: the image files of a folder, one rule for every command;
* :func:`read_rgb`: an image file as 8-bit RGB, the one reader of every tool;
* :func:`write_png`: a (3, H, W) image in [0, 1] as an 8-bit PNG;
* :func:`write_csv` / :func:`read_csv`: a list of dicts as a CSV table with a header row;
  :func:`read_table`: a user's CSV whose header must name some columns.
"""

from __future__ import annotations

import csv
import io
import os
import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, BinaryIO

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


def read_rgb(path: str | os.PathLike[str] | BinaryIO) -> Any:
    """An image file (a path or an open binary stream) as a uint8 (H, W, 3) RGB array; grey is
    repeated to three channels, alpha dropped, palettes expanded (Pillow's ``convert("RGB")``)."""
    import numpy as np
    from PIL import Image

    with Image.open(path) as image:
        return np.asarray(image.convert("RGB"))


def existing_file(path: str | os.PathLike[str], argument: str, what: str) -> Path:
    """``path`` as a Path; FileNotFoundError ``"ARGUMENT: expected WHAT, got PATH (no such file)"`` if it is no file."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{argument}: expected {what}, got {path} (no such file)")
    return path


def write_atomically(path: str | os.PathLike[str], write: Callable[[str], object]) -> Path:
    """Call ``write(temporary_path)`` next to ``path``, then rename it over ``path``.

    A crash leaves either the old file or the new one, never half of one.
    """
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    os.close(handle)
    try:
        write(temporary)
        os.chmod(temporary, 0o666 & ~_UMASK)  # mkstemp makes 0600; give the usual mode
        os.replace(temporary, target)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
    return target


def _read_umask() -> int:
    """The process umask. Reading it means setting it, so it is read once, at import, not per
    write: a file another thread created in between would get mode 0666."""
    mask = os.umask(0)
    os.umask(mask)
    return mask


_UMASK = _read_umask()


def write_png(path: str | os.PathLike[str], image: Any) -> Path:
    """A (3, H, W) tensor in [0, 1] (clamped, rounded to 8 bits) as an RGB PNG, written atomically."""
    import numpy as np
    from PIL import Image

    pixels = image.detach().float().cpu().clamp(0, 1).mul(255).round().byte().permute(1, 2, 0).numpy()
    return write_atomically(path, lambda tmp: Image.fromarray(np.ascontiguousarray(pixels)).save(tmp, format="PNG"))


def write_csv(path: Path, fields: Sequence[str], rows: Sequence[dict[str, Any]]) -> None:
    """Write ``rows`` as CSV atomically."""
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=list(fields), lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    text = buffer.getvalue()
    write_atomically(path, lambda tmp: Path(tmp).write_text(text, encoding="utf-8"))


def read_csv(path: Path) -> list[dict[str, str]]:
    """The rows of a CSV file as dicts keyed by its header; [] when the file does not exist."""
    if not path.is_file():
        return []
    with path.open(newline="", encoding="utf-8") as stream:
        return list(csv.DictReader(stream))


def read_table(path: str | os.PathLike[str], required: Sequence[str], argument: str) -> list[dict[str, str]]:
    """The rows of a user's CSV file (a byte-order mark is fine) whose header names ``required``.

    FileNotFoundError or ValueError naming ``argument``, the file and the missing columns.
    """
    path = existing_file(path, argument, "a CSV file")
    with path.open(newline="", encoding="utf-8-sig") as stream:
        reader = csv.DictReader(stream)
        found = list(reader.fieldnames or [])
        missing = [column for column in required if column not in found]
        if missing:
            raise ValueError(f"{argument}: expected columns {', '.join(required)} in {path}, missing "
                             f"{', '.join(missing)} (found {', '.join(found) or 'no header'})")
        return list(reader)
