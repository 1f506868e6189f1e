r"""Phase 1: train a pyramid of discriminators on one seed image, coarsest scale first.

At scale k the generator restores the distorted, upsampled output of the frozen scales below::

    x_k   = d_k(up(y_{k-1}))          (x_1 = d_1(seed_1); d_k is the task distortion)
    y_k   = G_k(x_k) = x_k + tanh(...)            (residual)
    L_D   = mean D_k(y_k) - mean D_k(seed_k) + lambda_GP * GP          (WGAN-GP)
    L_G   = -mean D_k(y_k) + alpha * MSE(y_k, seed_k)

Images are in [-1, 1]; distortions see [0, 1]. Speed comes from three things (docs/training.md):

- **A bank of coarser outputs.** After scale k is trained, ``bank_size`` realisations of y_k
  (each with its own distortions through the frozen chain) are computed once on the whole
  image, upsampled to scale k + 1 and padded by 5 px (reflect). Scale k + 1 crops from them.
- **Random crops.** With ``crop`` > 0 each step trains on ``batch`` crops of ``crop`` px (the
  whole image where it is smaller); the discriminator sees 11x11 patches anyway.
- **Cheap steps.** One G forward serves the D step (detached) and the G step; the gradient
  penalty is lazy (every ``gp_every`` D steps, weighted by ``gp_every``).

Every random number comes from a ``torch.Generator`` derived from ``(rng_seed, scale,
purpose)``, so a run resumed from a checkpoint reproduces the uninterrupted run bit for bit
(same device and thread count).
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
import time
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from .._version import __version__
from ..discriminator import DiscriminatorPyramid, PatchDiscriminator, select_scales
from ..runtime import resolve_device
from ..weights import save_pyramid
from .checkpoint import load_checkpoint, save_checkpoint
from .distortions import Distortion, make_distortion
from .generator import MARGIN, ResidualGenerator, singan_init_
from .outputs import TrainingLog, write_sample_strip
from .presets import BOOKKEEPING, PRESETS, TrainSettings, resolve_settings
from .seed import (
    COARSEST_ADVISED,
    RHO,
    SeedImage,
    check_seed_size,
    default_scale_count,
    load_seed,
    seed_pyramid,
    shrink_to_max_side,
    warn_if_coarsest_is_small,
)

SAMPLE_WINDOW = 192
"""Side of the centre window shown in the per-scale sample images."""


def stream(rng_seed: int, scale: int, purpose: str) -> torch.Generator:
    """An independent CPU random stream for one (seed, scale, purpose)."""
    digest = hashlib.sha256(f"mdfloss:{rng_seed}:{scale}:{purpose}".encode()).digest()
    return torch.Generator().manual_seed(int.from_bytes(digest[:8], "little"))


def distort(distortion: Distortion, x: torch.Tensor, rng: torch.Generator) -> torch.Tensor:
    """Apply a [0, 1] distortion to a [-1, 1] batch: the input is clamped to [0, 1] first."""
    return distortion(((x + 1) / 2).clamp(0, 1), rng) * 2 - 1


def gradient_penalty(discriminator: nn.Module, real: torch.Tensor, fake: torch.Tensor,
                     rng: torch.Generator) -> torch.Tensor:
    """WGAN-GP: mean over pixels of (||grad_x D(x)||_2 over channels - 1)^2 at x = a real + (1 - a) fake."""
    mix = torch.rand(real.shape[0], 1, 1, 1, generator=rng).to(real.device)
    x = (mix * real + (1 - mix) * fake).requires_grad_(True)
    (grad,) = torch.autograd.grad(discriminator(x).sum(), x, create_graph=True)
    return (grad.norm(2, dim=1) - 1).square().mean()


def pad_margin(images: torch.Tensor) -> torch.Tensor:
    """Reflect-pad (B, 3, H, W) by the generator's 5 px margin."""
    return F.pad(images, (MARGIN,) * 4, mode="reflect")


