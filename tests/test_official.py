"""Safe import of the authors' discriminators: values, conversion, and refusal of hostile pickles.

The oracle reads the authors' files with ``torch.load`` (after checking their SHA-256 against
SHA256SUMS, and with a stand-in ``SinGAN.models`` whose classes have no code), which shares no
code with :mod:`mdfloss.official`; its forward pass is written here with ``F.conv2d`` /
``F.batch_norm`` / ``F.leaky_relu``, following gfxdisp/mdf ``mdfloss.py``.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import io
import json
import os
import pickle
import subprocess
import sys
import types
import warnings
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from conftest import make_pyramid, shared_path
from PIL import Image, ImageFilter
from torch import nn

from mdfloss import MDFLoss, cli, save_pyramid
from mdfloss.discriminator import official_widths
from mdfloss.official import UnsafePickleError, load_official

OFFICIAL_FILES = ["Ds_SISR.pth", "Ds_JPEG.pth", "loss_modules_Ds_stone_1000.pth", "loss_modules_Ds_forest.pth"]
OFFICIAL_SCALES = 8  # gfxdisp/mdf mdfloss.py: forward(x, y, num_scales=8)


def official(name: str) -> Path:
    return shared_path("anchors", "mdf-official", name)


# --- the oracle: torch.load with code-free SinGAN classes, and the authors' forward pass ------


@contextlib.contextmanager
def singan_stand_in():
    """``SinGAN.models`` with empty ConvBlock / WDiscriminator classes, so torch.load can run."""
    package, models = types.ModuleType("SinGAN"), types.ModuleType("SinGAN.models")
    for name, base in (("ConvBlock", nn.Sequential), ("WDiscriminator", nn.Module)):
        cls = type(name, (base,), {"__module__": "SinGAN.models"})
        setattr(models, name, cls)
    package.models = models
    with pytest.MonkeyPatch.context() as patch, warnings.catch_warnings():
        warnings.simplefilter("ignore")  # torch's notes about the 2020 module sources
        patch.setitem(sys.modules, "SinGAN", package)
        patch.setitem(sys.modules, "SinGAN.models", models)
        yield


def torch_load_checked(path: Path) -> list[nn.Module]:
    """torch.load of a file whose SHA-256 is listed in the anchor's SHA256SUMS."""
    sums = dict(line.split()[::-1] for line in (path.parent / "SHA256SUMS").read_text().splitlines())
    assert hashlib.sha256(path.read_bytes()).hexdigest() == sums[path.name]
    return torch.load(path, map_location="cpu", weights_only=False)


@functools.cache
def authors_modules(name: str) -> tuple[nn.Module, ...]:
    with singan_stand_in():
        return tuple(torch_load_checked(official(name)))


def authors_layers(module: nn.Module, dtype: torch.dtype) -> list[tuple]:
    """(conv weight, conv bias, running mean, running var, gamma, beta, eps, slope) per block + tail."""
    blocks = []
    for block in (module.head, *module.body):
        conv, norm = block.conv, block.norm
        tensors = (conv.weight, conv.bias, norm.running_mean, norm.running_var, norm.weight, norm.bias)
        blocks.append((*(t.detach().to(dtype) for t in tensors), norm.eps, block.LeakyRelu.negative_slope))
    return [*blocks, (module.tail.weight.detach().to(dtype), module.tail.bias.detach().to(dtype))]


def authors_features(x: torch.Tensor, layers: list[tuple]) -> list[torch.Tensor]:
    """WDiscriminator.forward(x, is_loss=True): head output, body output, tail map."""
    h = x
    outputs = []
    for weight, bias, mean, var, gamma, beta, eps, slope in layers[:-1]:
        h = F.conv2d(h, weight, bias)
        h = F.batch_norm(h, mean, var, gamma, beta, training=False, eps=eps)
        h = F.leaky_relu(h, slope)
        outputs.append(h)
    tail = F.conv2d(h, *layers[-1])
    return [outputs[0], outputs[-1], tail]


def authors_loss(x: torch.Tensor, y: torch.Tensor, name: str, num_scales: int = OFFICIAL_SCALES) -> torch.Tensor:
    """gfxdisp/mdf MDFLoss.forward without the batch mean: (N,) per-sample sums."""
    total = torch.zeros(x.shape[0], dtype=x.dtype)
    for module in authors_modules(name)[:num_scales]:
        layers = authors_layers(module, x.dtype)
        for fx, fy in zip(authors_features(x, layers), authors_features(y, layers)):
            total = total + ((fx - fy) ** 2).mean(dim=(1, 2, 3))
    return total


