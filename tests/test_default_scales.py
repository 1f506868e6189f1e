"""A weight file's ``default_scales``: the discriminators a loss uses unless told otherwise."""

from __future__ import annotations

import pytest
from conftest import make_pyramid

from mdfloss import MDFLoss, read_metadata, save_pyramid
from mdfloss.weights import WeightFileError


def test_saving_a_loss_on_some_scales_records_them_and_loading_honours_them(tmp_path):
    path = save_pyramid(tmp_path / "all.safetensors", make_pyramid([4, 4, 4]), {"task": "sisr"})
    assert MDFLoss.from_file(path).scale_indices == [0, 1, 2]
    MDFLoss.from_file(path, scales=2).save(tmp_path / "two.safetensors")
    assert read_metadata(tmp_path / "two.safetensors")["default_scales"] == [0, 1]
    assert MDFLoss.from_file(tmp_path / "two.safetensors").scale_indices == [0, 1]
    assert MDFLoss.from_file(tmp_path / "two.safetensors", scales=[2]).scale_indices == [2]  # explicit wins
    assert MDFLoss.from_file(tmp_path / "two.safetensors", scales=None).scale_indices == [0, 1, 2]
    MDFLoss.from_file(tmp_path / "two.safetensors", scales=None).save(tmp_path / "again.safetensors")
    assert "default_scales" not in read_metadata(tmp_path / "again.safetensors")


def test_the_shipped_sisr_loss_defaults_to_its_three_coarsest_scales():
    assert MDFLoss.pretrained("sisr").scale_indices == [0, 1, 2]
    assert len(MDFLoss.pretrained("sisr", scales=None).scale_indices) == 8


@pytest.mark.parametrize("default", [[], [0, 0], [3], [-1], "all", [0.5]])
def test_a_bad_default_is_refused_naming_the_key(tmp_path, default):
    path = save_pyramid(tmp_path / "bad.safetensors", make_pyramid([4, 4, 4]), {"task": "sisr", "default_scales": default})
    with pytest.raises(WeightFileError, match="'default_scales' must be distinct indices of the 3"):
        MDFLoss.from_file(path)
