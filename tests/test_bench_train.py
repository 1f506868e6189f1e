"""Training: schedules, optimizers, and a stopped run that resumes to exactly the uninterrupted result."""

from __future__ import annotations

import os
import signal

import numpy as np
import pytest
import torch
from torch import nn

from mdfloss._files import read_csv
from mdfloss.bench.config import experiment_config
from mdfloss.bench.data import EvalImage, TrainPatches
from mdfloss.bench.degradations import Denoising
from mdfloss.bench.distributed import Context, StopFlag, stop_on_signals
from mdfloss.bench.fit import (
    CHECKPOINT,
    Trainer,
    TrainingInterrupted,
    build_optimizer,
    build_scheduler,
    lr_factor,
)
from mdfloss.bench.models import DnCNN
from mdfloss.losses import build_loss

TOTAL = 6


def test_multistep_schedule_multiplies_by_gamma_at_fractions_of_the_run():
    factor = lr_factor({"type": "multistep", "milestones": [0.5, 0.8], "gamma": 0.1}, 10)
    assert [factor(i) for i in (0, 4, 5, 7, 8, 9)] == pytest.approx([1, 1, 0.1, 0.1, 0.01, 0.01])


def test_exponential_schedule_goes_from_lr_to_lr_end():
    optimizer = torch.optim.SGD([nn.Parameter(torch.zeros(1))], lr=0.1)
    scheduler = build_scheduler({"type": "exponential", "lr_end": 1e-4}, optimizer, 4, 0.1)
    rates = []
    for _ in range(4):
        rates.append(optimizer.param_groups[0]["lr"])
        optimizer.step()
        scheduler.step()
    assert rates == pytest.approx([0.1, 0.01, 0.001, 0.0001])


@pytest.mark.parametrize(
    ("options", "message"),
    [({"type": "multistep", "milestones": [2]}, "fractions"), ({"type": "cosine"}, "scheduler.type")],
)
def test_bad_schedules_are_refused(options, message):
    with pytest.raises(ValueError, match=message):
        lr_factor(options, 10)


def test_optimizers_follow_the_config():
    params = [nn.Parameter(torch.zeros(2))]
    sgd = build_optimizer({"type": "sgd", "lr": "0.1", "momentum": 0.9, "nesterov": True, "weight_decay": 1e-4}, params)
    assert isinstance(sgd, torch.optim.SGD) and sgd.defaults["nesterov"] and sgd.defaults["lr"] == 0.1
    with pytest.raises(ValueError, match="optimizer.type"):
        build_optimizer({"type": "lbfgs", "lr": 1}, params)
    with pytest.raises(ValueError, match="train.optimizer"):
        build_optimizer({"type": "adam", "lr": 1e-3, "momentum": 0.9}, params)


# ----------------------------------------------------------------------------- resume


def tiny_config(**train):
    return experiment_config([{"base": "denoise-dncnn"}, {
        "model": {"size": "small"}, "data": {"patch_size": 16, "batch_size": 2},
        "train": {"iters": TOTAL, "val_every": 2, "checkpoint_every": 100, "log_every": 1, **train},
        "logging": {"progress": False},
    }])


def make_trainer(folder, loss_fn=None, **train):
    rng = np.random.default_rng(0)
    images = [rng.integers(0, 256, (24, 20, 3), dtype=np.uint8) for _ in range(2)]
    patches = TrainPatches(images, Denoising(), patch_size=16, seed=0)
    val = [EvalImage("v.png", torch.rand(3, 16, 16, generator=torch.Generator().manual_seed(1)),
                     torch.rand(3, 16, 16, generator=torch.Generator().manual_seed(2)))]
    torch.manual_seed(0)
    model = DnCNN(depth=3, features=4)
    config = tiny_config(**train)
    return Trainer(folder=folder, model=model, loss_fn=loss_fn or build_loss("l1"), patches=patches, config=config,
                   total=TOTAL, identity={"loss": "l1"}, context=Context(), val_images=val, border=0)


def outcome(trainer: Trainer, folder):
    drop_time = lambda rows: [{k: v for k, v in r.items() if k != "seconds"} for r in rows]  # noqa: E731
    return (
        {k: v.clone() for k, v in trainer.model.state_dict().items()},
        {k: v["value"] for k, v in trainer.best.items()},
        drop_time(read_csv(folder / "train_log.csv")),
        read_csv(folder / "val_log.csv"),
    )


