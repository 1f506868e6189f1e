"""A user's own loss, network and degradation in a benchmark, each named ``package.module:attribute``.

* a loss (a label in ``losses``): a class or factory, called with ``loss_options.<attribute>``
  (none by default), returning a module or function of ``(output, target)`` that gives a scalar;
* a network (``model.type``): called as ``build(task=..., scale=..., **other model options)``,
  returning an ``nn.Module`` from (N, 3, h, w) inputs to (N, 3, h * scale, w * scale) outputs;
* a degradation (``degradation.plugin``): ``f(batch, generator, **degradation.params)``, the
  signature of ``mdfloss train --distortion``, for the same-size tasks (``denoise``, ``jpeg``).

Each is imported and tried on a small input when the experiment is set up, so a wrong import,
call, output shape or dtype is one :class:`ValueError` or :class:`TypeError` naming the plugin
(the CLI's exit code 2), before anything trains.
"""

from __future__ import annotations

import importlib
import importlib.metadata
import re
from collections.abc import Callable
from typing import Any

import numpy as np
import torch
from torch import nn

from .._plugins import load_object
from ..train.distortions import make_distortion
from .degradations import Condition, Degradation, build_degradation, stable_seed, to_tensor

PLUGIN = re.compile(r"[A-Za-z_][\w.]*:[A-Za-z_][\w.]*")
PROBE_SIDE = 16
"""Side of the random images a plugin is tried on."""


def is_plugin(name: str) -> bool:
    """Whether ``name`` reads ``package.module:attribute`` (``mdf:...`` names a weight file instead)."""
    return bool(PLUGIN.fullmatch(name)) and not name.lower().startswith("mdf:")


def plugin_record(spec: str) -> dict[str, Any]:
    """What the manifest records of a plugin: its spec and its module's (or package's) version."""
    module = importlib.import_module(spec.partition(":")[0])
    version = getattr(module, "__version__", None)
    if version is None:
        try:
            version = importlib.metadata.version(module.__name__.partition(".")[0])
        except importlib.metadata.PackageNotFoundError:
            version = None
    return {"spec": spec, "version": None if version is None else str(version)}


