"""Phase-1 training: generator, settings, an end-to-end tiny run, determinism and resume."""

from __future__ import annotations

import hashlib
import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from safetensors.torch import load_file

from mdfloss import MDFLoss, read_metadata
from mdfloss.cli import main as cli_main
from mdfloss.discriminator import official_widths
from mdfloss.train import PRESETS, TrainSettings, resolve_settings, train_loss
from mdfloss.train.generator import MARGIN, ResidualGenerator, singan_init_

# 3 scales on a 64x48 seed: 12x16, 24x32, 48x64. Narrow networks keep each run well under a second.
TINY = {"width": 8, "bank_size": 2, "log_every": 2}
TINY_ARGS = dict(scales=3, iters=6, crop=16, batch=2, settings=TINY, quiet=True)


@pytest.fixture(scope="module")
def seed_file(tmp_path_factory) -> Path:
    rng = np.random.default_rng(0)
    y, x = np.mgrid[0:48, 0:64]
    base = np.stack([np.sin(x / 4.0), np.cos(y / 6.0), np.sin((x - y) / 5.0)], axis=-1) * 0.35 + 0.5
    array = ((base + rng.normal(0, 0.05, base.shape)).clip(0, 1) * 255).round().astype(np.uint8)
    path = tmp_path_factory.mktemp("seed") / "tiny-seed.png"
    Image.fromarray(array).save(path)
    return path


def tensors(path: Path) -> dict[str, torch.Tensor]:
    return load_file(str(path))


def assert_same_weights(a: Path, b: Path) -> None:
    first, second = tensors(a), tensors(b)
    assert first.keys() == second.keys()
    for name in first:
        assert torch.equal(first[name], second[name]), name


def test_generator_maps_a_margin_extended_input_to_its_centre_and_starts_as_identity():
    generator = ResidualGenerator(8).zero_tail_()
    x = torch.rand(2, 3, 20 + 2 * MARGIN, 17 + 2 * MARGIN) * 2 - 1
    out = generator(x)
    assert out.shape == (2, 3, 20, 17)
    assert torch.equal(out, x[..., MARGIN:-MARGIN, MARGIN:-MARGIN])
    singan_init_(generator, torch.Generator().manual_seed(0))
    assert not torch.equal(generator(x), x[..., MARGIN:-MARGIN, MARGIN:-MARGIN])
    with pytest.raises(ValueError, match="margin"):
        generator(torch.rand(1, 3, 10, 30))


def test_singan_init_draws_from_the_given_generator():
    a, b = ResidualGenerator(4), ResidualGenerator(4)
    singan_init_(a, torch.Generator().manual_seed(5))
    singan_init_(b, torch.Generator().manual_seed(5))
    for (name, p), q in zip(a.state_dict().items(), b.state_dict().values()):
        assert torch.equal(p, q), name
    assert abs(a.body[0].conv.weight.std().item() - 0.02) < 0.004
    assert torch.equal(a.head.norm.bias, torch.zeros(4))


def test_settings_follow_singan_and_the_spec():
    paper = PRESETS["paper"]
    assert paper.widths() == official_widths(8) == [32, 32, 32, 32, 64, 64, 64, 64]
    assert (paper.iters, paper.lr, paper.beta1, paper.beta2, paper.alpha, paper.gp_weight) == (
        3000, 5e-4, 0.5, 0.999, 100.0, 0.1)
    assert (paper.d_steps, paper.g_steps, paper.lr_milestone()) == (3, 3, 2400)
    assert TrainSettings(scales=10).widths()[-2:] == [128, 128]
    fast = resolve_settings("fast", {"iters": "50", "crop": None})
    assert fast.iters == 50 and fast.crop == PRESETS["fast"].crop and fast.lr_milestone() == 40
    with pytest.raises(ValueError, match="crop"):
        resolve_settings("fast", {"crop": 5})
    with pytest.raises(ValueError, match="unknown setting"):
        resolve_settings("fast", {"lerning_rate": 1})
    with pytest.raises(ValueError, match="critic_batch"):
        resolve_settings("fast", {"critic_batch": "both"})
    with pytest.raises(ValueError, match="preset"):
        resolve_settings("slow")


