"""``--jobs N``: the runs of a benchmark (one network, one loss each) trained by N processes.

Runs are independent, so on a CPU, N processes with one thread each use N cores far better
than one process with N threads. The main process prepares every experiment once (every loss
built once, references, the input's own metrics, the manifest, the validation and test images),
then starts the unfinished runs, longest first (MDF and perceptual losses cost several times a
pixel loss), keeping N running and handing each what was prepared, and writes the report at the
end. Each worker trains exactly as a single-process run would (same seeds, batches and
checkpoints), so the results and ``--resume`` do not depend on N. SIGINT/SIGTERM reach every
worker, which checkpoints and stops; if one run fails, the others are stopped the same way.
"""

from __future__ import annotations

import multiprocessing
from multiprocessing.connection import wait
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch

from ..runtime import EXIT_INTERRUPTED
from .config import LossRun
from .distributed import Context, StopFlag, stop_on_signals
from .fit import TrainingInterrupted
from .run_folder import RunFolder

if TYPE_CHECKING:
    from .runner import Prepared


def pending_runs(config: dict[str, Any], runs: list[LossRun], out: Path, *, resume: bool) -> list[tuple[float, str]]:
    """(relative cost, run key) of each of ``runs`` without results yet.

    Without ``resume``, a folder that already holds a run (finished or not) is refused.
    """
    pending = []
    for run in runs:
        folder = RunFolder(out / config["name"] / run.slug)
        folder.claim(resume)
        if not folder.finished:
            pending.append((_relative_cost(run.spec), run.key))
    return pending


def _relative_cost(spec: str) -> float:
    """A rough cost of one training step with ``spec``, in units of an L2 step (for ordering only)."""
    if "mdf" in spec or "vgg" in spec or "lpips" in spec:
        return 4.0
    return 1.3 if "ssim" in spec else 1.0


def train_in_parallel(configs: list[dict[str, Any]], out: Path, jobs: int, *, resume: bool, device: torch.device,
                      threads: int, reuse: Path | None = None) -> None:
    """Prepare every experiment here, then train its pending runs in ``jobs`` processes.

    Raises TrainingInterrupted when stopped by a signal, RuntimeError naming the run that failed.
    """
    from .runner import prepare_experiment

    weighted = []
    for config in configs:
        prepared = prepare_experiment(config, out, Context(device=device))
        pending = pending_runs(prepared.setup.experiment.config, prepared.setup.runs, out, resume=resume)
        weighted += [(cost, index, prepared, key) for index, (cost, key) in enumerate(pending)]
    tasks = [(prepared, key) for _, _, prepared, key in sorted(weighted, key=lambda item: (-item[0], item[1]))]
    spawn = multiprocessing.get_context("spawn")
    errors = spawn.SimpleQueue()
    running: dict[Any, tuple[Any, str]] = {}
    failure: str | None = None
    stop = StopFlag()
    stopping = False
    with stop_on_signals(stop):
        while running or (tasks and failure is None and not stop.requested):
            while tasks and len(running) < jobs and failure is None and not stop.requested:
                prepared, key = tasks.pop(0)
                name = prepared.setup.experiment.config["name"]
                process = spawn.Process(target=_train_one, args=(prepared, out, key, device, threads, reuse, errors),
                                        name=f"mdfloss-bench {name} {key}")
                process.start()
                running[process.sentinel] = (process, f"{name} {key}")
            for sentinel in wait(list(running), timeout=1.0):
                process, name = running.pop(sentinel)
                process.join()
                if process.exitcode not in (0, EXIT_INTERRUPTED) and failure is None:
                    failure = errors.get() if not errors.empty() else f"{name}: exit code {process.exitcode}"
            if (failure is not None or stop.requested) and not stopping:
                stopping = True
                for process, _ in running.values():
                    process.terminate()  # SIGTERM: the worker checkpoints and stops
    if failure is not None:
        raise RuntimeError(f"run {failure}")
    if stop.requested:
        raise TrainingInterrupted(None, stop.signal_name or "a signal")


def _train_one(prepared: Prepared, out: Path, key: str, device: torch.device, threads: int,
               reuse: Path | None, errors: Any) -> None:
    """A worker process: the run ``key`` of the experiment the main process ``prepared``, on
    ``threads`` threads; exit 130 when stopped, 1 on an error."""
    import sys

    from .runner import run_experiment

    torch.set_num_threads(threads)
    stop = StopFlag()
    config = prepared.setup.experiment.config
    try:
        with stop_on_signals(stop):
            run_experiment(config, out, Context(device=device), resume=True, stop=stop, only=key, reuse=reuse,
                           prepared=prepared)
    except TrainingInterrupted:
        sys.exit(EXIT_INTERRUPTED)
    except Exception as error:  # reported by the main process, which stops the other runs
        errors.put(f"{config['name']} {key}: {type(error).__name__}: {error}")
        sys.exit(1)