class PluginLoss(nn.Module):
    """A user's loss ``fn(output, target)``; every value it returns is checked to be a finite scalar."""

    higher_is_better = False

    def __init__(self, spec: str, function: Callable[[torch.Tensor, torch.Tensor], torch.Tensor]) -> None:
        super().__init__()
        self.spec = spec
        self.function = function

    def forward(self, output: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        value = self.function(output, target)
        where = f"loss plugin {self.spec!r}"
        if not isinstance(value, torch.Tensor):
            raise TypeError(f"{where}: expected a torch.Tensor from (output, target), got {type(value).__name__}")
        if value.numel() != 1:
            raise ValueError(f"{where}: expected a scalar, got a tensor of shape {tuple(value.shape)}")
        if not value.is_floating_point():
            raise TypeError(f"{where}: expected a floating-point value, got {value.dtype}")
        if not torch.isfinite(value).all():
            raise ValueError(f"{where}: returned {float(value)}")
        return value.reshape(())


def build_plugin_loss(spec: str, options: dict[str, Any] | None = None) -> PluginLoss:
    """The loss ``spec`` names, made with ``options`` and tried on a random pair (it must give a gradient)."""
    factory = load_object(spec, "loss")
    try:
        function = factory(**(options or {}))
    except Exception as error:
        raise ValueError(f"loss plugin {spec!r}: calling it with {options or 'no arguments'} failed "
                         f"({type(error).__name__}: {error})") from None
    if not callable(function):
        raise TypeError(f"loss plugin {spec!r}: expected it to return a module or function of (output, target), "
                        f"got {type(function).__name__}")
    loss = PluginLoss(spec, function)
    generator = torch.Generator().manual_seed(0)
    output = torch.rand(2, 3, PROBE_SIDE, PROBE_SIDE, generator=generator, requires_grad=True)
    target = torch.rand(2, 3, PROBE_SIDE, PROBE_SIDE, generator=generator)
    value = _call(loss, spec, output, target)
    if not value.requires_grad:
        raise ValueError(f"loss plugin {spec!r}: its value does not depend on the output through autograd "
                         "(no gradient to train with)")
    return loss


def build_plugin_model(spec: str, *, task: str, scale: int, options: dict[str, Any]) -> nn.Module:
    """The network ``spec`` builds for ``task`` at ``scale``, tried on a random input."""
    factory = load_object(spec, "model")
    try:
        model = factory(task=task, scale=scale, **options)
    except Exception as error:
        raise ValueError(f"model plugin {spec!r}: calling it with task={task!r}, scale={scale}"
                         f"{''.join(f', {k}={v!r}' for k, v in options.items())} failed "
                         f"({type(error).__name__}: {error})") from None
    if not isinstance(model, nn.Module):
        raise TypeError(f"model plugin {spec!r}: expected an nn.Module, got {type(model).__name__}")
    probe = torch.rand(1, 3, PROBE_SIDE, PROBE_SIDE, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        output = _call(model, spec, probe)
    expected = (1, 3, PROBE_SIDE * scale, PROBE_SIDE * scale)
    if not isinstance(output, torch.Tensor) or tuple(output.shape) != expected:
        got = tuple(output.shape) if isinstance(output, torch.Tensor) else type(output).__name__
        raise ValueError(f"model plugin {spec!r}: expected an output of shape {expected} for an input of shape "
                         f"{tuple(probe.shape)}, got {got}")
    if output.dtype != probe.dtype:
        raise TypeError(f"model plugin {spec!r}: expected a {probe.dtype} output, got {output.dtype}")
    return model


def _call(function: Callable[..., Any], spec: str, *inputs: torch.Tensor) -> Any:
    try:
        return function(*inputs)
    except (TypeError, ValueError) as error:
        if str(error).startswith(("loss plugin", "model plugin")):
            raise
        raise ValueError(f"plugin {spec!r} failed on inputs of shape {tuple(inputs[0].shape)} "
                         f"({type(error).__name__}: {error})") from None
    except Exception as error:
        raise ValueError(f"plugin {spec!r} failed on inputs of shape {tuple(inputs[0].shape)} "
                         f"({type(error).__name__}: {error})") from None


class PluginDegradation(Degradation):
    """A user's distortion ``f(batch, generator, **params)`` as a same-size benchmark task.

    Training pairs draw from the sample's generator; validation and test use one condition,
    ``custom``, whose generator is seeded with the image's name, so every run sees the same inputs.
    """

    scale = 1

    def __init__(self, task: str, spec: str, params: dict[str, Any] | None = None) -> None:
        if task not in ("denoise", "jpeg"):
            raise ValueError(f"degradation.plugin: expected a same-size task (denoise or jpeg), got task {task!r}")
        self.task = task
        self.spec = spec
        self.params = dict(params or {})
        self.distortion = make_distortion(spec, self.params)
        self._apply(np.zeros((PROBE_SIDE, PROBE_SIDE, 3), np.uint8), torch.Generator().manual_seed(0))

    def settings(self) -> dict[str, Any]:
        return {"plugin": self.spec, "params": self.params}

    def _apply(self, image: np.ndarray, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
        clean = to_tensor(image)
        return self.distortion(clean.unsqueeze(0), generator)[0], clean

    def train_pair(self, patch: np.ndarray, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
        return self._apply(patch, generator)

    def eval_conditions(self, split: str) -> list[Condition]:
        return [Condition("custom", dict(self.params))]

    def eval_pair(self, image: np.ndarray, condition: Condition, image_name: str) -> tuple[torch.Tensor, torch.Tensor]:
        return self._apply(image, torch.Generator().manual_seed(stable_seed(self.spec, image_name, condition.name)))


def make_degradation(task: str, options: dict[str, Any]) -> Degradation:
    """The config's ``degradation:``: with ``plugin`` (and ``params``) a user's distortion, else the task's own."""
    if "plugin" not in options:
        return build_degradation(task, options)
    unknown = sorted(set(options) - {"plugin", "params"})
    if unknown:
        raise ValueError(f"degradation: a plugin takes 'plugin' and 'params', got also {unknown}")
    return PluginDegradation(task, options["plugin"], options.get("params"))
