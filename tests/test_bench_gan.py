"""Adversarial super-resolution: ESRGAN's networks, the relativistic loss, both phases, resume, the CLI."""

from __future__ import annotations

import json
import math
import re

import numpy as np
import pytest
import torch
from test_bench_command import read_rows
from test_bench_data import write_images
from test_bench_models import conv

from mdfloss._files import read_csv
from mdfloss.bench.config import experiment_config
from mdfloss.bench.data import EvalImage, TrainPatches
from mdfloss.bench.degradations import SuperResolution
from mdfloss.bench.distributed import Context
from mdfloss.bench.fit import CHECKPOINT, TrainingInterrupted
from mdfloss.bench.gan import (
    DISCRIMINATOR_FILE,
    GANTrainer,
    load_discriminator,
    ragan_losses,
)
from mdfloss.bench.models import RRDBNet, build_discriminator, build_model
from mdfloss.cli import main
from mdfloss.losses import build_loss

TOTAL, PRETRAIN = 5, 2


def count(module: torch.nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


def test_rrdb_paper_size_has_esrgans_parameter_count():
    # A dense block: convs k = 0..3 map 64 + 32k -> 32, the fifth 64 + 4*32 -> 64; an RRDB is 3 of them.
    dense = sum(conv(64 + 32 * k, 32, 3) for k in range(4)) + conv(64 + 4 * 32, 64, 3)
    # head, 23 RRDBs, body conv, 2 upsampling convs (x4), HR conv, output conv.
    expected = conv(3, 64, 3) + 23 * 3 * dense + conv(64, 64, 3) + 2 * conv(64, 64, 3) + conv(64, 64, 3) + conv(64, 3, 3)
    assert count(build_model("rrdb", task="sisr")) == expected == 16_697_987
    small = build_model("rrdb", task="sisr", size="small")
    out = small(torch.rand(2, 3, 6, 5))
    assert out.shape == (2, 3, 24, 20)


def test_discriminator_sizes_follow_the_vgg_layout():
    def expected(f: int, widths: list[int]) -> int:
        # 3x3 head conv (bias); per stage a bias-free 4x4 conv + BN, then (not last) a bias-free 3x3 conv + BN to
        # the next width; a 3x3 conv to one logit.
        total = conv(3, f, 3)
        for s, w in enumerate(widths):
            total += conv(w, w, 4, bias=False) + 2 * w
            if s + 1 < len(widths):
                total += conv(w, widths[s + 1], 3, bias=False) + 2 * widths[s + 1]
        return total + conv(widths[-1], 1, 3)

    paper, small = build_discriminator("paper"), build_discriminator("small")
    assert count(paper) == expected(64, [64, 128, 256, 512, 512])
    assert count(small) == expected(16, [16, 32, 64, 128])
    assert paper(torch.rand(1, 3, 128, 128)).shape == (1, 1, 4, 4)
    assert small(torch.rand(2, 3, 48, 48)).shape == (2, 1, 3, 3)


def test_start_from_input_makes_the_untrained_rrdb_a_bicubic_upsampler():
    model = RRDBNet(blocks=1, features=4, growth=2, scale=2, start_from_input=True)
    x = torch.rand(1, 3, 5, 5)
    torch.testing.assert_close(model(x), torch.nn.functional.interpolate(x, scale_factor=2, mode="bicubic"))


def test_ragan_losses_match_the_formula_on_a_hand_case():
    real, fake = torch.tensor([1.0, 3.0]), torch.tensor([0.0, 2.0])  # means: real 2, fake 1
    sigmoid = lambda z: 1 / (1 + math.exp(-z))  # noqa: E731
    # D_Ra(real, fake) = sigma(C_r - 1) for C_r in (1, 3); D_Ra(fake, real) = sigma(C_f - 2) for C_f in (0, 2).
    d_expected = 0.5 * (-(math.log(sigmoid(0)) + math.log(sigmoid(2))) / 2
                        - (math.log(1 - sigmoid(-2)) + math.log(1 - sigmoid(0))) / 2)
    g_expected = 0.5 * (-(math.log(1 - sigmoid(0)) + math.log(1 - sigmoid(2))) / 2
                        - (math.log(sigmoid(-2)) + math.log(sigmoid(0))) / 2)
    d_loss, g_loss = ragan_losses(real, fake)
    assert float(d_loss) == pytest.approx(d_expected, rel=1e-6)
    assert float(g_loss) == pytest.approx(g_expected, rel=1e-6)


def test_ragan_losses_pass_gradcheck():
    real = torch.randn(2, 1, 2, 2, dtype=torch.float64, requires_grad=True)
    fake = torch.randn(2, 1, 2, 2, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda r, f: torch.stack(ragan_losses(r, f)), (real, fake))


# ----------------------------------------------------------------------------- the trainer


def make_trainer(folder, **train):
    rng = np.random.default_rng(0)
    images = [rng.integers(0, 256, (40, 36, 3), dtype=np.uint8) for _ in range(2)]
    patches = TrainPatches(images, SuperResolution(4), patch_size=16, seed=0)
    val = [EvalImage("v.png", torch.rand(3, 4, 4, generator=torch.Generator().manual_seed(1)),
                     torch.rand(3, 16, 16, generator=torch.Generator().manual_seed(2)))]
    config = experiment_config([{"base": "sisr-rrdb"}, {
        "model": {"size": "small"}, "data": {"patch_size": 16, "batch_size": 2},
        "train": {"iters": TOTAL, "val_every": 2, "checkpoint_every": 100, "log_every": 1, "optimizer": {"lr": 1e-3},
                  "scheduler": {"type": "constant"}, **train},
        "gan": {"pretrain_iters": PRETRAIN, "discriminator": "small", "optimizer": {"lr": 5e-4},
                "scheduler": {"type": "constant"}},
        "logging": {"progress": False},
    }])
    torch.manual_seed(0)
    model = RRDBNet(blocks=1, features=4, growth=2, scale=4)
    return GANTrainer(folder=folder, model=model, loss_fn=build_loss("l2"), patches=patches, config=config,
                      total=TOTAL, identity={"loss": "l2"}, context=Context(), val_images=val, border=0)


def outcome(trainer, folder):
    drop_time = lambda rows: [{k: v for k, v in r.items() if k != "seconds"} for r in rows]  # noqa: E731
    states = {**{f"g.{k}": v for k, v in trainer.model.state_dict().items()},
              **{f"d.{k}": v for k, v in trainer.discriminator.state_dict().items()}}
    return ({k: v.clone() for k, v in states.items()}, trainer.best, drop_time(read_csv(folder / "train_log.csv")),
            read_csv(folder / "val_log.csv"))


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory):
    folder = tmp_path_factory.mktemp("gan-full")
    trainer = make_trainer(folder)
    initial_d = {k: v.clone() for k, v in trainer.discriminator.state_dict().items()}
    trainer.run(resume=False)
    return folder, trainer, initial_d, outcome(trainer, folder)


