"""The main job runs end to end on a tiny setting and writes its outputs."""

from __future__ import annotations

import json

import pytest

from mdfloss import cli


def test_cli_lists_every_subcommand(capsys):
    with pytest.raises(SystemExit) as exit_info:
        cli.main(["--help"])
    assert exit_info.value.code == 0
    listed = capsys.readouterr().out
    for name in cli.COMMANDS:
        assert name in listed


def test_demo_writes_the_strip_the_curves_and_a_summary(tmp_path):
    out = tmp_path / "demo"
    assert cli.main(["demo", "--out", str(out), "--skip-training", "--steps", "4", "--size", "24"]) == 0
    summary = json.loads((out / "summary.json").read_text())
    assert summary["steps"] == 4
    psnr = summary["final_psnr_db"]
    assert "L2" in psnr and all(isinstance(v, float) for v in psnr.values())
    for name in ("strip.png", "curves.png"):
        assert (out / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_demo_refuses_a_crop_larger_than_the_image(tmp_path, capsys):
    assert cli.main(["demo", "--out", str(tmp_path), "--skip-training", "--steps", "1", "--size", "400"]) == 2
    assert "size: expected at most the image's shorter side 288, got 400" in capsys.readouterr().err


def test_the_quick_loss_trains_on_one_thread_whatever_the_default(tmp_path, monkeypatch):
    import torch

    from mdfloss import train

    seen = []

    def fake_train_loss(seed, out, **options):
        seen.append(torch.get_num_threads())
        raise RuntimeError("stop after phase 1 started")

    monkeypatch.setattr(train, "train_loss", fake_train_loss)
    before = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        assert cli.main(["demo", "--out", str(tmp_path), "--steps", "1", "--size", "24"]) == 1
        assert seen == [1] and torch.get_num_threads() == 2
    finally:
        torch.set_num_threads(before)