# --- test images: i10.png and distortions of it ----------------------------------------------


def to_tensor(image: Image.Image) -> torch.Tensor:
    return torch.from_numpy(np.asarray(image.convert("RGB"), dtype=np.float64) / 255).permute(2, 0, 1)


@functools.cache
def i10_and_distortions() -> tuple[torch.Tensor, torch.Tensor]:
    """target (1, 3, 384, 512) and predictions (4, 3, 384, 512): noise, blur, JPEG q10, 1 - x; float64."""
    image = Image.open(official("i10.png")).convert("RGB")
    target = to_tensor(image)
    noise = (target + 0.1 * torch.randn(target.shape, generator=torch.Generator().manual_seed(0),
                                        dtype=torch.float64)).clamp(0, 1)
    buffer = io.BytesIO()
    image.save(buffer, format="JPEG", quality=10)
    jpeg = to_tensor(Image.open(buffer))
    blur = to_tensor(image.filter(ImageFilter.GaussianBlur(2)))
    return target[None], torch.stack([noise, blur, jpeg, 1 - target])


def crop_pair(size: int, top: int = 150, left: int = 220, dtype=torch.float32):
    target, predictions = i10_and_distortions()
    window = (..., slice(top, top + size), slice(left, left + size))
    predictions = predictions[window].to(dtype)
    return predictions, target[window].to(dtype).expand_as(predictions).contiguous()


# --- the loaded tensors are the authors' tensors ------------------------------------------------


def authors_state(module: nn.Module) -> dict[str, torch.Tensor]:
    renamed = {"body.block1.": "body.0.", "body.block2.": "body.1.", "body.block3.": "body.2."}
    state = {}
    for name, tensor in module.state_dict().items():
        for old, new in renamed.items():
            name = name.replace(old, new)
        state[name] = tensor
    return state


def assert_same_tensors(pyramid, modules) -> None:
    assert len(pyramid) == len(modules)
    for discriminator, module in zip(pyramid.discriminators, modules):
        expected, loaded = authors_state(module), discriminator.state_dict()
        assert sorted(loaded) == sorted(expected)
        for name in expected:
            assert loaded[name].dtype == expected[name].dtype, name
            assert torch.equal(loaded[name], expected[name]), name


@pytest.mark.parametrize("name", OFFICIAL_FILES)
def test_loaded_tensors_equal_torch_load(name):
    pyramid, metadata = load_official(official(name))
    assert len(pyramid) == {"Ds_JPEG.pth": 8}.get(name, 9)
    assert_same_tensors(pyramid, authors_modules(name))
    assert pyramid.widths == official_widths(len(pyramid))
    assert not pyramid.training
    sums = dict(line.split()[::-1] for line in (official(name).parent / "SHA256SUMS").read_text().splitlines())
    assert metadata["official_file"] == {"name": name, "sha256": sums[name]}
    assert metadata["input_range"] == [0.0, 1.0]
    assert metadata["license"] == "BSD-3-Clause (c) 2021 Graphics and Displays group, University of Cambridge"
    assert metadata["source"] == "gfxdisp/mdf official weights, BSD-3-Clause, converted by mdfloss"
    expected_task = {"Ds_SISR.pth": "sisr", "Ds_JPEG.pth": "jpeg"}.get(name)
    assert metadata.get("task") == expected_task


@pytest.mark.parametrize("zip_format", [True, False], ids=["zip", "legacy"])
def test_resaved_file_loads(tmp_path, zip_format):
    """A copy re-saved with today's torch.save (zip by default, or legacy) gives the same tensors."""
    resaved = tmp_path / "Ds_JPEG_resaved.pth"
    with singan_stand_in():
        modules = torch_load_checked(official("Ds_JPEG.pth"))
        torch.save(modules, resaved, _use_new_zipfile_serialization=zip_format)
    assert zipfile.is_zipfile(resaved) == zip_format
    pyramid, metadata = load_official(resaved)
    assert_same_tensors(pyramid, authors_modules("Ds_JPEG.pth"))
    assert metadata["task"] == "jpeg"


# --- the loss equals the authors' loss -----------------------------------------------------------


@pytest.mark.parametrize("name", ["Ds_SISR.pth", "Ds_JPEG.pth"])
def test_official_loss_value_float32(name):
    predictions, target = crop_pair(64)
    crit = MDFLoss.from_official(official(name), features="official", scales=OFFICIAL_SCALES)
    expected = authors_loss(target, predictions, name)
    with torch.no_grad():
        assert torch.allclose(crit(predictions, target), expected.mean(), rtol=1e-5, atol=0)
        crit.reduction = "none"
        torch.testing.assert_close(crit(predictions, target), expected, rtol=1e-5, atol=0)


