"""Image folders (DIV2K / BSD style), random training patches, cached evaluation sets.

Training samples are addressed by a global index ``k``: sample ``k`` draws its image, crop,
augmentation and degradation from a generator seeded with ``(seed, k)``. Iteration ``i`` of a
run with global batch ``B`` uses samples ``i B ... i B + B - 1``, split between processes, so a
resumed run, a run with DataLoader workers and a run on several processes all see the same
patches as one uninterrupted process.

Validation and test images are degraded deterministically (see
:mod:`mdfloss.bench.degradations`) and cached under ``cache_dir`` as safetensors, one file per
image and condition, keyed by the image's bytes and the degradation's settings.
"""

from __future__ import annotations

import hashlib
import io
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import Dataset, Sampler

from .._checks import check_int
from .._files import read_rgb as read_image
from .._files import write_atomically
from .degradations import Condition, Degradation, mod_crop, to_tensor

_MIX = 0x9E3779B97F4A7C15


def augment(patch: np.ndarray, mode: int) -> np.ndarray:
    """One of the 8 rotations/flips: rotate by 90 * (mode % 4) degrees, then mirror if mode >= 4."""
    out = np.rot90(patch, mode % 4)
    if mode >= 4:
        out = out[:, ::-1]
    return np.ascontiguousarray(out)


def sample_generator(seed: int, index: int) -> torch.Generator:
    """The generator of training sample ``index``: independent of everything else."""
    return torch.Generator().manual_seed((seed * _MIX + index) % (2**63))


class TrainPatches(Dataset):
    """Sample ``k``: a random ``patch_size`` crop of a random image, augmented, then degraded.

    Returns (input, target) float tensors; ``patch_size`` is the target's side.
    """

    def __init__(self, images: Sequence[np.ndarray], degradation: Degradation, *, patch_size: int,
                 augment: bool = True, seed: int = 0, names: Sequence[str] | None = None) -> None:
        if not images:
            raise ValueError("images: expected at least one training image, got none")
        check_int("data.patch_size", patch_size, minimum=1)
        if patch_size % degradation.scale:
            raise ValueError(
                f"data.patch_size: expected a multiple of the scale {degradation.scale}, got {patch_size}"
            )
        names = list(names or (f"image {i}" for i in range(len(images))))
        for name, image in zip(names, images):
            if min(image.shape[:2]) < patch_size:
                raise ValueError(
                    f"data.patch_size: {patch_size} px is larger than training image {name} of {image.shape[1]}x{image.shape[0]} px"
                )
        self.images = list(images)
        self.degradation = degradation
        self.patch_size = patch_size
        self.augment = augment
        self.seed = seed

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        generator = sample_generator(self.seed, index)
        image = self.images[int(torch.randint(len(self.images), (), generator=generator))]
        h, w = image.shape[:2]
        size = self.patch_size
        top = int(torch.randint(h - size + 1, (), generator=generator))
        left = int(torch.randint(w - size + 1, (), generator=generator))
        patch = image[top : top + size, left : left + size]
        if self.augment:
            patch = augment(patch, int(torch.randint(8, (), generator=generator)))
        return self.degradation.train_pair(np.ascontiguousarray(patch), generator)


class IterationSampler(Sampler[int]):
    """Global sample indices of iterations [start, stop) for process ``rank`` of ``world_size``.

    Iteration ``i`` covers ``i * batch_size + j`` for ``j`` in this rank's contiguous share.
    """

    def __init__(self, start: int, stop: int, batch_size: int, rank: int = 0, world_size: int = 1) -> None:
        if batch_size % world_size:
            raise ValueError(
                f"data.batch_size: expected a multiple of the number of processes {world_size}, got {batch_size}"
            )
        self.start, self.stop = start, stop
        self.batch_size = batch_size
        self.local = batch_size // world_size
        self.offset = rank * self.local

    def __iter__(self) -> Iterator[int]:
        for iteration in range(self.start, self.stop):
            base = iteration * self.batch_size + self.offset
            yield from range(base, base + self.local)

    def __len__(self) -> int:
        return (self.stop - self.start) * self.local


@dataclass
class EvalImage:
    """A validation or test image under one condition: input (3, h, w), target (3, H, W)."""

    name: str
    input: torch.Tensor
    target: torch.Tensor


def center_crop(image: np.ndarray, size: int, multiple: int) -> np.ndarray:
    """The central ``size`` x ``size`` region (shrunk to the image and to a multiple of ``multiple``)."""
    h, w = image.shape[:2]
    side = min(size, h, w)
    side -= side % multiple
    top, left = (h - side) // 2, (w - side) // 2
    return image[top : top + side, left : left + side]


def eval_set(paths: Sequence[Path], degradation: Degradation, condition: Condition, *,
             cache_dir: Path | None, crop: int | None = None) -> list[EvalImage]:
    """Deterministically degraded images, read from or written to the cache."""
    from safetensors.torch import load_file, save_file

    items = []
    for path in paths:
        raw = path.read_bytes()
        key = hashlib.sha256(
            raw + repr((degradation.task, degradation.settings(), condition.name, condition.params, crop)).encode()
        ).hexdigest()[:16]
        cached = cache_dir / f"{path.stem}-{condition.name}-{key}.safetensors" if cache_dir else None
        image = mod_crop(read_image(io.BytesIO(raw)), degradation.scale)
        if crop is not None:
            image = center_crop(image, crop, degradation.scale)
        if cached is not None and cached.is_file():
            degraded, target = load_file(cached)["input"], to_tensor(image)
        else:
            degraded, target = degradation.eval_pair(image, condition, path.name)
            if cached is not None:
                tensors = {"input": degraded.contiguous()}
                write_atomically(cached, lambda tmp, t=tensors: save_file(t, tmp))
        items.append(EvalImage(path.name, degraded, target))
    return items
