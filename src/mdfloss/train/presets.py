"""Every setting of phase-1 training, and the two presets.

``paper`` follows the paper and SinGAN: 3000 iterations per scale of 3 D steps and 3 G steps
on the whole image, a gradient penalty at every D step, SinGAN's initialisation.
``fast`` trains on batches of random crops with one D and one G step per iteration, a lazy
gradient penalty and fewer iterations, so that 8 scales train in minutes on a CPU
(docs/training.md has the measurements behind each number).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from .._checks import as_type, check_choice, check_int, check_number

GENERATOR_INITS = ("singan", "identity")
CRITIC_BATCHES = ("separate", "joint")

# Settings that change how a run is written, never what it computes: allowed to differ on --resume.
BOOKKEEPING = ("checkpoint_every", "log_every")


@dataclass(frozen=True)
class TrainSettings:
    """Phase-1 settings. Widths: ``min(width * 2 ** ((k - 1) // width_double_every), width_max)``."""

    scales: int = 8
    iters: int = 3000
    lr: float = 5e-4
    beta1: float = 0.5
    beta2: float = 0.999
    lr_decay_at: float = 0.8
    lr_gamma: float = 0.1
    alpha: float = 100.0
    gp_weight: float = 0.1
    gp_every: int = 1
    d_steps: int = 3
    g_steps: int = 3
    width: int = 32
    width_double_every: int = 4
    width_max: int = 128
    crop: int = 0
    batch: int = 1
    bank_size: int = 8
    generator_init: str = "singan"
    critic_batch: str = "separate"
    max_side: int = 0
    checkpoint_every: int = 500
    log_every: int = 50

    def __post_init__(self) -> None:
        positive_ints = ("scales", "iters", "gp_every", "d_steps", "g_steps", "width", "width_double_every",
                         "width_max", "batch", "bank_size", "checkpoint_every", "log_every")
        for name in positive_ints:
            check_int(name, getattr(self, name), minimum=1)
        check_int("crop", self.crop, minimum=0)
        check_int("max_side", self.max_side, minimum=0)
        if 0 < self.crop < 11:
            raise ValueError(f"crop: expected 0 (whole image) or at least 11 px (the receptive field), got {self.crop}")
        for name in ("lr", "alpha", "gp_weight", "lr_gamma"):
            check_number(name, getattr(self, name), minimum=0)
        for name in ("beta1", "beta2", "lr_decay_at"):
            check_number(name, getattr(self, name), minimum=0, maximum=1)
        check_choice("critic_batch", self.critic_batch, CRITIC_BATCHES)
        if self.generator_init not in GENERATOR_INITS:
            raise ValueError(f"generator_init: expected one of {GENERATOR_INITS}, got {self.generator_init!r}")

    def widths(self) -> list[int]:
        """Channel width of G_k and D_k, k = 1..scales (SinGAN: 32, doubling every 4 scales, cap 128)."""
        return [min(self.width * 2 ** (k // self.width_double_every), self.width_max) for k in range(self.scales)]

    def lr_milestone(self) -> int:
        """Iteration from which the learning rate is multiplied by ``lr_gamma``."""
        return round(self.lr_decay_at * self.iters)

    def as_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def replace(self, overrides: Mapping[str, Any]) -> TrainSettings:
        """A copy with ``overrides`` applied; strings are converted to each field's type."""
        fields = {f.name: f for f in dataclasses.fields(self)}
        unknown = sorted(set(overrides) - set(fields))
        if unknown:
            raise ValueError(f"settings: unknown setting(s) {unknown}; known: {sorted(fields)}")
        converted = {name: as_type(name, value, type(getattr(self, name))) for name, value in overrides.items()}
        return dataclasses.replace(self, **converted)


PRESETS: dict[str, TrainSettings] = {
    "paper": TrainSettings(),
    "fast": TrainSettings(
        iters=400, d_steps=1, g_steps=1, gp_every=4, crop=32, batch=4, bank_size=4,
        generator_init="identity", critic_batch="joint", checkpoint_every=100, log_every=25,
    ),
}


def resolve_settings(preset: str, overrides: Mapping[str, Any] | None = None) -> TrainSettings:
    """The preset's settings with ``overrides`` (values of ``None`` are ignored)."""
    if preset not in PRESETS:
        raise ValueError(f"preset: expected one of {sorted(PRESETS)}, got {preset!r}")
    given = {name: value for name, value in (overrides or {}).items() if value is not None}
    return PRESETS[preset].replace(given)