@pytest.mark.parametrize("name", ["Ds_SISR.pth", "Ds_JPEG.pth"])
def test_official_loss_value_float64(name):
    predictions, target = crop_pair(40, dtype=torch.float64)
    crit = MDFLoss.from_official(official(name), features="official", scales=OFFICIAL_SCALES,
                                 reduction="none").double()
    with torch.no_grad():
        torch.testing.assert_close(crit(predictions, target), authors_loss(target, predictions, name),
                                   rtol=1e-10, atol=0)


def test_official_loss_with_minus_one_one_input_range():
    predictions, target = crop_pair(48)
    crit = MDFLoss.from_official(official("Ds_SISR.pth"), features="official", scales=OFFICIAL_SCALES,
                                 input_range=(-1, 1), reduction="none")
    expected = authors_loss(2 * target - 1, 2 * predictions - 1, "Ds_SISR.pth")
    with torch.no_grad():
        torch.testing.assert_close(crit(predictions, target), expected, rtol=1e-5, atol=0)
        assert not torch.allclose(expected, authors_loss(target, predictions, "Ds_SISR.pth"), rtol=1e-2)


@pytest.mark.slow
def test_official_loss_value_full_size():
    target, predictions = i10_and_distortions()
    prediction, target = predictions[2:3].float(), target.float()  # JPEG quality 10, 512 x 384
    crit = MDFLoss.from_official(official("Ds_JPEG.pth"), features="official", scales=OFFICIAL_SCALES)
    with torch.no_grad():
        loss = crit(prediction, target)
    # At full size the features of x and y nearly cancel and float32 loses ~1e-4 relative, so
    # float32 results are judged against the float64 value: mdfloss must be at least as close to
    # it as the direct float32 implementation is (the float64 paths agree to 1e-10 above).
    reference = authors_loss(target.double(), prediction.double(), "Ds_JPEG.pth").mean()
    direct = authors_loss(target, prediction, "Ds_JPEG.pth").mean().double()
    tolerance = max(2 * abs(direct - reference).item(), 1e-5 * reference.item())
    assert abs(loss.double() - reference).item() <= tolerance


def test_official_loss_on_device(device):
    predictions, target = crop_pair(40, dtype=torch.float64)
    crit = MDFLoss.from_official(official("Ds_JPEG.pth"), features="official", scales=OFFICIAL_SCALES,
                                 reduction="none").double().to(device)
    with torch.no_grad():
        loss = crit(predictions.to(device), target.to(device))
    assert loss.device.type == torch.device(device).type
    torch.testing.assert_close(loss.cpu(), authors_loss(target, predictions, "Ds_JPEG.pth"), rtol=1e-10, atol=0)


# --- mdfloss convert ------------------------------------------------------------------------------


def test_convert_then_from_file_gives_identical_values(tmp_path, capsys):
    output = tmp_path / "sisr.safetensors"
    assert cli.main(["convert", str(official("Ds_SISR.pth")), "-o", str(output)]) == 0
    summary = capsys.readouterr().out.strip()
    assert len(summary.splitlines()) == 1
    assert "9 scales" in summary and str(official_widths(9)) in summary
    assert hashlib.sha256(output.read_bytes()).hexdigest() in summary
    assert not list(tmp_path.glob(".*.tmp"))

    options = dict(features="official", scales=OFFICIAL_SCALES, reduction="none")
    converted = MDFLoss.from_file(output, **options)
    direct = MDFLoss.from_official(official("Ds_SISR.pth"), **options)
    assert converted.input_range == direct.input_range == (0.0, 1.0)
    assert converted.metadata["official_file"] == direct.metadata["official_file"]
    assert converted.metadata["license"] == direct.metadata["license"]
    assert converted.metadata["task"] == "sisr"
    assert_same_tensors(converted.pyramid, authors_modules("Ds_SISR.pth"))
    predictions, target = crop_pair(32)
    with torch.no_grad():
        assert torch.equal(converted(predictions, target), direct(predictions, target))


def test_convert_reports_errors(tmp_path, capsys):
    missing = tmp_path / "Ds_missing.pth"
    assert cli.main(["convert", str(missing), "-o", str(tmp_path / "out.safetensors")]) == 2
    assert str(missing) in capsys.readouterr().err
    bad = tmp_path / "bad.pth"
    bad.write_bytes(b"")
    assert cli.main(["convert", str(bad), "-o", str(bad)]) == 2
    assert "overwrite the input" in capsys.readouterr().err
    assert not (tmp_path / "out.safetensors").exists()


