r"""Adversarial super-resolution, ESRGAN's recipe (Wang et al. 2018) with any content loss.

Two phases of one run of ``train.iters`` iterations:

1. iterations ``[0, P)``, ``P = gan.pretrain_iters``: the generator alone minimises L1 (the
   PSNR-oriented pre-training), with ``train.optimizer`` and ``train.scheduler`` (over P);
2. iterations ``[P, train.iters)``: the generator minimises

   .. math:: \lambda_c \mathcal{L}_{content}(G(y), x) + \lambda_1 \lVert G(y) - x \rVert_1
             + \lambda_a L_G^{Ra}

   (``content_weight``, ``l1_weight``, ``adversarial_weight``; the content loss is the run's
   loss, e.g. ``mdf`` or ``l2+vgg``), then the discriminator minimises :math:`L_D^{Ra}`; both
   networks have their own ``gan.optimizer`` and ``gan.scheduler`` (over the phase's length).

The relativistic average discriminator of raw logits C is
:math:`D_{Ra}(a, b) = \sigma(C(a) - \mathbb{E}_b C(b))`, and, with ``softplus(z) = -log sigma(-z)``,

.. math:: L_D^{Ra} = \tfrac12 \big(\mathbb{E}_r\, \mathrm{sp}(-(C_r - \bar C_f)) + \mathbb{E}_f\, \mathrm{sp}(C_f - \bar C_r)\big),
          \quad L_G^{Ra} = \tfrac12 \big(\mathbb{E}_r\, \mathrm{sp}(C_r - \bar C_f) + \mathbb{E}_f\, \mathrm{sp}(-(C_f - \bar C_r))\big)

over every logit of the patch discriminator (batch and positions). The paper writes the sums;
the halves are those of ESRGAN's released training code, which its weight 0.005 goes with. In
the generator's step the real logits are constants (as in ESRGAN).

Besides what :mod:`~mdfloss.bench.fit` writes, a run's folder holds ``discriminator.safetensors``
(the trained discriminator, read by :func:`load_discriminator`), and its ``checkpoint.pt`` also
the discriminator, its optimizer and scheduler, and the phase. Validation logs the content loss
and PSNR at every ``train.val_every`` in both phases; only weights of the adversarial phase can
become ``best-val-*`` (pre-trained weights would win on PSNR and defeat the purpose), and
ESRGAN's setting tests the last weights (``train.select: last``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from .._files import existing_file, write_atomically
from ..losses import build_loss
from .fit import TRAIN_LOG_FIELDS, Trainer, build_optimizer, build_scheduler
from .models import PatchDiscriminator, build_discriminator

DISCRIMINATOR_FILE = "discriminator.safetensors"
DISCRIMINATOR_FORMAT = "mdfloss-bench-discriminator"
PARTS = ("content", "l1", "adversarial", "d_loss")
"""What the adversarial phase logs besides the generator's total loss."""


