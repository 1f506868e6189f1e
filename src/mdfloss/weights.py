"""The MDF weight file: one safetensors file per trained loss, with JSON metadata.

The safetensors header holds one metadata entry, ``"mdfloss"``, a JSON object::

    {
      "format": "mdfloss-weights", "format_version": 1, "mdfloss_version": "0.1.0",
      "widths": [32, 32, ...],            # one per discriminator, coarsest first
      "input_range": [-1.0, 1.0],         # range the discriminators were trained on
      "default_scales": [0, 1, 2],        # optional: the discriminators a loss uses unless told
                                          #   otherwise (scales=...); absent: all of them
      "task": "denoise",                  # free text: sisr, denoise, jpeg, a plugin name...
      "distortion": {"name": ..., "params": {...}},
      "seed_image": {"name": ..., "sha256": ...},
      "training": {... every setting, "command": "mdfloss train ..."},
      "source": "..."                     # where the weights come from
    }

Tensors are named as ``DiscriminatorPyramid.state_dict()`` names them. Loading checks the
format version and every tensor name and shape against what ``widths`` implies; no pickle is
ever involved.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from ._files import existing_file, write_atomically
from ._version import __version__
from .discriminator import DiscriminatorPyramid

FORMAT_NAME = "mdfloss-weights"
FORMAT_VERSION = 1
METADATA_KEY = "mdfloss"
SUFFIX = ".safetensors"


class WeightFileError(ValueError):
    """A weight file that is missing, truncated, corrupt, foreign or inconsistent."""

    def __init__(self, path: str | os.PathLike[str], problem: str) -> None:
        super().__init__(f"{os.fspath(path)}: {problem}")
        self.path = Path(path)
        self.problem = problem


def save_pyramid(path: str | os.PathLike[str], pyramid: DiscriminatorPyramid, metadata: dict[str, Any]) -> Path:
    """Write ``pyramid`` and ``metadata`` (JSON-serialisable) atomically to ``path``."""
    header = dict(metadata)
    header.update(
        format=FORMAT_NAME,
        format_version=FORMAT_VERSION,
        mdfloss_version=__version__,
        widths=pyramid.widths,
    )
    header.setdefault("input_range", [-1.0, 1.0])
    tensors = {name: t.detach().to("cpu").contiguous() for name, t in pyramid.state_dict().items()}
    encoded = {METADATA_KEY: json.dumps(header, sort_keys=True)}
    return write_atomically(path, lambda tmp: save_file(tensors, tmp, metadata=encoded))


def read_metadata(path: str | os.PathLike[str]) -> dict[str, Any]:
    """The JSON metadata of a weight file, checked for format and version."""
    path = existing_file(path, "path", "a weight file")
    try:
        with open(path, "rb") as stream:
            header_size = int.from_bytes(stream.read(8), "little")
            if not 2 <= header_size <= 100_000_000:
                raise WeightFileError(path, "not a safetensors file (bad header size); is it a legacy .pth? "
                                      "Use MDFLoss.from_official or `mdfloss convert` for the authors' files")
            raw = stream.read(header_size)
        if len(raw) != header_size:
            raise WeightFileError(path, "truncated: the safetensors header is incomplete")
        header = json.loads(raw)
        encoded = header.get("__metadata__", {}).get(METADATA_KEY)
    except (UnicodeDecodeError, json.JSONDecodeError, AttributeError) as error:
        raise WeightFileError(path, f"corrupt safetensors header ({error})") from None
    if encoded is None:
        raise WeightFileError(path, f"not an mdfloss weight file: no '{METADATA_KEY}' metadata entry")
    try:
        metadata = json.loads(encoded)
    except json.JSONDecodeError as error:
        raise WeightFileError(path, f"corrupt '{METADATA_KEY}' metadata ({error})") from None
    if not isinstance(metadata, dict) or metadata.get("format") != FORMAT_NAME:
        raise WeightFileError(path, f"metadata is not of format '{FORMAT_NAME}'")
    version = metadata.get("format_version")
    if version != FORMAT_VERSION:
        raise WeightFileError(
            path, f"format version {version!r} is not supported (this mdfloss {__version__} reads {FORMAT_VERSION})"
        )
    widths = metadata.get("widths")
    if not isinstance(widths, list) or not widths or not all(isinstance(w, int) and w > 0 for w in widths):
        raise WeightFileError(path, f"metadata 'widths' must be a non-empty list of positive ints, got {widths!r}")
    low_high = metadata.get("input_range")
    if not (isinstance(low_high, list) and len(low_high) == 2 and low_high[0] < low_high[1]):
        raise WeightFileError(path, f"metadata 'input_range' must be [low, high] with low < high, got {low_high!r}")
    default = metadata.get("default_scales")
    if default is not None and not (isinstance(default, list) and default and len(set(default)) == len(default)
                                    and all(isinstance(k, int) and 0 <= k < len(widths) for k in default)):
        raise WeightFileError(path, f"metadata 'default_scales' must be distinct indices of the {len(widths)} "
                                    f"discriminators, got {default!r}")
    return metadata


def load_pyramid(path: str | os.PathLike[str]) -> tuple[DiscriminatorPyramid, dict[str, Any]]:
    """Read a weight file: the pyramid (eval mode, CPU, float32) and its metadata."""
    metadata = read_metadata(path)
    pyramid = DiscriminatorPyramid(metadata["widths"])
    expected = pyramid.state_dict()
    try:
        tensors = load_file(os.fspath(path))
    except (SafetensorError, OSError, ValueError) as error:
        raise WeightFileError(path, f"unreadable tensor data ({error})") from None
    missing = sorted(set(expected) - set(tensors))
    unexpected = sorted(set(tensors) - set(expected))
    if missing or unexpected:
        raise WeightFileError(
            path, f"tensors do not match widths {metadata['widths']}: missing {missing[:4]}, unexpected {unexpected[:4]}"
        )
    for name, reference in expected.items():
        if tensors[name].shape != reference.shape:
            raise WeightFileError(
                path, f"tensor '{name}' has shape {tuple(tensors[name].shape)}, expected {tuple(reference.shape)}"
            )
        if tensors[name].is_floating_point() and not torch.isfinite(tensors[name]).all():
            raise WeightFileError(path, f"tensor '{name}' holds NaN or Inf")
    pyramid.load_state_dict(tensors)
    return pyramid.eval(), metadata
