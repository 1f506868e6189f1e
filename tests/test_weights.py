"""The safetensors weight file: round trip, metadata, and clear errors for bad files."""

from __future__ import annotations

import json
import stat
from pathlib import Path

import pytest
import torch
from conftest import make_pyramid
from safetensors.torch import save_file

import mdfloss
from mdfloss import MDFLoss, WeightFileError, load_pyramid, read_metadata, save_pyramid
from mdfloss._files import write_atomically
from mdfloss.weights import METADATA_KEY


@pytest.fixture
def weight_file(tmp_path):
    path = tmp_path / "loss.safetensors"
    save_pyramid(path, make_pyramid([4, 6]), {"task": "denoise", "seed_image": {"name": "x.png", "sha256": "ab"}})
    return path


def test_round_trip_keeps_every_tensor_and_the_metadata(weight_file):
    pyramid, metadata = load_pyramid(weight_file)
    original = make_pyramid([4, 6])
    for name, tensor in original.state_dict().items():
        assert torch.equal(pyramid.state_dict()[name], tensor), name
    assert metadata["widths"] == [4, 6]
    assert metadata["format_version"] == 1
    assert metadata["mdfloss_version"] == mdfloss.__version__
    assert metadata["input_range"] == [-1.0, 1.0]
    assert metadata["task"] == "denoise"
    assert not pyramid.training


def test_loss_save_then_from_file_gives_the_same_values(tmp_path):
    crit = MDFLoss(make_pyramid([4, 6]), input_range=(0, 1), metadata={"task": "jpeg"})
    path = crit.save(tmp_path / "saved.safetensors")
    again = MDFLoss.from_file(path)
    assert again.input_range == (0.0, 1.0)
    assert again.metadata["task"] == "jpeg"
    x, y = torch.rand(2, 1, 3, 20, 20)
    assert torch.equal(again(x, y), crit(x, y))


def test_missing_file_raises_file_not_found(tmp_path):
    with pytest.raises(FileNotFoundError, match="expected a weight file, got .*nothing.safetensors"):
        load_pyramid(tmp_path / "nothing.safetensors")


def test_truncated_file_names_the_file_and_the_problem(weight_file, tmp_path):
    data = weight_file.read_bytes()
    cut = tmp_path / "cut.safetensors"
    cut.write_bytes(data[: len(data) // 2])
    with pytest.raises(WeightFileError, match="cut.safetensors: unreadable tensor data"):
        load_pyramid(cut)
    header_cut = tmp_path / "header.safetensors"
    header_cut.write_bytes(data[:40])
    with pytest.raises(WeightFileError, match="header.safetensors: truncated"):
        load_pyramid(header_cut)


@pytest.mark.parametrize("content", [b"", b"\x80\x02]q\x00(", bytes(range(256)) * 10], ids=["empty", "pickle", "noise"])
def test_foreign_or_corrupt_bytes_are_refused(tmp_path, content):
    path = tmp_path / "bad.safetensors"
    path.write_bytes(content)
    with pytest.raises(WeightFileError, match="bad.safetensors: "):
        load_pyramid(path)


def test_a_safetensors_file_without_mdfloss_metadata_is_refused(tmp_path):
    path = tmp_path / "foreign.safetensors"
    save_file({"w": torch.zeros(2)}, path, metadata={"other": "1"})
    with pytest.raises(WeightFileError, match="not an mdfloss weight file"):
        load_pyramid(path)


def _rewrite_metadata(path, change):
    tensors = dict(load_pyramid(path)[0].state_dict())
    metadata = read_metadata(path)
    change(metadata, tensors)
    save_file(tensors, path, metadata={METADATA_KEY: json.dumps(metadata)})


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda m, t: m.update(format_version=99), "format version 99 is not supported"),
        (lambda m, t: m.update(format="other"), "not of format 'mdfloss-weights'"),
        (lambda m, t: m.update(widths=[4, 8]), r"tensor 'discriminators.1.head.conv.weight' has shape \(6, 3, 3, 3\), expected \(8, 3, 3, 3\)"),
        (lambda m, t: m.update(widths=[4]), "unexpected"),
        (lambda m, t: m.update(widths=[4, 6, 6]), "missing"),
        (lambda m, t: m.update(widths=[]), "widths' must be a non-empty list"),
        (lambda m, t: m.update(input_range=[1, 0]), "input_range' must be"),
        (lambda m, t: t["discriminators.0.tail.bias"].fill_(float("nan")), "holds NaN or Inf"),
    ],
)
def test_inconsistent_files_name_the_problem(weight_file, change, message):
    _rewrite_metadata(weight_file, change)
    with pytest.raises(WeightFileError, match=message):
        load_pyramid(weight_file)


def test_atomic_write_leaves_the_old_file_when_writing_fails(tmp_path):
    target = tmp_path / "out.bin"
    target.write_bytes(b"old")

    def failing(temporary):
        with open(temporary, "wb") as stream:
            stream.write(b"half")
        raise RuntimeError("disk full")

    with pytest.raises(RuntimeError, match="disk full"):
        write_atomically(target, failing)
    assert target.read_bytes() == b"old"
    assert list(tmp_path.iterdir()) == [target]


@pytest.mark.parametrize(("umask", "mode"), [(0o022, 0o644), (0o002, 0o664), (0o077, 0o600)])
def test_atomic_write_gives_files_the_mode_the_umask_allows(tmp_path, monkeypatch, umask, mode):
    from mdfloss import _files

    monkeypatch.setattr(_files, "_UMASK", umask)  # read once at import; see _files._read_umask
    path = write_atomically(tmp_path / "out.bin", lambda tmp: Path(tmp).write_bytes(b"x"))
    assert stat.S_IMODE(path.stat().st_mode) == mode