# --- hostile pickles are refused before anything runs -------------------------------------------


class Payload:
    """Pickles as ``function(*args)``: what a hostile .pth does on torch.load."""

    def __init__(self, function, args):
        self.function, self.args = function, args

    def __reduce__(self):
        return self.function, self.args


OS_SYSTEM = f"{os.system.__module__}.system"  # posix.system on Linux and macOS


def payloads(marker: Path) -> dict[str, Payload]:
    return {
        OS_SYSTEM: Payload(os.system, (f"touch {marker}",)),
        "eval": Payload(eval, (f"__import__('pathlib').Path({str(marker)!r}).touch()",)),
        "subprocess.Popen": Payload(subprocess.Popen, (["touch", str(marker)],)),
    }


HOSTILE_GLOBALS = [OS_SYSTEM, "eval", "subprocess.Popen"]


@pytest.mark.parametrize("zip_format", [True, False], ids=["zip", "legacy"])
@pytest.mark.parametrize("global_name", HOSTILE_GLOBALS)
def test_torch_saved_payload_is_refused(tmp_path, global_name, zip_format):
    marker = tmp_path / "marker"
    path = tmp_path / "Ds_evil.pth"
    # the payload sits after a real tensor, so allowed globals come first
    torch.save([torch.ones(3), payloads(marker)[global_name]], path, _use_new_zipfile_serialization=zip_format)
    with pytest.raises(UnsafePickleError, match=global_name.replace(".", r"\.")) as caught:
        load_official(path)
    assert str(path) in str(caught.value)
    assert isinstance(caught.value, ValueError)
    assert not marker.exists()


@pytest.mark.parametrize("zip_format", [True, False], ids=["zip", "legacy"])
def test_payload_files_are_really_hostile(tmp_path, zip_format):
    """The same kind of file does run its command under torch.load(weights_only=False)."""
    marker = tmp_path / "marker"
    path = tmp_path / "Ds_evil.pth"
    torch.save([payloads(marker)[OS_SYSTEM]], path, _use_new_zipfile_serialization=zip_format)
    torch.load(path, weights_only=False)
    assert marker.exists()


