"""Training one network with one loss: optimizer, schedule, validation, checkpoints, resume.

A run's folder holds::

    checkpoint.pt             last state: model, optimizer, scheduler, RNG states, best scores
    best-val-loss.safetensors weights with the lowest validation loss (the paper's selection)
    best-val-psnr.safetensors weights with the highest validation PSNR
    train_log.csv             iteration, loss (mean over the last log_every), lr (of that iteration), seconds
    val_log.csv               iteration, val_loss, val_psnr

``checkpoint.pt`` is written every ``train.checkpoint_every`` iterations, at the end, and when
SIGINT/SIGTERM or ``train.stop_after`` stops the run; it is loaded with ``weights_only=True``.
Batches depend only on the iteration (see :mod:`mdfloss.bench.data`), so a resumed run
continues exactly as if it had never stopped. Logs are written together with the checkpoint,
so they always describe what the checkpoint holds.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from .._files import existing_file, read_csv, write_atomically, write_csv
from ..metrics.image import crop_border, psnr, quantize
from ..train.checkpoint import load_checkpoint, save_checkpoint
from .convergence import ConvergenceRule
from .data import EvalImage, IterationSampler, TrainPatches
from .distributed import Context, StopFlag
from .run_folder import CHECKPOINT, RunFolder

BEST_FILES = {"val_loss": "best-val-loss.safetensors", "val_psnr": "best-val-psnr.safetensors"}
TRAIN_LOG_FIELDS = ("iteration", "loss", "lr", "seconds")
VAL_LOG_FIELDS = ("iteration", "val_loss", "val_psnr")


class TrainingInterrupted(Exception):
    """Training stopped early (signal or ``train.stop_after``) after saving a checkpoint."""

    def __init__(self, iteration: int | None, reason: str) -> None:
        where = "" if iteration is None else f" at iteration {iteration}"
        super().__init__(f"training stopped{where} ({reason}); resume with --resume")
        self.iteration = iteration


def build_optimizer(options: dict[str, Any], parameters: Any, name: str = "train.optimizer") -> torch.optim.Optimizer:
    """``{type: adam, lr, betas, weight_decay, eps}`` or ``{type: sgd, lr, momentum, nesterov, weight_decay}``.

    An option set to None (``--set train.optimizer.momentum=null``) takes the optimizer's default;
    errors name the options as ``name``.
    """
    options = {key: value for key, value in options.items() if value is not None}  # null: the default
    kind = options.pop("type", None)
    numbers = {k: float(v) for k, v in options.items() if k in ("lr", "weight_decay", "eps", "momentum")}
    options.update(numbers)
    if "betas" in options:
        options["betas"] = tuple(float(b) for b in options["betas"])
    classes = {"adam": torch.optim.Adam, "sgd": torch.optim.SGD}
    if kind not in classes:
        raise ValueError(f"{name}.type: expected one of {sorted(classes)}, got {kind!r}")
    try:
        return classes[kind](parameters, **options)
    except (TypeError, ValueError) as error:
        raise ValueError(f"{name}: {error}") from None


def lr_factor(options: dict[str, Any], total: int, name: str = "train.scheduler") -> Callable[[int], float]:
    """Learning-rate multiplier at iteration ``i`` of ``total``.

    * ``constant``: 1;
    * ``multistep``: ``gamma`` to the number of ``milestones`` (fractions of ``total``) passed;
    * ``exponential``: from 1 to ``lr_end / lr`` geometrically over the run (``lr_end`` given
      as an absolute rate, read against ``train.optimizer.lr``).
    """
    kind = options.get("type")
    if kind == "constant":
        return lambda i: 1.0
    if kind == "multistep":
        milestones = [float(m) for m in options.get("milestones", [])]
        gamma = float(options.get("gamma", 0.1))
        if not all(0 < m < 1 for m in milestones):
            raise ValueError(f"{name}.milestones: expected fractions of the run in (0, 1), got {milestones}")
        steps = sorted(round(m * total) for m in milestones)
        return lambda i: gamma ** sum(i >= s for s in steps)
    if kind == "exponential":
        ratio = float(options["end_factor"])
        return lambda i: ratio ** (i / max(total - 1, 1))
    raise ValueError(f"{name}.type: expected constant, multistep or exponential, got {kind!r}")


def build_scheduler(options: dict[str, Any], optimizer: torch.optim.Optimizer, total: int,
                    base_lr: float, name: str = "train.scheduler") -> torch.optim.lr_scheduler.LambdaLR:
    """The schedule over ``total`` iterations; past them (a run extended by ``--converge``) the
    rate stays at its last value."""
    options = dict(options)
    if options.get("type") == "exponential":
        if "lr_end" not in options:
            raise ValueError(f"{name}.lr_end: expected the final learning rate of the exponential schedule")
        options["end_factor"] = float(options["lr_end"]) / base_lr
    factor = lr_factor(options, total, name)
    return torch.optim.lr_scheduler.LambdaLR(optimizer, lambda i: factor(min(i, total - 1)))


@dataclass
class RunResult:
    """What training produced; ``status`` is how it ended (:data:`~.convergence.STATUSES`), ``gain``
    the validation PSNR gain its last window's slope predicts over one more window (dB)."""

    iterations: int
    seconds: float
    best: dict[str, dict[str, float]] = field(default_factory=dict)
    status: str = "budget"
    gain: float = math.nan