class ScaleTrainer:
    """The adversarial training of one scale: G_k, D_k, their optimisers and one random stream.

    Args:
        scale: k, 1 = coarsest.
        reals: each seed at this scale, (1, 3, H_i, W_i) in [-1, 1].
        banks: each seed's upsampled coarser outputs, (M, 3, H_i + 10, W_i + 10) in [-1, 1].

    With several seeds, each sample of a batch comes from a seed drawn at random, so G_k and D_k
    learn from all of them; crops are then at most the smallest seed's size.
    """

    def __init__(self, scale: int, reals: list[torch.Tensor], banks: list[torch.Tensor], generator: ResidualGenerator,
                 discriminator: PatchDiscriminator, distortion: Distortion, settings: TrainSettings,
                 rng: torch.Generator) -> None:
        self.scale, self.reals, self.banks = scale, reals, banks
        self.generator, self.discriminator = generator.train(), discriminator.train()
        self.distortion, self.settings, self.rng = distortion, settings, rng
        betas = (settings.beta1, settings.beta2)
        self.optimizer_g = torch.optim.Adam(generator.parameters(), lr=settings.lr, betas=betas)
        self.optimizer_d = torch.optim.Adam(discriminator.parameters(), lr=settings.lr, betas=betas)
        self.iteration = 0

    @property
    def real(self) -> torch.Tensor:
        """The first seed at this scale."""
        return self.reals[0]

    def crop_size(self) -> tuple[int, int]:
        """``crop`` px (0: the whole image), at most the smallest seed's size at this scale."""
        height = min(real.shape[-2] for real in self.reals)
        width = min(real.shape[-1] for real in self.reals)
        if self.settings.crop == 0:
            return height, width
        return min(self.settings.crop, height), min(self.settings.crop, width)

    def sample(self) -> tuple[torch.Tensor, torch.Tensor]:
        """A batch: distorted generator inputs (B, 3, h + 10, w + 10) and the matching seed crops (B, 3, h, w)."""
        crop_h, crop_w = self.crop_size()
        count = self.settings.batch
        if len(self.reals) == 1:
            height, width = self.real.shape[-2:]
            seeds = [0] * count
            which = torch.randint(self.banks[0].shape[0], (count,), generator=self.rng).tolist()
            tops = torch.randint(height - crop_h + 1, (count,), generator=self.rng).tolist()
            lefts = torch.randint(width - crop_w + 1, (count,), generator=self.rng).tolist()
        else:
            seeds = torch.randint(len(self.reals), (count,), generator=self.rng).tolist()
            which = torch.randint(self.banks[0].shape[0], (count,), generator=self.rng).tolist()
            tops = [int(torch.randint(self.reals[i].shape[-2] - crop_h + 1, (), generator=self.rng)) for i in seeds]
            lefts = [int(torch.randint(self.reals[i].shape[-1] - crop_w + 1, (), generator=self.rng)) for i in seeds]
        inputs = torch.stack([
            self.banks[i][m, :, y : y + crop_h + 2 * MARGIN, x : x + crop_w + 2 * MARGIN]
            for i, m, y, x in zip(seeds, which, tops, lefts)
        ])
        reals = torch.stack([self.reals[i][0, :, y : y + crop_h, x : x + crop_w] for i, y, x in zip(seeds, tops, lefts)])
        return distort(self.distortion, inputs, self.rng), reals

    def learning_rate(self) -> float:
        decayed = self.iteration >= self.settings.lr_milestone()
        return self.settings.lr * (self.settings.lr_gamma if decayed else 1.0)

    def critic(self, reals: torch.Tensor, fakes: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Mean critic score of the real and of the fake batch.

        ``critic_batch="separate"`` (SinGAN) runs two passes, so BatchNorm standardises each batch
        on its own; ``"joint"`` runs one pass over both, so that the critic can see a difference in
        feature statistics (e.g. the energy that noise adds).
        """
        if self.settings.critic_batch == "joint":
            scores = self.discriminator(torch.cat([reals, fakes]))
            return scores[: reals.shape[0]].mean(), scores[reals.shape[0] :].mean()
        return self.discriminator(reals).mean(), self.discriminator(fakes).mean()

    def step(self) -> dict[str, torch.Tensor]:
        """One iteration: ``d_steps`` D steps, then ``g_steps`` G steps on the last D step's batch."""
        settings = self.settings
        for optimizer in (self.optimizer_g, self.optimizer_d):
            for group in optimizer.param_groups:
                group["lr"] = self.learning_rate()
        stats: dict[str, torch.Tensor] = {}
        self.discriminator.requires_grad_(True)
        for j in range(settings.d_steps):
            inputs, reals = self.sample()
            last = j == settings.d_steps - 1
            with torch.set_grad_enabled(last):
                fake = self.generator(inputs)
            self.optimizer_d.zero_grad(set_to_none=True)
            score_real, score_fake = self.critic(reals, fake.detach())
            loss_d = score_fake - score_real
            if (self.iteration * settings.d_steps + j) % settings.gp_every == 0:
                penalty = gradient_penalty(self.discriminator, reals, fake.detach(), self.rng)
                loss_d = loss_d + settings.gp_weight * settings.gp_every * penalty
                stats["gp"] = penalty.detach()
            loss_d.backward()
            self.optimizer_d.step()
            stats["wasserstein"] = (score_real - score_fake).detach()
        self.discriminator.requires_grad_(False)
        for j in range(settings.g_steps):
            if j > 0:
                fake = self.generator(inputs)
            self.optimizer_g.zero_grad(set_to_none=True)
            if settings.critic_batch == "joint":
                adversarial = -self.critic(reals, fake)[1]
            else:
                adversarial = -self.discriminator(fake).mean()
            reconstruction = F.mse_loss(fake, reals)
            (adversarial + settings.alpha * reconstruction).backward()
            self.optimizer_g.step()
        self.discriminator.requires_grad_(True)
        stats["adversarial"] = adversarial.detach()
        stats["reconstruction"] = reconstruction.detach()
        self.iteration += 1
        return stats

    def state_dict(self) -> dict[str, Any]:
        return {
            "scale": self.scale,
            "iteration": self.iteration,
            "generator": _cpu(self.generator.state_dict()),
            "discriminator": _cpu(self.discriminator.state_dict()),
            "optimizer_g": self.optimizer_g.state_dict(),
            "optimizer_d": self.optimizer_d.state_dict(),
            "rng": self.rng.get_state(),
        }

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        self.iteration = int(state["iteration"])
        self.generator.load_state_dict(state["generator"])
        self.discriminator.load_state_dict(state["discriminator"])
        self.optimizer_g.load_state_dict(state["optimizer_g"])
        self.optimizer_d.load_state_dict(state["optimizer_d"])
        self.rng.set_state(state["rng"])


def _cpu(state: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    return {name: tensor.detach().to("cpu").clone() for name, tensor in state.items()}


@dataclass(frozen=True)
class RunPaths:
    """Where a run writes: the weight file, and beside it (or in ``log_dir``) its companions."""

    out: Path
    log: Path
    samples: Path
    checkpoint: Path

    @classmethod
    def for_output(cls, out: str | Path, log_dir: str | Path | None = None) -> RunPaths:
        out = Path(out)
        folder = Path(log_dir) if log_dir is not None else out.parent
        stem = out.stem
        return cls(out, folder / f"{stem}.log.jsonl", folder / f"{stem}.samples", folder / f"{stem}.ckpt")


class PhaseOneTraining:
    """One run of phase 1: the scale loop, the banks between scales, checkpoints and outputs.

    ``seeds``: one seed image or several; with several, every scale's G and D learn from all.
    """

    def __init__(self, seeds: list[SeedImage], distortion: Distortion, task: str, preset: str,
                 settings: TrainSettings, paths: RunPaths, *, device: torch.device, rng_seed: int, command: str,
                 quiet: bool, scales_rule: str = "given", default_scales: list[int] | None = None) -> None:
        self.seeds, self.distortion, self.task, self.preset = seeds, distortion, task, preset
        self.settings, self.paths, self.device = settings, paths, device
        self.rng_seed, self.command, self.quiet, self.scales_rule = rng_seed, command, quiet, scales_rule
        self.default_scales = default_scales
        self.pyramids, self.trained_sizes = [], []
        for seed in seeds:
            trained = shrink_to_max_side(seed, settings.max_side or None)
            hint = f" (after --max-side {settings.max_side})" if trained is not seed else ""
            check_seed_size(trained, settings.scales, RHO, hint=hint)
            warn_if_coarsest_is_small(trained, settings.scales, RHO)
            self.trained_sizes.append(trained.size)
            self.pyramids.append([(level * 2 - 1)[None].to(device)
                                  for level in seed_pyramid(trained, settings.scales, RHO)])
        self.reals = self.pyramids[0]
        self.widths = settings.widths()

    def seed_description(self) -> dict[str, Any]:
        """The metadata's ``seed_image`` (the first seed) and, with several, ``seed_images`` (all, in order)."""
        described = {"seed_image": self.seeds[0].describe()}
        if len(self.seeds) > 1:
            described["seed_images"] = [seed.describe() for seed in self.seeds]
        return described

    # ----------------------------------------------------------------------------------------
    def fingerprint(self) -> str:
        """JSON of everything that determines the trained weights; a resume must match it."""
        settings = {k: v for k, v in self.settings.as_dict().items() if k not in BOOKKEEPING}
        return json.dumps({
            "settings": settings, "rng_seed": self.rng_seed,
            "seed_sha256": self.seeds[0].sha256 if len(self.seeds) == 1 else [seed.sha256 for seed in self.seeds],
            "distortion": {"name": self.distortion.name, "params": self.distortion.params},
        }, sort_keys=True)

    def metadata(self, wall_time_s: float) -> dict[str, Any]:
        sizes = [list(r.shape[-2:]) for r in self.reals]
        return {
            "task": self.task,
            **({"default_scales": self.default_scales} if self.default_scales is not None else {}),
            "distortion": {"name": self.distortion.name, "params": self.distortion.params},
            **self.seed_description(),
            "preset": self.preset,
            "input_range": [-1.0, 1.0],
            "source": f"mdfloss {__version__} train",
            "training": {
                **self.settings.as_dict(),
                "scales_rule": self.scales_rule, "rho": RHO, "widths": self.widths, "sizes_hw": sizes, "trained_size": list(self.trained_sizes[0]),
                "command": self.command, "rng_seed": self.rng_seed, "device": str(self.device),
                "threads": torch.get_num_threads(), "torch_version": torch.__version__,
                "wall_time_s": round(wall_time_s, 1),
            },
        }

    def say(self, message: str) -> None:
        if not self.quiet:
            print(message, file=sys.stderr, flush=True)

    # ----------------------------------------------------------------------------------------
    def new_modules(self, scale: int, previous: tuple[ResidualGenerator, PatchDiscriminator] | None
                    ) -> tuple[ResidualGenerator, PatchDiscriminator, str]:
        """G_k and D_k: copies of scale k-1's when the width is unchanged, else freshly initialised."""
        width = self.widths[scale - 1]
        generator, discriminator = ResidualGenerator(width), PatchDiscriminator(width)
        if previous is not None and previous[0].width == width:
            generator.load_state_dict(previous[0].state_dict())
            discriminator.load_state_dict(previous[1].state_dict())
            origin = "previous scale"
        else:
            rng = stream(self.rng_seed, scale, "init")
            singan_init_(generator, rng)
            singan_init_(discriminator, rng)
            if self.settings.generator_init == "identity":
                generator.zero_tail_()
            origin = "fresh"
        return generator.to(self.device), discriminator.to(self.device), origin

    def first_banks(self) -> list[torch.Tensor]:
        """Scale 1's inputs: each coarsest seed itself (padded), once per bank slot."""
        return [pad_margin(reals[0]).expand(self.settings.bank_size, -1, -1, -1).contiguous()
                for reals in self.pyramids]

    @torch.no_grad()
    def advance_banks(self, banks: list[torch.Tensor], generator: ResidualGenerator, scale: int
                      ) -> list[torch.Tensor]:
        """Run frozen G_k on every bank slot (whole image, fresh distortions) and upsample to scale k + 1."""
        rng = stream(self.rng_seed, scale, "bank")
        advanced = []
        for bank, reals in zip(banks, self.pyramids):
            size = tuple(reals[scale].shape[-2:])
            slots = []
            for slot in bank.split(1):
                output = generator(distort(self.distortion, slot, rng))
                slots.append(pad_margin(F.interpolate(output, size=size, mode="bicubic", align_corners=False)))
            advanced.append(torch.cat(slots))
        return advanced

    @torch.no_grad()
    def write_sample(self, scale: int, bank: torch.Tensor, generator: ResidualGenerator) -> None:
        """Seed | distorted input | generated, on the centre window of scale k."""
        real = self.reals[scale - 1]
        height, width = real.shape[-2:]
        h, w = min(height, SAMPLE_WINDOW), min(width, SAMPLE_WINDOW)
        top, left = (height - h) // 2, (width - w) // 2
        window = bank[:1, :, top : top + h + 2 * MARGIN, left : left + w + 2 * MARGIN]
        distorted = distort(self.distortion, window, stream(self.rng_seed, scale, "sample"))
        generated = generator(distorted)
        panels = [real[0, :, top : top + h, left : left + w], distorted[0, :, MARGIN:-MARGIN, MARGIN:-MARGIN],
                  generated[0]]
        write_sample_strip(self.paths.samples / f"scale_{scale}.png", panels)

    # ----------------------------------------------------------------------------------------
    def run(self, resume: bool) -> Path:
        paths, settings = self.paths, self.settings
        state = self.load_resume_state(resume)
        log = TrainingLog(paths.log, truncate_to=state["log_bytes"] if state else None)
        elapsed_before = float(state["elapsed_s"]) if state else 0.0
        started = time.perf_counter()

        def elapsed() -> float:
            return elapsed_before + time.perf_counter() - started

        finished: list[tuple[ResidualGenerator, PatchDiscriminator]] = []
        log.write("resume" if state else "start", command=self.command, settings=settings.as_dict(),
                  task=self.task, distortion={"name": self.distortion.name, "params": self.distortion.params},
                  **self.seed_description(), device=str(self.device), threads=torch.get_num_threads(),
                  sizes_hw=[list(r.shape[-2:]) for r in self.reals], widths=self.widths)
        self.say(f"mdfloss train: {self.task} on {', '.join(seed.name for seed in self.seeds)}, {settings.scales} scales "
                 f"{'x'.join(map(str, self.reals[0].shape[-2:]))} .. {'x'.join(map(str, self.reals[-1].shape[-2:]))}, "
                 f"widths {self.widths}, {settings.iters} iterations each"
                 + (f" ({self.scales_rule})" if self.scales_rule != "given" else ""))

        def checkpoint(current: ScaleTrainer | None) -> None:
            save_checkpoint(paths.checkpoint, {
                "fingerprint": self.fingerprint(),
                "finished": [{"generator": _cpu(g.state_dict()), "discriminator": _cpu(d.state_dict())}
                             for g, d in finished],
                "current": None if current is None else current.state_dict(),
                "elapsed_s": elapsed(), "log_bytes": log.size(), "threads": torch.get_num_threads(),
            })

        banks = self.first_banks()
        for scale in range(1, settings.scales + 1):
            previous = finished[-1] if finished else None
            generator, discriminator, origin = self.new_modules(scale, previous)
            done = state["finished"][scale - 1] if state and scale <= len(state["finished"]) else None
            if done is None:
                trainer = ScaleTrainer(scale, [reals[scale - 1] for reals in self.pyramids], banks, generator,
                                       discriminator, self.distortion, settings, stream(self.rng_seed, scale, "train"))
                current = state["current"] if state else None
                if current is not None and int(current["scale"]) == scale:
                    trainer.load_state_dict(current)
                self.train_scale(scale, trainer, origin, log, checkpoint)
            else:
                generator.load_state_dict(done["generator"])
                discriminator.load_state_dict(done["discriminator"])
            generator.eval().requires_grad_(False)
            discriminator.eval().requires_grad_(False)
            finished.append((generator, discriminator))
            if done is None:
                self.write_sample(scale, banks[0], generator)
                checkpoint(None)
            if scale < settings.scales:
                banks = self.advance_banks(banks, generator, scale)

        pyramid = DiscriminatorPyramid()
        for _, discriminator in finished:
            pyramid.append(discriminator)
        wall_time = elapsed()
        save_pyramid(paths.out, pyramid.to("cpu"), self.metadata(wall_time))
        log.write("end", out=str(paths.out), wall_time_s=round(wall_time, 2))
        log.close()
        paths.checkpoint.unlink(missing_ok=True)
        self.say(f"mdfloss train: wrote {paths.out} in {wall_time:.0f} s")
        return paths.out

    def train_scale(self, scale: int, trainer: ScaleTrainer, origin: str, log: TrainingLog,
                    checkpoint: Any) -> None:
        from tqdm import tqdm

        settings = self.settings
        height, width = trainer.real.shape[-2:]
        crop_h, crop_w = trainer.crop_size()
        log.write("scale", scale=scale, size_hw=[height, width], width=self.widths[scale - 1], init=origin,
                  crop_hw=[crop_h, crop_w], start_iteration=trainer.iteration)
        started = time.perf_counter()
        bar = tqdm(total=settings.iters, initial=trainer.iteration, disable=self.quiet, unit="it", leave=True,
                   desc=f"scale {scale}/{settings.scales} {height}x{width} w{self.widths[scale - 1]}",
                   file=sys.stderr, dynamic_ncols=True)
        with bar:
            while trainer.iteration < settings.iters:
                stats = trainer.step()
                bar.update(1)
                if trainer.iteration % settings.log_every == 0 or trainer.iteration == settings.iters:
                    values = {name: round(float(value), 6) for name, value in stats.items()}
                    log.write("iteration", scale=scale, iteration=trainer.iteration, lr=trainer.learning_rate(),
                              **values)
                    bar.set_postfix(rec=f"{values['reconstruction']:.2e}", w=f"{values['wasserstein']:.3f}")
                if trainer.iteration % settings.checkpoint_every == 0 and trainer.iteration < settings.iters:
                    checkpoint(trainer)
        log.write("scale_done", scale=scale, seconds=round(time.perf_counter() - started, 2))

    def load_resume_state(self, resume: bool) -> dict[str, Any] | None:
        path = self.paths.checkpoint
        if not path.exists():
            if resume:
                self.say(f"mdfloss train: no checkpoint at {path}; starting from scratch")
            return None
        if not resume:
            raise FileExistsError(
                f"checkpoint {path} exists from an interrupted run: pass --resume (resume=True) to continue it, "
                "or delete it to start over"
            )
        state = load_checkpoint(path)
        if state["fingerprint"] != self.fingerprint():
            saved, now = json.loads(state["fingerprint"]), json.loads(self.fingerprint())
            changed = _differences(saved, now)
            raise ValueError(f"checkpoint {path} was made with other settings ({'; '.join(changed)}); "
                             "resume with the same ones or delete the checkpoint")
        if int(state["threads"]) != torch.get_num_threads():
            warnings.warn(f"checkpoint {path} was written with {state['threads']} threads, this run uses "
                          f"{torch.get_num_threads()}: the result may differ in the last bits", stacklevel=2)
        done = len(state["finished"])
        where = f"scale {done + 1}, iteration {int(state['current']['iteration'])}" if state["current"] else \
            f"after scale {done}"
        self.say(f"mdfloss train: resuming from {path} ({where})")
        return state


def _differences(saved: Any, now: Any, prefix: str = "") -> list[str]:
    if isinstance(saved, dict) and isinstance(now, dict):
        found = []
        for key in sorted(set(saved) | set(now)):
            found += _differences(saved.get(key), now.get(key), f"{prefix}{key}.")
        return found
    return [] if saved == now else [f"{prefix.rstrip('.')}: {saved!r} then, {now!r} now"]


def train_loss(
    seed: str | Path | Sequence[str | Path],
    out: str | Path,
    task: str | None = None,
    *,
    distortion: str | Distortion | None = None,
    distortion_params: Mapping[str, Any] | None = None,
    preset: str = "fast",
    scales: int | None = None,
    iters: int | None = None,
    crop: int | None = None,
    batch: int | None = None,
    checkpoint_every: int | None = None,
    max_side: int | None = None,
    settings: Mapping[str, Any] | None = None,
    device: str | torch.device = "cpu",
    rng_seed: int = 0,
    resume: bool = False,
    quiet: bool = False,
    log_dir: str | Path | None = None,
    command: str | None = None,
    default_scales: int | Sequence[int] | None = None,
) -> Path:
    """Train an MDF loss on one seed image and write it to ``out`` (safetensors); returns ``out``.

    Args:
        seed: the seed image file, or several: every scale's discriminator then learns from all
            of them (the scales are chosen for the smallest, and crops are at most its size).
        out: the weight file to write; the log (``STEM.log.jsonl``), the sample images
            (``STEM.samples/scale_k.png``) and, while training, the checkpoint (``STEM.ckpt``)
            go beside it, or into ``log_dir``.
        task: ``"sisr"``, ``"denoise"``, ``"jpeg"`` or ``"blur"``; with ``distortion`` given, a free label.
        distortion: a registered name, ``"package.module:function"`` or a distortion object;
            defaults to ``task``. ``distortion_params`` configure it (e.g. ``{"sigma_max": 30}``).
        preset: ``"fast"`` or ``"paper"``; ``scales``, ``iters``, ``crop`` (0 = whole image),
            ``batch``, ``checkpoint_every``, ``max_side`` (0 = none) and ``settings`` (any
            :class:`TrainSettings` field) override it.
        device: where to train (``"cpu"``, ``"cuda"``).
        rng_seed: seeds every random stream; the same seed gives the same weights.
        resume: continue from the checkpoint of an interrupted run with the same settings.
        quiet: no progress bars or messages.
        command: recorded in the metadata as the command that made the file.
        default_scales: the discriminators a loss made from the file uses unless told otherwise (the
            metadata's ``default_scales``): an int ``n`` (the coarsest ``n``) or a list of indices; None = all.

    Example:
        >>> path = train_loss("photo.png", "denoise.safetensors", task="denoise")  # doctest: +SKIP
        >>> crit = MDFLoss.from_file(path)                                          # doctest: +SKIP
    """
    if task is None and distortion is None:
        raise ValueError("task: expected a task (sisr, denoise, jpeg, blur) or a distortion, got neither")
    chosen = make_distortion(distortion if distortion is not None else task, distortion_params)  # type: ignore[arg-type]
    label = task if task is not None else chosen.name
    overrides = {"scales": scales, "iters": iters, "crop": crop, "batch": batch,
                 "checkpoint_every": checkpoint_every, "max_side": max_side, **dict(settings or {})}
    resolved = resolve_settings(preset, overrides)
    paths = [seed] if isinstance(seed, (str, os.PathLike)) else list(seed)
    if not paths:
        raise ValueError("seed: expected at least one seed image, got none")
    device = resolve_device(device)
    if command is None:
        seeds = [str(path) for path in paths] if len(paths) > 1 else str(paths[0])
        arguments = ", ".join([repr(seeds), repr(str(out)), f"task={task!r}", f"distortion={distortion!r}",
                               f"preset={preset!r}", f"settings={ {k: v for k, v in overrides.items() if v is not None} !r}",
                               f"rng_seed={rng_seed!r}"])
        command = f"mdfloss.train.train_loss({arguments})"
    seed_images = [load_seed(path) for path in paths]
    scales_rule = "given"
    if scales is None and "scales" not in (settings or {}):
        trained = [shrink_to_max_side(image, resolved.max_side or None) for image in seed_images]
        count = min(default_scale_count(image, resolved.scales, RHO) for image in trained)
        if count:
            resolved = resolved.replace({"scales": count})
            scales_rule = (f"default: the most scales, at most {PRESETS[preset].scales}, whose coarsest short side "
                           f"is at least {COARSEST_ADVISED} px")
    defaults = None if default_scales is None else select_scales(default_scales, resolved.scales, "default_scales")
    run = PhaseOneTraining(seed_images, chosen, label, preset, resolved, RunPaths.for_output(out, log_dir),
                           device=device, rng_seed=rng_seed, command=command, quiet=quiet, scales_rule=scales_rule,
                           default_scales=defaults)
    return run.run(resume)

