"""A run's folder: the one decision about its state, and taking over a run finished in another folder.

A run is *finished* when its ``results.csv`` exists (it was trained and tested), *started* when
its ``checkpoint.pt`` exists; only ``--resume`` may continue or skip either.

``mdfloss bench --reuse DIR``: a run of experiment E is taken over from ``DIR`` when ``DIR``'s
manifest records a finished run of E that

* has the same checkpoint identity (task, network, degradation, loss spec and MDF options,
  patches, optimizer, schedule, iterations, training photos: :func:`~.config.identity`), where
  a weight file inside each benchmark folder (``mdf-official``'s converted file,
  ``OUT/weights/...``) counts as the same path,
* was trained with a loss of the same weights (:func:`loss_digest` of every parameter and
  buffer, so a retrained shipped loss or another file under the same name does not match), and
* was selected on the same validation (folder, hold-out, crop, interval, selection rule).

Its training files are copied (checkpoint last, each atomically, its identity rewritten to
this folder's), and the run is then tested afresh in the new folder, so test sets and metrics
may differ from ``DIR``'s.
"""

from __future__ import annotations

import hashlib
import os
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from torch import nn

from .._files import write_atomically
from ..train.checkpoint import load_checkpoint, save_checkpoint
from .manifest import RESULTS, read_manifest

CHECKPOINT = "checkpoint.pt"


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

def loss_digest(loss: nn.Module) -> str:
    """sha256 of ``loss``'s parameters and buffers (names, dtypes, shapes, values); '' when it has none."""
    state = loss.state_dict()
    if not state:
        return ""
    digest = hashlib.sha256()
    for name in sorted(state):
        tensor = state[name].detach().to("cpu").contiguous()
        digest.update(f"{name}:{tensor.dtype}:{tuple(tensor.shape)}".encode())
        digest.update(tensor.numpy().tobytes() if tensor.numel() else b"")
    return digest.hexdigest()


def validation_settings(config: dict[str, Any]) -> dict[str, Any]:
    """What decides which checkpoint a run selects, besides its training."""
    data, train = config["data"], config["train"]
    return {
        "val_dir": str(Path(data["val_dir"]).resolve()) if data.get("val_dir") else None,
        **{key: data.get(key) for key in ("val_holdout", "val_crop", "val_limit")},
        **{key: train.get(key) for key in ("val_every", "select")},
    }


def portable(identity: dict[str, Any], out: Path) -> dict[str, Any]:
    """``identity`` with the benchmark folder ``out`` in its loss spec written as ``<out>``."""
    return {**identity, "loss": identity["loss"].replace(f"{out}{os.sep}", "<out>/")}


def find_finished_run(source: Path, out: Path, name: str, config: dict[str, Any], identity: dict[str, Any],
                      digest: str) -> Path | None:
    """The folder of a finished run in ``source`` that this run (of benchmark folder ``out``) can
    take over, or None."""
    entry = read_manifest(source)["experiments"].get(name)
    if entry is None or validation_settings(entry["config"]) != validation_settings(config):
        return None
    for record in entry["runs"].values():
        folder = source / record["folder"]
        if record.get("loss_digest") != digest or not (folder / CHECKPOINT).is_file():
            continue
        state = load_checkpoint(folder / CHECKPOINT)
        same = portable(state["identity"], source) == portable(identity, out)
        if same and state["iteration"] >= identity["iterations"]:
            return folder
    return None


def take_over(source_folder: Path, folder: Path, identity: dict[str, Any]) -> None:
    """Copy ``source_folder``'s training files (not its test results) into ``folder``, the
    checkpoint last (it marks the copy done) and with ``identity``, this run's."""
    files = [p for p in source_folder.iterdir()
             if p.is_file() and p.name not in (RESULTS, CHECKPOINT) and not p.name.startswith(".")]
    for path in files:
        write_atomically(folder / path.name, lambda temporary, path=path: shutil.copyfile(path, temporary))
    state = load_checkpoint(source_folder / CHECKPOINT)
    save_checkpoint(folder / CHECKPOINT, {**state, "identity": identity})
