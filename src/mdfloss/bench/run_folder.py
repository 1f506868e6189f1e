"""A run's folder and the one decision about it: finished, started, or new.

A run is *finished* when its ``results.csv`` exists (it was trained and tested), *started* when
its ``checkpoint.pt`` exists; only ``--resume`` may continue or skip either.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

CHECKPOINT = "checkpoint.pt"
RESULTS = "results.csv"


@dataclass(frozen=True)
class RunFolder:
    path: Path

    @property
    def finished(self) -> bool:
        return (self.path / RESULTS).is_file()

    @property
    def started(self) -> bool:
        return (self.path / CHECKPOINT).is_file()

    def claim(self, resume: bool) -> None:
        """FileExistsError unless this folder holds no run, or ``resume`` allows continuing (or skipping) it."""
        if resume or not (self.finished or self.started):
            return
        state = "a finished run" if self.finished else "a started run"
        raise FileExistsError(f"{self.path} holds {state}: pass --resume to continue it, or choose another --out")
