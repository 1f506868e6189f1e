"""Training checkpoints: a plain dict of tensors, numbers and strings, written atomically.

Loaded with ``torch.load(weights_only=True)``, so a checkpoint can never execute code; tagged with
a format name and version, so a truncated or foreign file gets a clear error. Used by phase 1
(layout below) and by ``mdfloss bench`` (model, optimizer, scheduler and RNG states). Phase 1::

    {"format": "mdfloss-train-checkpoint", "version": 1,
     "fingerprint": "<JSON of everything that determines the result>",
     "finished": [{"generator": state_dict, "discriminator": state_dict}, ...],   # scales 1..k
     "current": None | {"scale": k, "iteration": i, "generator": ..., "discriminator": ...,
                        "optimizer_g": ..., "optimizer_d": ..., "rng": ByteTensor},
     "elapsed_s": float, "log_bytes": int, "threads": int}

The multi-scale bank of coarser outputs is not stored: it is rebuilt, bit for bit, from the
finished generators and per-scale random streams.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import torch

from .._files import write_atomically

FORMAT_NAME = "mdfloss-train-checkpoint"
FORMAT_VERSION = 1


def save_checkpoint(path: str | os.PathLike[str], state: dict[str, Any]) -> Path:
    """Write ``state`` (see the module docstring) atomically to ``path``."""
    payload = dict(state, format=FORMAT_NAME, version=FORMAT_VERSION)
    return write_atomically(path, lambda temporary: torch.save(payload, temporary))


def load_checkpoint(path: str | os.PathLike[str]) -> dict[str, Any]:
    """Read a checkpoint (tensors on the CPU), refusing anything that is not one of ours."""
    try:
        state = torch.load(os.fspath(path), map_location="cpu", weights_only=True)
    except Exception as error:  # torch raises many kinds for a truncated or foreign file
        raise ValueError(f"checkpoint {path}: unreadable ({type(error).__name__}: {error}); delete it to start over") from None
    if not isinstance(state, dict) or state.get("format") != FORMAT_NAME:
        raise ValueError(f"checkpoint {path}: not an mdfloss training checkpoint")
    if state.get("version") != FORMAT_VERSION:
        raise ValueError(f"checkpoint {path}: version {state.get('version')!r} is not supported (expected {FORMAT_VERSION})")
    return state