def write(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path


def hostile_pickle(module: str, name: str, argument: str) -> bytes:
    """Protocol-4 pickle of ``module.name(argument)`` written opcode by opcode."""
    def text(value: str) -> bytes:
        encoded = value.encode()
        return pickle.SHORT_BINUNICODE + bytes([len(encoded)]) + encoded

    return (pickle.PROTO + b"\x04" + text(module) + text(name) + pickle.STACK_GLOBAL
            + text(argument) + pickle.TUPLE1 + pickle.REDUCE + pickle.STOP)


def legacy_container(body: bytes) -> bytes:
    header = [pickle.dumps(value, protocol=2) for value in
              (0x1950A86A20F9469CFC6C, 1001, {"protocol_version": 1001, "little_endian": True})]
    return b"".join(header) + body + pickle.dumps([], protocol=2)


def zip_container(body: bytes) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("archive/data.pkl", body)
        archive.writestr("archive/byteorder", "little")
    return buffer.getvalue()


@pytest.mark.parametrize("container", [legacy_container, zip_container, lambda body: body],
                         ids=["legacy", "zip", "bare"])
@pytest.mark.parametrize(("module", "name"), [
    ("os", "system"),
    ("posix", "system"),
    ("builtins", "eval"),
    ("builtins", "getattr"),
    ("subprocess", "Popen"),
    ("torch._utils", "_rebuild_tensor_v2.__globals__"),
    ("SinGAN.models", "WDiscriminator.__init__"),
    ("torch", "load"),
])
def test_hand_written_payload_is_refused(tmp_path, container, module, name):
    marker = tmp_path / "marker"
    path = tmp_path / "Ds_evil.pth"
    path.write_bytes(container(hostile_pickle(module, name, f"touch {marker}")))
    with pytest.raises(UnsafePickleError) as caught:
        load_official(path)
    assert caught.value.global_name == f"{module}.{name}"
    assert f"'{module}.{name}'" in str(caught.value) and str(path) in str(caught.value)
    assert not marker.exists()


@pytest.mark.parametrize(("module", "name"), [
    ("torch._utils", "_rebuild_tensor_v2"),
    ("collections", "OrderedDict"),
    ("SinGAN.models", "WDiscriminator"),
])
def test_pickle_cannot_set_attributes_on_allowed_globals(tmp_path, module, name):
    """BUILD with slot state would run setattr(global, '__defaults__' / '__setstate__', ...)."""
    from mdfloss.official import reader as official_module

    before = official_module._rebuild_tensor.__defaults__
    state = pickle.dumps((None, {"__defaults__": (1,), "__setstate__": None}), protocol=2)[2:-1]
    body = pickle.PROTO + b"\x02" + pickle.GLOBAL + f"{module}\n{name}\n".encode() + state + pickle.BUILD + pickle.STOP
    path = write(tmp_path / "Ds_build.pth", legacy_container(body))
    with pytest.raises(ValueError, match="Ds_build.pth") as caught:
        load_official(path)
    assert not isinstance(caught.value, UnsafePickleError)
    assert official_module._rebuild_tensor.__defaults__ == before
    assert official_module._MODULE_TYPES["SinGAN.models.WDiscriminator"].__setstate__ is (
        official_module._PickledModule.__setstate__)


# --- damaged or foreign files -----------------------------------------------------------------------


@pytest.mark.parametrize(("make", "problem"), [
    (lambda data: data[: len(data) // 2], "truncated"),  # inside the storage records
    (lambda data: data[:5000], "pickle"),  # inside the module pickle
    (lambda data: data[:-1], "truncated"),
])
def test_truncated_official_file(tmp_path, make, problem):
    path = write(tmp_path / "Ds_JPEG.pth", make(official("Ds_JPEG.pth").read_bytes()))
    with pytest.raises(ValueError, match=problem) as caught:
        load_official(path)
    assert str(path) in str(caught.value)
    assert not isinstance(caught.value, UnsafePickleError)


def test_truncated_zip_file(tmp_path):
    resaved = tmp_path / "resaved.pth"
    with singan_stand_in():
        torch.save(torch_load_checked(official("Ds_JPEG.pth")), resaved)
    path = write(tmp_path / "Ds_cut.pth", resaved.read_bytes()[:-3000])
    with pytest.raises(ValueError, match="Ds_cut.pth"):
        load_official(path)


@pytest.mark.parametrize(("data", "problem"), [
    (b"", "empty"),
    (np.random.default_rng(0).integers(0, 256, 4096, dtype=np.uint8).tobytes(), "neither"),
    (pickle.dumps({"not": "torch"}, protocol=2), "magic"),
])
def test_foreign_bytes(tmp_path, data, problem):
    path = write(tmp_path / "Ds_foreign.pth", data)
    with pytest.raises(ValueError, match=problem) as caught:
        load_official(path)
    assert str(path) in str(caught.value)


def test_safetensors_file_is_pointed_to_from_file(tmp_path):
    path = save_pyramid(tmp_path / "mine.safetensors", make_pyramid([4, 4]), {})
    with pytest.raises(ValueError, match="safetensors.*from_file") as caught:
        MDFLoss.from_official(path)
    assert str(path) in str(caught.value)


def test_missing_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="Ds_none.pth"):
        load_official(tmp_path / "Ds_none.pth")


def tampered_copy(tmp_path: Path, change) -> Path:
    """Ds_JPEG.pth re-saved after ``change(modules)``."""
    path = tmp_path / "Ds_tampered.pth"
    with singan_stand_in():
        modules = torch_load_checked(official("Ds_JPEG.pth"))
        change(modules)
        torch.save(modules, path)
    return path


@pytest.mark.parametrize(("change", "problem"), [
    (lambda ds: setattr(ds[1].body.block2.conv, "padding", (1, 1)), r"discriminator 1\.body\.block2\.conv: padding"),
    (lambda ds: setattr(ds[0].head.norm, "eps", 1e-3), r"discriminator 0\.head\.norm: eps"),
    (lambda ds: setattr(ds[2].head.LeakyRelu, "negative_slope", 0.1), "negative_slope"),
    (lambda ds: ds[3].body.add_module("block4", ds[3].body.block3), "submodules"),
    (lambda ds: setattr(ds[4].tail, "weight", nn.Parameter(torch.zeros(1, 64, 5, 5))), "'tail.weight' has shape"),
    (lambda ds: ds[5].body.block1.conv.weight.data.__setitem__((0, 0, 0, 0), float("nan")), "NaN"),
    (lambda ds: ds.clear(), "non-empty list"),
])
def test_architecture_is_checked(tmp_path, change, problem):
    path = tampered_copy(tmp_path, change)
    with pytest.raises(ValueError, match=problem) as caught:
        load_official(path)
    assert str(path) in str(caught.value)


def test_metadata_is_json_and_task_follows_the_name(tmp_path):
    path = write(tmp_path / "Ds_Denoising.pth", official("Ds_SISR.pth").read_bytes())
    _, metadata = load_official(path)
    assert metadata["task"] == "denoise"
    assert json.loads(json.dumps(metadata)) == metadata
