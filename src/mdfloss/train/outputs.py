"""What a training run writes beside its weight file: a JSON-lines log and sample images."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

from .._files import write_atomically


class TrainingLog:
    """Append-only JSON lines, one event per line: ``{"event": ..., "time": unix seconds, ...}``.

    On resume the file is cut back to the size recorded in the checkpoint, so that it holds
    exactly the events of the run that the weights come from.
    """

    def __init__(self, path: str | os.PathLike[str], truncate_to: int | None = None) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        if truncate_to is None:
            self.path.write_text("")
        elif self.path.exists():
            with open(self.path, "r+b") as stream:
                stream.truncate(min(truncate_to, self.path.stat().st_size))
        self._stream = open(self.path, "a", encoding="utf-8")

    def write(self, event: str, **fields: Any) -> None:
        record = {"event": event, "time": round(time.time(), 3), **fields}
        self._stream.write(json.dumps(record, sort_keys=True) + "\n")
        self._stream.flush()

    def size(self) -> int:
        """Bytes written so far, synced to disk (recorded by checkpoints)."""
        self._stream.flush()
        os.fsync(self._stream.fileno())
        return self.path.stat().st_size

    def close(self) -> None:
        self._stream.close()


def to_uint8_image(image: torch.Tensor) -> np.ndarray:
    """(3, H, W) in [-1, 1] -> (H, W, 3) uint8 (clamped)."""
    pixels = ((image.detach().to("cpu", torch.float32) + 1) / 2).clamp(0, 1)
    return (pixels * 255).round().to(torch.uint8).permute(1, 2, 0).numpy()


def write_sample_strip(path: str | os.PathLike[str], panels: list[torch.Tensor], min_height: int = 96) -> Path:
    """Write (3, H, W) images in [-1, 1] side by side as one PNG, atomically.

    Small panels are enlarged by an integer factor (nearest neighbour) to at least ``min_height``.
    """
    from PIL import Image

    height = max(p.shape[-2] for p in panels)
    factor = max(1, -(-min_height // height))
    gap = 2 * factor
    arrays = [to_uint8_image(p).repeat(factor, axis=0).repeat(factor, axis=1) for p in panels]
    width = sum(a.shape[1] for a in arrays) + gap * (len(arrays) - 1)
    canvas = np.full((height * factor, width, 3), 255, dtype=np.uint8)
    x = 0
    for array in arrays:
        canvas[: array.shape[0], x : x + array.shape[1]] = array
        x += array.shape[1] + gap
    return write_atomically(path, lambda temporary: Image.fromarray(canvas).save(temporary, format="PNG"))