def test_the_phases_happen_at_the_configured_iterations(uninterrupted):
    folder, trainer, initial_d, _ = uninterrupted
    rows = read_csv(folder / "train_log.csv")
    assert [r["d_loss"] != "" for r in rows] == [False] * PRETRAIN + [True] * (TOTAL - PRETRAIN)
    assert [r["lr"] for r in rows] == ["0.001"] * PRETRAIN + ["0.0005"] * (TOTAL - PRETRAIN)
    assert trainer.phase == 2 and trainer.d_optimizer.state  # the discriminator was trained...
    assert not all(torch.equal(v, trainer.discriminator.state_dict()[k]) for k, v in initial_d.items())
    # ...and only adversarial weights can be selected (validation at 2 is the pre-trained network).
    assert {b["iteration"] for b in trainer.best.values()} <= {4, 5}


def test_the_discriminator_stays_untouched_during_pretraining(tmp_path, uninterrupted):
    initial_d = uninterrupted[2]
    with pytest.raises(TrainingInterrupted):
        make_trainer(tmp_path, stop_after=PRETRAIN).run(resume=False)
    state = torch.load(tmp_path / CHECKPOINT, weights_only=True)
    assert state["phase"] == 2 and state["iteration"] == PRETRAIN
    assert all(torch.equal(v, state["discriminator"][k]) for k, v in initial_d.items())


@pytest.mark.parametrize("stop", [1, 3])
def test_stop_then_resume_equals_the_uninterrupted_run(tmp_path, uninterrupted, stop):
    with pytest.raises(TrainingInterrupted, match=f"iteration {stop}"):
        make_trainer(tmp_path, stop_after=stop).run(resume=False)
    resumed = make_trainer(tmp_path)
    resumed.run(resume=True)
    expected, got = uninterrupted[3], outcome(resumed, tmp_path)
    assert expected[0].keys() == got[0].keys() and all(torch.equal(expected[0][k], got[0][k]) for k in got[0])
    assert got[1:] == expected[1:]
    for name in ("d_optimizer", "d_scheduler"):
        assert repr(getattr(resumed, name).state_dict()) == repr(getattr(uninterrupted[1], name).state_dict())


def test_the_trained_discriminator_is_saved_and_loads(uninterrupted, tmp_path):
    folder, trainer = uninterrupted[:2]
    loaded = load_discriminator(folder / DISCRIMINATOR_FILE)
    assert not loaded.training
    assert all(torch.equal(v, trainer.discriminator.state_dict()[k]) for k, v in loaded.state_dict().items())
    with pytest.raises(ValueError, match="discriminator: expected a file written by mdfloss bench"):
        from safetensors.torch import save_file

        save_file({"x": torch.zeros(1)}, tmp_path / "other.safetensors")
        load_discriminator(tmp_path / "other.safetensors")


