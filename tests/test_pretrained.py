"""The shipped losses match what PROVENANCE.md says of them: file hash, command, seed."""

from __future__ import annotations

import hashlib
import re
from importlib import resources

import pytest

from mdfloss import MDFLoss, pretrained_names, read_metadata

FOLDER = resources.files("mdfloss.pretrained")
ROW = re.compile(r"^\| `(?P<file>\w+\.safetensors)` \|.*\| `(?P<sha>[0-9a-f]{64})` \|.*\| `(?P<command>mdfloss train [^`]+)` \|$")


def provenance_rows() -> dict[str, dict[str, str]]:
    text = (FOLDER / "PROVENANCE.md").read_text(encoding="utf-8")
    return {m["file"]: m.groupdict() for m in map(ROW.match, text.splitlines()) if m}


def test_every_shipped_loss_has_a_provenance_row():
    assert sorted(provenance_rows()) == sorted(f"{name}.safetensors" for name in pretrained_names())


@pytest.mark.parametrize("name", pretrained_names())
def test_shipped_file_hash_command_and_seed_match_the_provenance(name):
    row = provenance_rows()[f"{name}.safetensors"]
    with resources.as_file(FOLDER / f"{name}.safetensors") as path:
        assert hashlib.sha256(path.read_bytes()).hexdigest() == row["sha"]
        metadata = read_metadata(path)
    assert metadata["training"]["command"] == row["command"]
    seed = re.search(r"\*\*Seed image:\*\* `(?P<name>[^`]+)`.* sha256 `(?P<sha>[0-9a-f]{64})`",
                     (FOLDER / "PROVENANCE.md").read_text(encoding="utf-8"))
    assert (metadata["seed_image"]["name"], metadata["seed_image"]["sha256"]) == (seed["name"], seed["sha"])
    scales = re.search(r"--scales (\d+)", row["command"])
    # without --scales: 8, the default when these files were trained (PROVENANCE.md says so)
    assert len(MDFLoss.pretrained(name, scales=None).scale_indices) == (int(scales[1]) if scales else 8)