def test_tiny_run_writes_a_loadable_loss_with_metadata_log_and_samples(seed_file, tmp_path):
    out = train_loss(seed_file, tmp_path / "tiny.safetensors", "denoise", rng_seed=3, **TINY_ARGS)
    crit = MDFLoss.from_file(out)
    assert len(crit.pyramid) == 3 and crit.input_range == (-1.0, 1.0)
    x = torch.rand(1, 3, 24, 24)
    assert crit(x, x).item() == 0 and crit((x + 0.1).clamp(0, 1), x).item() > 0
    meta = read_metadata(out)
    assert meta["task"] == "denoise" and meta["preset"] == "fast"
    assert meta["distortion"] == {"name": "denoise", "params": {"sigma_min": 0.0, "sigma_max": 55.0}}
    assert meta["seed_image"]["name"] == "tiny-seed.png" and meta["seed_image"]["size"] == [64, 48]
    assert len(meta["seed_image"]["sha256"]) == 64
    training = meta["training"]
    assert training["iters"] == 6 and training["crop"] == 16 and training["width"] == 8
    assert training["rng_seed"] == 3 and training["device"] == "cpu" and training["wall_time_s"] >= 0
    assert training["sizes_hw"] == [[12, 16], [24, 32], [48, 64]]
    assert training["command"].startswith("mdfloss.train.train_loss(")
    assert meta["input_range"] == [-1.0, 1.0] and meta["mdfloss_version"]
    events = [json.loads(line) for line in (tmp_path / "tiny.log.jsonl").read_text().splitlines()]
    assert events[0]["event"] == "start" and events[-1]["event"] == "end"
    iterations = [e for e in events if e["event"] == "iteration"]
    assert [e["iteration"] for e in iterations if e["scale"] == 1] == [2, 4, 6]
    assert all(np.isfinite(e["reconstruction"]) and np.isfinite(e["wasserstein"]) for e in iterations)
    for scale in (1, 2, 3):
        with Image.open(tmp_path / "tiny.samples" / f"scale_{scale}.png") as sample:
            assert sample.mode == "RGB" and sample.height >= 96
    assert not (tmp_path / "tiny.ckpt").exists()


def test_paper_preset_runs_whole_images_with_three_d_and_g_steps(seed_file, tmp_path):
    out = train_loss(seed_file, tmp_path / "paper.safetensors", "sisr", preset="paper", scales=2, iters=2,
                     settings={"width": 4, "bank_size": 2}, quiet=True)
    training = read_metadata(out)["training"]
    assert (training["crop"], training["d_steps"], training["g_steps"], training["critic_batch"]) == (
        0, 3, 3, "separate")
    events = [json.loads(line) for line in (tmp_path / "paper.log.jsonl").read_text().splitlines()]
    assert [e["crop_hw"] for e in events if e["event"] == "scale"] == [[24, 32], [48, 64]]


def test_same_rng_seed_gives_identical_weights_and_another_seed_does_not(seed_file, tmp_path):
    a = train_loss(seed_file, tmp_path / "a.safetensors", "jpeg", rng_seed=1, **TINY_ARGS)
    b = train_loss(seed_file, tmp_path / "b.safetensors", "jpeg", rng_seed=1, **TINY_ARGS)
    c = train_loss(seed_file, tmp_path / "c.safetensors", "jpeg", rng_seed=2, **TINY_ARGS)
    assert_same_weights(a, b)
    assert not torch.equal(tensors(a)["discriminators.0.tail.weight"], tensors(c)["discriminators.0.tail.weight"])


def test_plugin_distortion_is_recorded_in_the_metadata(seed_file, tmp_path, monkeypatch):
    (tmp_path / "tiny_plugin.py").write_text("def dim(batch, generator, gain=0.5):\n    return batch * gain\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    out = train_loss(seed_file, tmp_path / "p.safetensors", distortion="tiny_plugin:dim",
                     distortion_params={"gain": 0.7}, **{**TINY_ARGS, "scales": 2, "iters": 2})
    meta = read_metadata(out)
    assert meta["task"] == "tiny_plugin:dim"
    assert meta["distortion"] == {"name": "tiny_plugin:dim", "params": {"gain": 0.7}}


def test_too_small_seed_and_missing_task_are_refused(seed_file, tmp_path):
    with pytest.raises(ValueError, match=r"at least 88 px.*allows is 3"):
        train_loss(seed_file, tmp_path / "x.safetensors", "sisr", **{**TINY_ARGS, "scales": 4})
    with pytest.raises(ValueError, match="after --max-side 40"):
        train_loss(seed_file, tmp_path / "x.safetensors", "sisr", max_side=40, **TINY_ARGS)
    with pytest.raises(ValueError, match="task"):
        train_loss(seed_file, tmp_path / "x.safetensors")


def test_cli_reports_bad_input_without_a_traceback(seed_file, tmp_path, capsys):
    code = cli_main(["train", "--distortion", "nowhere_module:f", "--seed", str(seed_file),
                     "--out", str(tmp_path / "x.safetensors"), "--quiet"])
    assert code == 2
    assert "cannot import module 'nowhere_module'" in capsys.readouterr().err


