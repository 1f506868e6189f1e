"""HaarPSI, DSS and MDSI against the values of their authors' MATLAB code on the reference images
of ``../shared/data/iqa-reference`` (values and tolerances from that folder's README, which records
them from piq's tests). Without the folder the tests skip, and fail under CI."""

from __future__ import annotations

import pytest
import torch
from conftest import shared_path

from mdfloss.metrics.dss import dss
from mdfloss.metrics.haarpsi import haarpsi
from mdfloss.metrics.mdsi import mdsi

# TID2013 image 1 with additive Gaussian noise (level 5) against its reference; goldhill's JPEG
TID = ("i01_01_5.bmp", "I01.BMP")
GOLDHILL = ("goldhill_jpeg.gif", "goldhill.gif")


def read(name: str, mode: str) -> torch.Tensor:
    """(1, C, H, W) float64 on [0, 255] of a reference image read by Pillow in ``mode`` ("RGB"/"L")."""
    image_module = pytest.importorskip("PIL.Image", reason="Pillow is needed to read the reference images")
    with image_module.open(shared_path("data", "iqa-reference", name)) as im:
        im = im.convert(mode)
        data = torch.frombuffer(bytearray(im.tobytes()), dtype=torch.uint8)
        return data.reshape(im.height, im.width, len(mode)).permute(2, 0, 1)[None].double()


def pair(names: tuple[str, str], mode: str) -> tuple[torch.Tensor, torch.Tensor]:
    """(distorted, reference)."""
    return read(names[0], mode), read(names[1], mode)


def grey_as_rgb(names: tuple[str, str]) -> tuple[torch.Tensor, torch.Tensor]:
    x, y = pair(names, "L")
    return x.expand(-1, 3, -1, -1), y.expand(-1, 3, -1, -1)


def matlab_grey(x: torch.Tensor) -> torch.Tensor:
    """MATLAB's ``rgb2gray`` weights, truncated to integers (uint8)."""
    weights = torch.tensor([0.2989, 0.5870, 0.1140], dtype=x.dtype).view(1, 3, 1, 1)
    return (x * weights).sum(dim=1, keepdim=True).floor()


def test_haarpsi_tid_pair() -> None:
    x, y = pair(TID, "RGB")
    assert haarpsi(x, y, data_range=255).item() == pytest.approx(0.71706527, abs=1e-4)


def test_dss_goldhill_grey() -> None:
    x, y = pair(GOLDHILL, "L")
    assert dss(x, y, data_range=255).item() == pytest.approx(0.45217181, abs=1e-3)


def test_dss_tid_pair_in_matlab_grey() -> None:
    x, y = pair(TID, "RGB")
    assert dss(matlab_grey(x), matlab_grey(y), data_range=255).item() == pytest.approx(0.77177436, abs=1e-4)


@pytest.mark.parametrize(
    "combination, tid, goldhill",
    [("sum", 0.338972600511665, 0.395910876130775), ("mult", 0.258002917257516, 0.328692181289061)],
)
def test_mdsi_distorted_first(combination: str, tid: float, goldhill: float) -> None:
    x, y = pair(TID, "RGB")
    assert mdsi(x, y, data_range=255, combination=combination).item() == pytest.approx(tid, abs=1e-12)
    x, y = grey_as_rgb(GOLDHILL)
    assert mdsi(x, y, data_range=255, combination=combination).item() == pytest.approx(goldhill, abs=1e-12)