def ragan_losses(real: torch.Tensor, fake: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    r"""(:math:`L_D^{Ra}`, :math:`L_G^{Ra}`) from the discriminator's logits on real and generated images."""
    real_vs_fake = real - fake.mean()
    fake_vs_real = fake - real.mean()
    d_loss = 0.5 * (F.softplus(-real_vs_fake).mean() + F.softplus(fake_vs_real).mean())
    g_loss = 0.5 * (F.softplus(real_vs_fake).mean() + F.softplus(-fake_vs_real).mean())
    return d_loss, g_loss


def save_discriminator(path: Path, discriminator: PatchDiscriminator, iteration: int) -> None:
    """The discriminator's weights, with its architecture in the file's metadata."""
    from safetensors.torch import save_file

    tensors = {k: v.detach().cpu().contiguous() for k, v in discriminator.state_dict().items()}
    metadata = {"format": DISCRIMINATOR_FORMAT, "features": str(discriminator.features),
                "stages": str(discriminator.stages), "iteration": str(iteration)}
    write_atomically(path, lambda tmp: save_file(tensors, tmp, metadata=metadata))


def load_discriminator(path: str | Path, device: str | torch.device = "cpu") -> PatchDiscriminator:
    """A run's trained discriminator (``<run folder>/discriminator.safetensors``), in eval mode.

    >>> D = load_discriminator("runs/gan/sisr-rrdb/mdf/discriminator.safetensors")  # doctest: +SKIP
    >>> features = D.body(images)  # (N, 512, H/32, W/32) for the paper size; logits: D(images)
    """
    from safetensors import safe_open

    path = existing_file(path, "discriminator", "a discriminator file (discriminator.safetensors of a GAN run)")
    with safe_open(str(path), "pt") as stream:
        metadata = stream.metadata() or {}
        if metadata.get("format") != DISCRIMINATOR_FORMAT:
            raise ValueError(f"discriminator: expected a file written by mdfloss bench's GAN runs, got {path}")
        tensors = {key: stream.get_tensor(key) for key in stream.keys()}
    discriminator = PatchDiscriminator(features=int(metadata["features"]), stages=int(metadata["stages"]))
    discriminator.load_state_dict(tensors)
    return discriminator.to(device).eval()


class GANTrainer(Trainer):
    """:class:`~mdfloss.bench.fit.Trainer` for the two phases above; ``loss_fn`` is the content loss."""

    train_log_fields = (*TRAIN_LOG_FIELDS[:2], *PARTS, *TRAIN_LOG_FIELDS[2:])

    def outputs(self) -> dict[str, Path]:
        return {"discriminator": self.folder / DISCRIMINATOR_FILE}

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        gan = kwargs["config"]["gan"]
        self.gan = gan
        self.pretrain_iters = gan["pretrain_iters"]
        if self.pretrain_iters >= self.total:
            raise ValueError(f"gan.pretrain_iters: expected fewer than the run's {self.total} iterations, "
                             f"got {self.pretrain_iters}")
        self.l1 = build_loss("l1")
        self.discriminator = build_discriminator(gan["discriminator"]).to(self.context.device)
        self.d_network: nn.Module = self.discriminator
        adversarial = self.total - self.pretrain_iters
        self.d_optimizer = build_optimizer(gan["optimizer"], self.discriminator.parameters(), "gan.optimizer")
        self.d_scheduler = build_scheduler(gan["scheduler"], self.d_optimizer, adversarial,
                                           float(gan["optimizer"].get("lr", 0)), "gan.scheduler")
        self.phase = 1
        self.parts: dict[str, list[float]] = {key: [] for key in PARTS}
        if self.pretrain_iters == 0:
            self._start_adversarial()
        else:
            self.scheduler = build_scheduler(self.train_options["scheduler"], self.optimizer, self.pretrain_iters,
                                             float(self.train_options["optimizer"].get("lr", 0)))

    def _start_adversarial(self) -> None:
        """Phase 2 (from the end of iteration P): the generator gets a fresh ``gan.optimizer`` and ``gan.scheduler``."""
        self.phase = 2
        options = self.gan["optimizer"]
        self.optimizer = build_optimizer(options, self.model.parameters(), "gan.optimizer")
        self.scheduler = build_scheduler(self.gan["scheduler"], self.optimizer, self.total - self.pretrain_iters,
                                         float(options.get("lr", 0)), "gan.scheduler")

    # ------------------------------------------------------------------ state
    def state(self) -> dict[str, Any]:
        return {**super().state(), "phase": self.phase, "discriminator": self.discriminator.state_dict(),
                "d_optimizer": self.d_optimizer.state_dict(), "d_scheduler": self.d_scheduler.state_dict()}

    def load_state(self, state: dict[str, Any]) -> None:
        if state["phase"] == 2 and self.phase == 1:
            self._start_adversarial()
        super().load_state(state)
        self.discriminator.load_state_dict(state["discriminator"])
        self.d_optimizer.load_state_dict(state["d_optimizer"])
        self.d_scheduler.load_state_dict(state["d_scheduler"])

    def save_checkpoint(self) -> None:
        super().save_checkpoint()
        if self.context.is_main and self.iteration == self.total:
            save_discriminator(self.folder / DISCRIMINATOR_FILE, self.discriminator, self.iteration)

    # ------------------------------------------------------------------ steps
    def phases(self) -> list[tuple[int, int]]:
        return [(start, count) for start, count in ((0, self.pretrain_iters),
                                                    (self.pretrain_iters, self.total - self.pretrain_iters)) if count]

    def step(self, inputs: torch.Tensor, targets: torch.Tensor, network: nn.Module | None = None) -> float:
        """One iteration of the current phase; returns the generator's loss before the step."""
        network = self.model if network is None else network
        inputs, targets = self._to_device(inputs, targets)
        if self.iteration < self.pretrain_iters:
            value = self._update(self.l1(network(inputs), targets))
            if self.iteration + 1 == self.pretrain_iters:
                self._start_adversarial()
            return value
        fake = network(inputs)
        self.discriminator.requires_grad_(False)
        with torch.no_grad():
            real_logits = self.discriminator(targets)
        _, adversarial = ragan_losses(real_logits, self.discriminator(fake))
        self.discriminator.requires_grad_(True)
        content, l1 = self.loss_fn(fake, targets), self.l1(fake, targets)
        value = self._update(self.gan["content_weight"] * content + self.gan["l1_weight"] * l1
                             + self.gan["adversarial_weight"] * adversarial)
        d_loss, _ = ragan_losses(self.d_network(targets), self.d_network(fake.detach()))
        self.d_optimizer.zero_grad(set_to_none=True)
        d_loss.backward()
        self.d_optimizer.step()
        self.d_scheduler.step()
        for key, part in zip(PARTS, (content, l1, adversarial, d_loss)):
            self.parts[key].append(float(part.detach()))
        return value

    def _log_means(self, window: list[float]) -> dict[str, float]:
        means = super()._log_means(window)
        if self.context.any(any(self.parts.values())):  # adversarial steps in this window
            means.update((key, self.context.mean(sum(v) / len(v))) for key, v in self.parts.items())
        for values in self.parts.values():
            values.clear()
        return means

    def _selectable(self) -> bool:
        return self.iteration > self.pretrain_iters

    def _networks(self) -> nn.Module:
        self.d_network = self._wrap(self.discriminator)
        return super()._networks()


def make_trainer(**kwargs: Any) -> Trainer:
    """A :class:`GANTrainer` when ``config["gan"]["enabled"]``, else a plain :class:`~mdfloss.bench.fit.Trainer`."""
    return (GANTrainer if kwargs["config"]["gan"]["enabled"] else Trainer)(**kwargs)
