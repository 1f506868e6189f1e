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

GENERATOR_INITS = ("singan", "identity")
CRITIC_BATCHES = ("separate", "joint")

# Settings that change how a run is written, never what it computes: allowed to differ on --resume.
BOOKKEEPING = ("checkpoint_every", "log_every")


def _require_int(name: str, value: Any, *, minimum: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ValueError(f"{name}: expected an int >= {minimum}, got {value!r}")


def _convert(name: str, value: Any, kind: type) -> Any:
    if isinstance(value, str):
        try:
            return kind(value)
        except ValueError:
            raise ValueError(f"{name}: expected a {kind.__name__}, got {value!r}") from None
    if kind is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    return value


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
            _require_int(name, getattr(self, name), minimum=1)
        _require_int("crop", self.crop, minimum=0)
        _require_int("max_side", self.max_side, minimum=0)
        if 0 < self.crop < 11:
            raise ValueError(f"crop: expected 0 (whole image) or at least 11 px (the receptive field), got {self.crop}")
        for name in ("lr", "alpha", "gp_weight", "lr_gamma"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0:
                raise ValueError(f"{name}: expected a non-negative number, got {value!r}")
        for name in ("beta1", "beta2", "lr_decay_at"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value <= 1:
                raise ValueError(f"{name}: expected a number in [0, 1], got {value!r}")
        if self.critic_batch not in CRITIC_BATCHES:
            raise ValueError(f"critic_batch: expected one of {CRITIC_BATCHES}, got {self.critic_batch!r}")
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
        converted = {name: _convert(name, value, type(getattr(self, name))) for name, value in overrides.items()}
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