def test_the_generator_minimises_esrgans_objective_computed_by_hand(tmp_path):
    """Phase 2: content + 0.01 L1 + 0.005 RaGAN, the real logits constant (ESRGAN's weights)."""
    import copy

    trainer = make_trainer(tmp_path)
    trainer.iteration = PRETRAIN
    trainer._start_adversarial()
    g = torch.Generator().manual_seed(7)
    inputs, targets = torch.rand(2, 3, 4, 4, generator=g), torch.rand(2, 3, 16, 16, generator=g)
    model, critic = copy.deepcopy(trainer.model), copy.deepcopy(trainer.discriminator)
    fake = model(inputs)
    with torch.no_grad():
        real_logits = critic(targets)
    fake_logits = critic(fake)
    log_sigmoid = lambda z: -torch.log1p(torch.exp(-z))  # noqa: E731
    # L_G = 1/2 (E_r[-log(1 - D_Ra(r, f))] + E_f[-log D_Ra(f, r)]), D_Ra(a, b) = sigmoid(C(a) - mean C(b))
    ragan = 0.5 * (-log_sigmoid(-(real_logits - fake_logits.mean())).mean() - log_sigmoid(fake_logits - real_logits.mean()).mean())
    expected = ((fake - targets) ** 2).mean() + 0.01 * (fake - targets).abs().mean() + 0.005 * ragan
    expected.backward()

    value = trainer.step(inputs, targets)

    assert value == pytest.approx(float(expected.detach()), rel=1e-5)
    for (name, mine), theirs in zip(model.named_parameters(), trainer.model.parameters()):
        torch.testing.assert_close(theirs.grad, mine.grad, rtol=1e-4, atol=1e-7, msg=name)


# ----------------------------------------------------------------------------- the command


def gan_args(root, out, *extra):
    return [
        "bench", "--task", "sisr", "--model", "rrdb", "--train-dir", str(root / "train"), "--val-dir",
        str(root / "val"), "--test-dir", str(root / "test"), "--iters", "3", "--losses", "l1,l2",
        "--set", "model.size=small", "--set", "model.blocks=1", "--set", "gan.discriminator=small",
        "--set", "gan.pretrain_iters=1", "--set", "data.patch_size=32", "--set", "data.batch_size=2",
        "--set", "train.val_every=2", "--set", "data.val_crop=32", "--no-progress", "--out", str(out), *extra,
    ]


@pytest.fixture(scope="module")
def images(tmp_path_factory):
    root = tmp_path_factory.mktemp("gan-data")
    write_images(root / "train", 2, (48, 40), seed=0)
    write_images(root / "val", 1, (32, 32), seed=1)
    write_images(root / "test", 1, (40, 36), seed=2)
    return root


def test_bench_trains_one_gan_per_content_loss_and_reports_them(images, tmp_path):
    assert main(gan_args(images, tmp_path)) == 0
    rows = read_rows(tmp_path / "results.csv")
    assert sorted({r["loss"] for r in rows}) == ["l1", "l2"] and {r["model"] for r in rows} == {"rrdb"}
    assert "rrdb" in (tmp_path / "report.md").read_text()
    manifest = json.loads((tmp_path / "manifest.json").read_text())
    record = manifest["experiments"]["sisr-rrdb"]["runs"]["l2"]
    assert record["selected"] == "last" and record["discriminator"] == "sisr-rrdb/l2/discriminator.safetensors"
    load_discriminator(tmp_path / record["discriminator"])


def test_estimate_times_both_phases(images, tmp_path, capsys):
    assert main(gan_args(images, tmp_path, "--estimate")) == 0
    assert re.search(r"\| sisr-rrdb \| l2 \| [0-9.]+ \| 3 \|", capsys.readouterr().out)


@pytest.mark.parametrize(("setting", "message"), [
    ("gan.pretrain_iters=3", r"gan.pretrain_iters: expected fewer than train.iters \(3\).*got 3"),
    ("gan.adversarial_weight=-1", r"gan.adversarial_weight: expected a finite number >= 0, got -1"),
    ("gan.discriminator=huge", r"gan.discriminator: expected one of \('paper', 'small'\), got 'huge'"),
    ("gan.enabled=maybe", r"gan.enabled: expected one of \(True, False\), got 'maybe'"),
    ("gan.optimizer.type=lbfgs", r"gan.optimizer.type: expected one of \['adam', 'sgd'\], got 'lbfgs'"),
])
def test_bad_gan_settings_give_one_line_errors(images, tmp_path, capsys, setting, message):
    assert main(gan_args(images, tmp_path, "--set", setting)) == 2
    error = capsys.readouterr().err.strip()
    assert len(error.splitlines()) == 1 and re.search(message, error), error


def test_gan_needs_super_resolution(images, tmp_path, capsys):
    args = ["bench", "--task", "denoise", "--model", "dncnn", "--train-dir", str(images / "train"),
            "--test-dir", str(images / "test"), "--iters", "2", "--set", "gan.enabled=true", "--out", str(tmp_path)]
    assert main(args) == 2
    assert "gan.enabled: expected task 'sisr' for adversarial training, got 'denoise'" in capsys.readouterr().err