@torch.no_grad()
def validate(model: nn.Module, loss_fn: nn.Module, images: Sequence[EvalImage], device: torch.device,
             border: int) -> tuple[float, float]:
    """Mean loss and mean PSNR (8-bit output, ``border`` px dropped) over the validation images."""
    was_training = model.training
    model.eval()
    losses, psnrs = [], []
    for item in images:
        output = model(item.input.unsqueeze(0).to(device))
        target = item.target.unsqueeze(0).to(device)
        losses.append(float(loss_fn(output, target)))
        psnrs.append(float(psnr(crop_border(quantize(output), border), crop_border(target, border))[0]))
    model.train(was_training)
    return sum(losses) / len(losses), sum(psnrs) / len(psnrs)


def save_weights(path: Path, model: nn.Module) -> None:
    from safetensors.torch import save_file

    tensors = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    write_atomically(path, lambda tmp: save_file(tensors, tmp))


def load_weights(path: Path, model: nn.Module) -> None:
    from safetensors.torch import load_file

    model.load_state_dict(load_file(existing_file(path, "weights", "a model weight file")))


class Trainer:
    """Trains ``model`` with ``loss_fn`` on ``patches`` for ``total`` iterations in ``folder``, or,
    with ``train.converge.enabled``, on until it converges (:mod:`~.convergence`)."""

    train_log_fields: tuple[str, ...] = TRAIN_LOG_FIELDS

    def __init__(self, *, folder: Path, model: nn.Module, loss_fn: nn.Module, patches: TrainPatches,
                 config: dict[str, Any], total: int, identity: dict[str, Any], context: Context,
                 val_images: Sequence[EvalImage] | None, border: int, stop: StopFlag | None = None,
                 description: str = "") -> None:
        self.folder = folder
        self.model = model.to(context.device)
        self.loss_fn = loss_fn
        self.patches = patches
        self.train_options = config["train"]
        self.data_options = config["data"]
        self.logging = config["logging"]
        self.total = total
        self.identity = identity
        self.context = context
        self.val_images = list(val_images or [])
        self.border = border
        self.stop = stop or StopFlag()
        self.description = description
        base_lr = float(self.train_options["optimizer"].get("lr", 0))
        self.optimizer = build_optimizer(self.train_options["optimizer"], self.model.parameters())
        self.scheduler = build_scheduler(self.train_options["scheduler"], self.optimizer, total, base_lr)
        self.rule = ConvergenceRule.from_config(self.train_options["converge"], total)
        if self.rule.enabled and context.distributed:
            raise ValueError("train.converge: not available under torchrun (only the main process validates); "
                             "train to convergence with one process per run (--jobs)")
        self.iteration = 0
        self.seconds = 0.0
        self.best: dict[str, dict[str, float]] = {}
        self.train_rows: list[dict[str, Any]] = []
        self.val_rows: list[dict[str, Any]] = []

    # ------------------------------------------------------------------ state
    def state(self) -> dict[str, Any]:
        rng = {"torch": torch.get_rng_state()}
        if torch.cuda.is_available():
            rng["cuda"] = torch.cuda.get_rng_state_all()
        return {
            "iteration": self.iteration, "seconds": self.seconds, "identity": self.identity,
            "model": self.model.state_dict(), "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict(), "rng": rng, "best": self.best,
        }

    def save_checkpoint(self) -> None:
        if not self.context.is_main:
            return
        save_checkpoint(self.folder / CHECKPOINT, self.state())
        write_csv(self.folder / "train_log.csv", self.train_log_fields, self.train_rows)
        write_csv(self.folder / "val_log.csv", VAL_LOG_FIELDS, self.val_rows)

    def load_checkpoint(self) -> None:
        path = self.folder / CHECKPOINT
        state = load_checkpoint(path)
        if state["identity"] != self.identity:
            changed = sorted(k for k in set(state["identity"]) | set(self.identity)
                             if state["identity"].get(k) != self.identity.get(k))
            raise ValueError(
                f"{path}: the checkpoint was made with different settings ({', '.join(changed)}); "
                "resume with the same config or use another --out"
            )
        self.load_state(state)
        self.train_rows = [r for r in read_csv(self.folder / "train_log.csv") if int(r["iteration"]) <= self.iteration]
        self.val_rows = [r for r in read_csv(self.folder / "val_log.csv") if int(r["iteration"]) <= self.iteration]

    def load_state(self, state: dict[str, Any]) -> None:
        """Restore what :meth:`state` gave."""
        self.model.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.scheduler.load_state_dict(state["scheduler"])
        torch.set_rng_state(state["rng"]["torch"])
        if "cuda" in state["rng"] and torch.cuda.is_available():
            torch.cuda.set_rng_state_all(state["rng"]["cuda"])
        self.iteration = int(state["iteration"])
        self.seconds = float(state["seconds"])
        self.best = state["best"]

    # ------------------------------------------------------------------ loop
    def load_selected(self) -> str:
        """Load the weights ``train.select`` chooses (the best by validation loss or PSNR, or the
        last); returns the selection."""
        selection = self.train_options["select"]
        if selection != "last":
            load_weights(self.folder / BEST_FILES[selection], self.model)
        return selection

    def outputs(self) -> dict[str, Path]:
        """Files besides the standard ones that the run's record names (``{"discriminator": path}`` for a GAN)."""
        return {}

    def curve(self) -> list[tuple[int, float]]:
        """(iteration, validation PSNR) so far."""
        return [(int(r["iteration"]), float(r["val_psnr"])) for r in self.val_rows]

    def result(self, status: str) -> RunResult:
        return RunResult(self.iteration, self.seconds, self.best, status, self.rule.predicted_gain(self.curve()))

    def run(self, *, resume: bool) -> RunResult:
        """Train for the budget, or to convergence (from the checkpoint when ``resume``)."""
        run_folder = RunFolder(self.folder)
        run_folder.claim(resume)
        if run_folder.started:
            self.load_checkpoint()
        self.folder.mkdir(parents=True, exist_ok=True)
        status = self.rule.status(self.iteration, self.curve())
        if status is not None:
            return self.result(status)
        network = self._networks()
        loader = self._loader()
        progress = self._progress()
        writer = self._tensorboard()
        self.model.train()
        started = time.perf_counter() - self.seconds
        window: list[float] = []
        try:
            for inputs, targets in loader:
                lr = self.optimizer.param_groups[0]["lr"]
                loss = self.step(inputs, targets, network)
                window.append(loss)
                self.iteration += 1
                self.seconds = time.perf_counter() - started
                progress.update(1)
                at_end = self.iteration in (self.total, self.rule.cap)
                if self.iteration % self.train_options["log_every"] == 0 or at_end:
                    means = self._log_means(window)
                    window.clear()
                    self.train_rows.append({"iteration": self.iteration, **{k: f"{v:.6g}" for k, v in means.items()},
                                            "lr": f"{lr:.6g}", "seconds": f"{self.seconds:.1f}"})
                    progress.set_postfix(loss=f"{means['loss']:.4g}", lr=f"{lr:.2g}")
                    if writer is not None:
                        for key, value in {**means, "lr": lr}.items():
                            writer.add_scalar(f"train/{key}", value, self.iteration)
                if self.iteration % self.train_options["val_every"] == 0 or at_end:
                    self._validate(writer)
                status = self.rule.status(self.iteration, self.curve())
                stop_after = self.train_options["stop_after"]
                reason = self.stop.signal_name if self.stop.requested else None
                if reason is None and stop_after is not None and self.iteration >= stop_after:
                    reason = f"train.stop_after={stop_after}"
                stopping = self.context.any(reason is not None)
                if stopping or self.iteration % self.train_options["checkpoint_every"] == 0 or status is not None:
                    self.save_checkpoint()
                    self.context.barrier()
                if status is not None:
                    return self.result(status)
                if stopping:
                    raise TrainingInterrupted(self.iteration, reason or "another process was stopped")
        finally:
            progress.close()
            if writer is not None:
                writer.close()
        raise AssertionError("unreachable: the loader ends at the cap, where the rule stops the run")

    def step(self, inputs: torch.Tensor, targets: torch.Tensor, network: nn.Module | None = None) -> float:
        """One optimisation step on a batch; returns the loss before the step.

        ``network`` is the model as trained (wrapped for DDP by :meth:`run`), the model itself by default.
        """
        network = self.model if network is None else network
        inputs, targets = self._to_device(inputs, targets)
        return self._update(self.loss_fn(network(inputs), targets))

    def phases(self) -> list[tuple[int, int]]:
        """(first iteration, iterations) of each stretch whose steps cost alike (for the estimate)."""
        return [(0, self.total)]

    def _to_device(self, *tensors: torch.Tensor) -> list[torch.Tensor]:
        return [t.to(self.context.device, non_blocking=True) for t in tensors]

    def _update(self, loss: torch.Tensor) -> float:
        """One step of the model's optimizer and scheduler on ``loss`` (checked finite); returns its value."""
        value = float(loss.detach())
        if self.context.any(not math.isfinite(value)):
            raise FloatingPointError(
                f"{self.description}: the training loss became {value} at iteration {self.iteration + 1} "
                "(lower train.optimizer.lr or set train.grad_clip)"
            )
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        if self.train_options["grad_clip"] is not None:
            torch.nn.utils.clip_grad_norm_(self.model.parameters(), self.train_options["grad_clip"])
        self.optimizer.step()
        self.scheduler.step()
        return value

    def _validate(self, writer: Any) -> None:
        if self.context.is_main and self.val_images:
            val_loss, val_psnr = validate(self.model, self.loss_fn, self.val_images, self.context.device, self.border)
            self.val_rows.append({"iteration": self.iteration, "val_loss": f"{val_loss:.6g}", "val_psnr": f"{val_psnr:.4f}"})
            for key, value, better in (("val_loss", val_loss, val_loss.__lt__), ("val_psnr", val_psnr, val_psnr.__gt__)):
                if self._selectable() and (key not in self.best or better(self.best[key]["value"])):
                    self.best[key] = {"value": value, "iteration": self.iteration}
                    save_weights(self.folder / BEST_FILES[key], self.model)
            if writer is not None:
                writer.add_scalar("val/loss", val_loss, self.iteration)
                writer.add_scalar("val/psnr", val_psnr, self.iteration)
        self.context.barrier()

    def _log_means(self, window: list[float]) -> dict[str, float]:
        """The logged means (over the last ``log_every`` iterations and the processes)."""
        return {"loss": self.context.mean(sum(window) / len(window))}

    def _selectable(self) -> bool:
        """Whether the current weights may become the best ones."""
        return True

    def _networks(self) -> nn.Module:
        """The model as trained (wrapped for DDP)."""
        return self._wrap(self.model)

    def _wrap(self, module: nn.Module) -> nn.Module:
        if not self.context.distributed:
            return module
        from torch.nn.parallel import DistributedDataParallel

        device_ids = [self.context.device.index] if self.context.device.type == "cuda" else None
        return DistributedDataParallel(module, device_ids=device_ids)

    def _loader(self) -> torch.utils.data.DataLoader:
        sampler = IterationSampler(self.iteration, self.rule.cap, self.data_options["batch_size"], self.context.rank,
                                   self.context.world_size)
        workers = self.data_options["workers"]
        return torch.utils.data.DataLoader(
            self.patches, batch_size=sampler.local, sampler=sampler, num_workers=workers,
            pin_memory=self.context.device.type == "cuda", persistent_workers=False,
        )

    def _progress(self) -> Any:
        from tqdm import tqdm

        return tqdm(total=self.rule.cap, initial=self.iteration, desc=self.description, dynamic_ncols=True,
                    disable=not (self.logging["progress"] and self.context.is_main), leave=False)

    def _tensorboard(self) -> Any:
        if not (self.logging["tensorboard"] and self.context.is_main):
            return None
        try:
            from torch.utils.tensorboard import SummaryWriter
        except ImportError as error:
            raise RuntimeError(f"logging.tensorboard: needs the tensorboard package ({error})") from None
        return SummaryWriter(log_dir=str(self.folder / "tensorboard"), purge_step=self.iteration + 1)