def test_an_interrupted_checkpoint_must_be_resumed_with_the_same_settings(seed_file, tmp_path, monkeypatch):
    from mdfloss.train.checkpoint import load_checkpoint
    from mdfloss.train.trainer import ScaleTrainer

    out = tmp_path / "r.safetensors"
    original_step = ScaleTrainer.step

    def failing_step(self):
        if self.iteration == 4 and self.real.shape[-1] == 32:
            raise KeyboardInterrupt
        return original_step(self)

    monkeypatch.setattr(ScaleTrainer, "step", failing_step)
    with pytest.raises(KeyboardInterrupt):
        train_loss(seed_file, out, "denoise", checkpoint_every=2, **TINY_ARGS)
    monkeypatch.setattr(ScaleTrainer, "step", original_step)
    state = load_checkpoint(tmp_path / "r.ckpt")
    assert len(state["finished"]) == 1 and int(state["current"]["iteration"]) == 4
    with pytest.raises(FileExistsError, match="--resume"):
        train_loss(seed_file, out, "denoise", checkpoint_every=2, **TINY_ARGS)
    with pytest.raises(ValueError, match="iters: 6 then, 7 now"):
        train_loss(seed_file, out, "denoise", checkpoint_every=2, resume=True, **{**TINY_ARGS, "iters": 7})
    resumed = train_loss(seed_file, out, "denoise", checkpoint_every=2, resume=True, **TINY_ARGS)
    straight = train_loss(seed_file, tmp_path / "s.safetensors", "denoise", **TINY_ARGS)
    assert_same_weights(resumed, straight)