def assert_same(a, b):
    assert a[0].keys() == b[0].keys()
    assert all(torch.equal(a[0][k], b[0][k]) for k in a[0])
    assert a[1:] == b[1:]


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory):
    folder = tmp_path_factory.mktemp("full")
    trainer = make_trainer(folder)
    trainer.run(resume=False)
    return outcome(trainer, folder)


def test_stop_after_then_resume_equals_the_uninterrupted_run(tmp_path, uninterrupted):
    with pytest.raises(TrainingInterrupted, match="iteration 3") as stopped:
        make_trainer(tmp_path, stop_after=3).run(resume=False)
    assert stopped.value.iteration == 3
    state = torch.load(tmp_path / CHECKPOINT, weights_only=True)
    assert state["iteration"] == 3 and set(state["rng"]) >= {"torch"}
    assert [r["iteration"] for r in read_csv(tmp_path / "train_log.csv")] == ["1", "2", "3"]
    resumed = make_trainer(tmp_path)
    resumed.run(resume=True)
    assert_same(outcome(resumed, tmp_path), uninterrupted)


class SignalOnCall(nn.Module):
    """L1 loss that sends SIGTERM to this process during training call ``at``."""

    def __init__(self, at: int) -> None:
        super().__init__()
        self.at, self.calls = at, 0
        self.loss = build_loss("l1")

    def forward(self, prediction, target):
        if torch.is_grad_enabled():
            self.calls += 1
            if self.calls == self.at:
                os.kill(os.getpid(), signal.SIGTERM)
        return self.loss(prediction, target)


def test_sigterm_saves_a_checkpoint_and_resume_loses_nothing(tmp_path, uninterrupted):
    import threading

    if threading.current_thread() is not threading.main_thread():
        pytest.skip("signal handlers can only be installed from the main thread")
    flag = StopFlag()
    trainer = make_trainer(tmp_path, loss_fn=SignalOnCall(at=4))
    trainer.stop = flag
    before = signal.getsignal(signal.SIGTERM)
    with stop_on_signals(flag), pytest.raises(TrainingInterrupted, match="SIGTERM"):
        trainer.run(resume=False)
    assert signal.getsignal(signal.SIGTERM) is before  # the handler is restored
    assert torch.load(tmp_path / CHECKPOINT, weights_only=True)["iteration"] == 4
    resumed = make_trainer(tmp_path)
    resumed.run(resume=True)
    assert_same(outcome(resumed, tmp_path), uninterrupted)


def test_an_existing_checkpoint_needs_resume_and_the_same_settings(tmp_path):
    with pytest.raises(TrainingInterrupted):
        make_trainer(tmp_path, stop_after=2).run(resume=False)
    with pytest.raises(FileExistsError, match="--resume"):
        make_trainer(tmp_path).run(resume=False)
    changed = make_trainer(tmp_path)
    changed.identity = {"loss": "l2"}
    with pytest.raises(ValueError, match="different settings .loss."):
        changed.run(resume=True)


def test_a_non_finite_loss_stops_training_with_advice(tmp_path):
    class Exploding(nn.Module):
        def forward(self, prediction, target):
            return (prediction - target).abs().mean() * float("inf")

    with pytest.raises(FloatingPointError, match="grad_clip"):
        make_trainer(tmp_path, loss_fn=Exploding()).run(resume=False)


def test_best_weights_are_saved_for_both_criteria(tmp_path):
    trainer = make_trainer(tmp_path)
    result = trainer.run(resume=False)
    assert set(result.best) == {"val_loss", "val_psnr"}
    assert (tmp_path / "best-val-loss.safetensors").is_file() and (tmp_path / "best-val-psnr.safetensors").is_file()
    rows = read_csv(tmp_path / "val_log.csv")
    assert [int(r["iteration"]) for r in rows] == [2, 4, 6]
    best_loss = min(float(r["val_loss"]) for r in rows)
    assert result.best["val_loss"]["value"] == pytest.approx(best_loss, rel=1e-5)
