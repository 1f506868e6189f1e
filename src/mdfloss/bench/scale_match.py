r"""Scale-matched losses, ``A@B``: loss A multiplied by the constant that gives it B's gradient scale.

.. math:: c = \frac{\operatorname{mean}_k \lVert \nabla_\theta B(f_\theta(x_k), y_k) \rVert_2}
                   {\operatorname{mean}_k \lVert \nabla_\theta A(f_\theta(x_k), y_k) \rVert_2}

over the first :data:`BATCHES` training batches of the run, with the network's parameters
:math:`\theta` at initialisation, before any step. Under Adam, which normalises each parameter's
step by its gradient's running magnitude, ``c A`` trains almost exactly as A; under SGD with a
fixed learning rate, the rate multiplies the gradient, so ``A@B`` is the fair comparison with B.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Callable, Sequence
from pathlib import Path

import torch
from torch import nn

from .._files import write_atomically
from .data import TrainPatches

BATCHES = 4
CONSTANT_FILE = "loss_scale.json"


def first_batches(patches: TrainPatches, batch_size: int, count: int = BATCHES) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """The run's first ``count`` training batches (iterations 0 .. count - 1), as training draws them."""
    batches = []
    for iteration in range(count):
        samples = [patches[iteration * batch_size + j] for j in range(batch_size)]
        batches.append((torch.stack([s[0] for s in samples]), torch.stack([s[1] for s in samples])))
    return batches


def mean_gradient_norm(loss_fn: nn.Module, model: nn.Module,
                       batches: Sequence[tuple[torch.Tensor, torch.Tensor]]) -> float:
    """Mean over ``batches`` of the L2 norm of d loss / d parameters (``model`` is left as it was)."""
    network = copy.deepcopy(model)  # batch-norm statistics and gradients stay out of the real model
    network.train()
    device = next(network.parameters()).device
    parameters = [p for p in network.parameters() if p.requires_grad]
    norms = []
    for inputs, targets in batches:
        loss = loss_fn(network(inputs.to(device)), targets.to(device))
        gradients = torch.autograd.grad(loss, parameters, allow_unused=True)
        squares = sum(float(g.pow(2).sum()) for g in gradients if g is not None)
        norms.append(squares ** 0.5)
    return sum(norms) / len(norms)


def scale_constant(loss_fn: nn.Module, reference: nn.Module, model: nn.Module,
                   batches: Sequence[tuple[torch.Tensor, torch.Tensor]]) -> float:
    """:math:`c`: the reference loss's mean gradient norm over the loss's (module docstring)."""
    own = mean_gradient_norm(loss_fn, model, batches)
    if not own > 0:
        raise ValueError(f"scale matching: the loss has a zero gradient at initialisation ({own}); nothing to scale")
    return mean_gradient_norm(reference, model, batches) / own


def kept_constant(folder: Path, reference: str, measure: Callable[[], float], *, write: bool = True) -> float:
    """A run's constant: read from ``folder/loss_scale.json``, else measured (before any step) and
    written there (when ``write``), so that a resumed run uses the value its first steps used."""
    path = folder / CONSTANT_FILE
    if path.is_file():
        return float(json.loads(path.read_text(encoding="utf-8"))["constant"])
    constant = measure()
    if write:
        text = json.dumps({"constant": constant, "reference": reference, "batches": BATCHES}, indent=1)
        folder.mkdir(parents=True, exist_ok=True)
        write_atomically(path, lambda tmp: Path(tmp).write_text(text, encoding="utf-8"))
    return constant