def run_cli(args: list[str]) -> subprocess.Popen:
    env = dict(os.environ, PYTHONPATH=str(Path(__file__).resolve().parents[1] / "src"))
    return subprocess.Popen([sys.executable, "-m", "mdfloss.cli", "train", *args], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


@pytest.mark.slow
def test_sigkill_then_resume_gives_the_weights_of_an_uninterrupted_run(seed_file, tmp_path):
    common = ["--task", "denoise", "--seed", str(seed_file), "--scales", "3", "--iters", "40", "--crop", "16",
              "--batch", "2", "--set", "width=8", "--set", "bank_size=2", "--checkpoint-every", "3",
              "--threads", "1", "--rng-seed", "7", "--quiet"]
    killed_out = tmp_path / "killed.safetensors"
    process = run_cli([*common, "--out", str(killed_out)])
    checkpoint = tmp_path / "killed.ckpt"
    deadline = time.monotonic() + 120
    while not checkpoint.exists() and process.poll() is None and time.monotonic() < deadline:
        time.sleep(0.02)
    assert process.poll() is None, "the run ended before it could be killed"
    assert checkpoint.exists()
    process.send_signal(signal.SIGKILL)
    process.wait()
    assert process.returncode == -signal.SIGKILL and not killed_out.exists()

    resumed = run_cli([*common, "--out", str(killed_out), "--resume"])
    straight = run_cli([*common, "--out", str(tmp_path / "straight.safetensors")])
    for p in (resumed, straight):
        _, err = p.communicate(timeout=300)
        assert p.returncode == 0, err.decode()
    assert_same_weights(killed_out, tmp_path / "straight.safetensors")
    events = [json.loads(line)["event"] for line in (tmp_path / "killed.log.jsonl").read_text().splitlines()]
    assert events[0] == "start" and "resume" in events and events[-1] == "end"
    assert read_metadata(killed_out)["training"]["command"].startswith("mdfloss train --task denoise")


@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device")
def test_training_runs_on_cuda(seed_file, tmp_path):
    out = train_loss(seed_file, tmp_path / "cuda.safetensors", "jpeg", device="cuda", **TINY_ARGS)
    assert read_metadata(out)["training"]["device"] == "cuda"
    MDFLoss.from_file(out)


def test_without_scales_the_trainer_chooses_them_and_records_the_rule(seed_file, tmp_path):
    """The 48x64 seed keeps one scale at >= 25 px (48 / 2 = 24 would be under): 1 scale, not 8."""
    args = {key: value for key, value in TINY_ARGS.items() if key != "scales"}
    out = train_loss(seed_file, tmp_path / "auto.safetensors", "denoise", **args)
    training = read_metadata(out)["training"]
    assert training["scales"] == 1 and training["sizes_hw"] == [[48, 64]]
    assert training["scales_rule"].startswith("default: the most scales, at most 8")
    given = train_loss(seed_file, tmp_path / "given.safetensors", "denoise", **TINY_ARGS)
    assert read_metadata(given)["training"]["scales_rule"] == "given"


def test_several_seeds_are_all_learnt_from_and_listed_in_the_metadata(seed_file, tmp_path):
    other = tmp_path / "other-seed.png"
    Image.fromarray(np.full((40, 56, 3), 180, np.uint8)).save(other)
    out = tmp_path / "two.safetensors"
    assert cli_main(["train", "--task", "denoise", "--seed", str(seed_file), "--seed", str(other), "--out", str(out),
                 "--scales", "1", "--iters", "4", "--crop", "16", "--batch", "4", "--quiet"]) == 0
    metadata = read_metadata(out)
    assert [s["name"] for s in metadata["seed_images"]] == ["tiny-seed.png", "other-seed.png"]
    assert metadata["seed_images"][1]["sha256"] == hashlib.sha256(other.read_bytes()).hexdigest()
    assert metadata["seed_image"] == metadata["seed_images"][0]


def test_a_batch_of_several_seeds_draws_from_each_within_the_smallest_size():
    from mdfloss.discriminator import PatchDiscriminator
    from mdfloss.train.distortions import make_distortion
    from mdfloss.train.trainer import ScaleTrainer

    reals = [torch.full((1, 3, 20, 30), -0.5), torch.full((1, 3, 14, 18), 0.5)]
    banks = [torch.zeros(2, 3, h + 2 * MARGIN, w + 2 * MARGIN) for h, w in ((20, 30), (14, 18))]
    settings = resolve_settings("fast", {"crop": 16, "batch": 8})
    trainer = ScaleTrainer(1, reals, banks, ResidualGenerator(8), PatchDiscriminator(8),
                           make_distortion("sisr", None), settings, torch.Generator().manual_seed(0))
    assert trainer.crop_size() == (14, 16)
    seen = set()
    for _ in range(4):
        inputs, batch = trainer.sample()
        assert batch.shape == (8, 3, 14, 16) and inputs.shape == (8, 3, 14 + 2 * MARGIN, 16 + 2 * MARGIN)
        seen |= {float(v) for v in batch.flatten(1).mean(dim=1)}
    assert seen == {-0.5, 0.5}


def critic_gaps(path: Path, seed: Path, sigma: float = 0.1) -> list[float]:
    """Per scale (coarsest first): mean critic score of the seed at that scale minus that of a noisy copy."""
    from mdfloss.train.seed import load_seed, seed_pyramid

    pyramid = MDFLoss.from_file(path).pyramid.eval()
    reals = seed_pyramid(load_seed(seed), len(pyramid.discriminators))
    gaps = []
    for discriminator, real in zip(pyramid.discriminators, reals):
        real = real.reshape(1, *real.shape[-3:])
        noisy = (real + sigma * torch.randn(real.shape, generator=torch.Generator().manual_seed(5))).clamp(0, 1)
        with torch.no_grad():
            gaps.append(float(discriminator(real).mean() - discriminator(noisy).mean()))
    return gaps


def test_phase_one_teaches_every_discriminator_to_score_clean_above_distorted(seed_file, tmp_path):
    # WGAN critics: after training they score the real seed above the distorted generator inputs
    args = {**TINY_ARGS, "iters": 1}
    untrained = critic_gaps(train_loss(seed_file, tmp_path / "one.safetensors", "denoise", rng_seed=3, **args), seed_file)
    args["iters"] = 30
    trained = critic_gaps(train_loss(seed_file, tmp_path / "thirty.safetensors", "denoise", rng_seed=3, **args), seed_file)
    assert all(after > before + 0.01 for before, after in zip(untrained, trained)), (untrained, trained)


def test_train_records_the_default_scales_a_loss_then_uses(seed_file, tmp_path):
    out = tmp_path / "coarsest.safetensors"
    assert cli_main(["train", "--task", "denoise", "--seed", str(seed_file), "--out", str(out), "--scales", "2",
                     "--default-scales", "1", "--iters", "2", "--crop", "16", "--batch", "2", "--quiet"]) == 0
    assert read_metadata(out)["default_scales"] == [0]
    assert MDFLoss.from_file(out).scale_indices == [0]
    picked = train_loss(seed_file, tmp_path / "picked.safetensors", "denoise", default_scales=[1], **TINY_ARGS)
    assert read_metadata(picked)["default_scales"] == [1]


@pytest.mark.parametrize(("given", "message"), [("3", r"default_scales: expected an int in \[1, 2\], got 3"),
                                                ("0,5", r"default_scales\[1\]: expected an int in \[0, 1\], got 5")])
def test_a_default_outside_the_pyramid_is_refused_before_training(seed_file, tmp_path, capsys, given, message):
    out = tmp_path / "never.safetensors"
    code = cli_main(["train", "--task", "denoise", "--seed", str(seed_file), "--out", str(out), "--scales", "2",
                     "--default-scales", given, "--iters", "2", "--quiet"])
    assert code == 2 and not out.exists()
    assert re.search(message, capsys.readouterr().err)


def test_default_scales_on_the_command_line_must_be_numbers(seed_file, tmp_path, capsys):
    with pytest.raises(SystemExit):
        cli_main(["train", "--task", "denoise", "--seed", str(seed_file), "--out", str(tmp_path / "x.safetensors"),
                  "--default-scales", "coarse"])
    assert "expected N or comma-separated indices like 0,1,2, got 'coarse'" in capsys.readouterr().err
