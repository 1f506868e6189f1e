"""Safe import of the authors' discriminators (gfxdisp/mdf ``weights/Ds_*.pth``).

Those files are ``torch.save`` pickles of a Python list of whole ``SinGAN.models.WDiscriminator``
modules. ``torch.load`` would import ``SinGAN`` and run whatever the pickle names; here the
pickle is read by an unpickler whose ``find_class`` answers only an explicit allow-list of
globals, each with a harmless stand-in:

* module classes (``SinGAN.models.*``, ``torch.nn`` Conv2d / BatchNorm2d / LeakyReLU /
  Sequential) -> empty record types that only keep the pickled attribute dict;
* ``torch._utils._rebuild_tensor_v2`` / ``_rebuild_parameter`` -> functions that record
  (storage, offset, size, stride);
* ``torch.<Type>Storage`` -> dtype markers; ``collections.OrderedDict`` and ``set`` (in files
  re-saved by torch >= 1.6) -> plain containers.

Neither these stand-ins nor their classes accept attributes from the pickle (BUILD), so a file
cannot alter them for later loads.

Any other global (``posix.system``, ``builtins.eval``, ``subprocess.Popen``, ...) raises
:class:`UnsafePickleError` before anything is called. Storage bytes are then read onto the CPU
from the file itself: the records after the pickles in the legacy format (what the authors
ship), or the ``<archive>/data/<key>`` entries of the zip format (``torch.save``'s default since
torch 1.6, so a re-saved copy loads too).

The discriminators are checked against SinGAN's architecture (3x3 unpadded convolutions,
BatchNorm eps 1e-5, LeakyReLU 0.2, three body blocks), their widths are read from the tensors,
and the tensors are renamed onto :class:`~mdfloss.discriminator.PatchDiscriminator`
(``body.blockK`` -> ``body.{K-1}``, ``LeakyRelu`` has no tensors).
"""

from __future__ import annotations

import _compat_pickle
import hashlib
import io
import os
import pickle
import re
import zipfile
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from .._files import existing_file
from ..discriminator import (
    BODY_BLOCKS,
    LEAKY_SLOPE,
    DiscriminatorPyramid,
    PatchDiscriminator,
)

LEGACY_MAGIC = 0x1950A86A20F9469CFC6C
LEGACY_PROTOCOL = 1001
OFFICIAL_INPUT_RANGE = [0.0, 1.0]
SOURCE = "gfxdisp/mdf official weights, BSD-3-Clause, converted by mdfloss"
LICENSE = "BSD-3-Clause (c) 2021 Graphics and Displays group, University of Cambridge"
TASKS_BY_NAME = {"sisr": "sisr", "denois": "denoise", "jpeg": "jpeg"}
"""File-name fragment (lower case) -> task."""
MAX_PICKLE_BYTES = 1 << 28
"""Largest ``data.pkl`` read from a zip file (the authors' module pickle is 66 KB)."""

DISCRIMINATOR_CLASS = "SinGAN.models.WDiscriminator"
CONV_BLOCK_CLASS = "SinGAN.models.ConvBlock"
CONV_CLASS = "torch.nn.modules.conv.Conv2d"
NORM_CLASS = "torch.nn.modules.batchnorm.BatchNorm2d"
ACTIVATION_CLASS = "torch.nn.modules.activation.LeakyReLU"
SEQUENTIAL_CLASS = "torch.nn.modules.container.Sequential"
MODULE_CLASSES = (DISCRIMINATOR_CLASS, CONV_BLOCK_CLASS, CONV_CLASS, NORM_CLASS, ACTIVATION_CLASS, SEQUENTIAL_CLASS)
NORM_EPS = 1e-5

STORAGE_DTYPES = {
    "FloatStorage": torch.float32,
    "DoubleStorage": torch.float64,
    "HalfStorage": torch.float16,
    "BFloat16Storage": torch.bfloat16,
    "LongStorage": torch.int64,
    "IntStorage": torch.int32,
    "ShortStorage": torch.int16,
    "CharStorage": torch.int8,
    "ByteStorage": torch.uint8,
    "BoolStorage": torch.bool,
}
_STORAGE_KEY = re.compile(r"[0-9A-Za-z_]{1,64}")


class UnsafePickleError(ValueError):
    """The file's pickle names a global outside the allow-list; nothing was executed."""

    def __init__(self, path: str | os.PathLike[str], global_name: str, python3_name: str) -> None:
        renamed = f" (Python 3: '{python3_name}')" if python3_name != global_name else ""
        super().__init__(
            f"{os.fspath(path)}: refused to unpickle the global '{global_name}'{renamed}: only the classes and "
            "tensor-rebuild functions of a saved SinGAN discriminator list are allowed; nothing was executed"
        )
        self.path = Path(path)
        self.global_name = global_name
        self.python3_name = python3_name


class _Record:
    """Base of every stand-in object: a pickle BUILD on it is a corrupt file."""

    __slots__ = ()

    def __setstate__(self, state: Any) -> None:
        raise ValueError(f"unexpected state for a {type(self).__name__}")


class _ReadOnlyType(type):
    """Metaclass of the module stand-ins: a pickle cannot set attributes on the class itself."""

    def __setattr__(cls, name: str, value: Any) -> None:
        raise ValueError(f"attempt to set {name!r} on the class {cls.__name__}")


class _PickledModule(_Record, metaclass=_ReadOnlyType):
    """A pickled nn.Module: the qualified name of its class and its attribute dict, nothing else."""

    __slots__ = ("attributes",)
    qualified_name = ""

    def __setstate__(self, state: Any) -> None:
        if not isinstance(state, dict) or hasattr(self, "attributes"):
            raise ValueError(f"bad attribute state for a pickled {self.qualified_name}")
        self.attributes = state


@dataclass(frozen=True)
class _StorageType(_Record):
    dtype: torch.dtype


@dataclass(frozen=True)
class _StorageRef(_Record):
    key: str
    dtype: torch.dtype
    numel: int


@dataclass(frozen=True)
class _TensorRef(_Record):
    storage: _StorageRef
    offset: int
    size: tuple[int, ...]
    stride: tuple[int, ...]


def _rebuild_tensor(
    storage: Any, offset: Any, size: Any, stride: Any, requires_grad: Any, hooks: Any, metadata: Any = None
) -> _TensorRef:
    """Stand-in for ``torch._utils._rebuild_tensor_v2``: records where the tensor lives."""
    if not isinstance(storage, _StorageRef):
        raise ValueError("a tensor without a storage")
    if not _is_index(offset) or not _is_shape(size) or not _is_shape(stride) or len(size) != len(stride):
        raise ValueError(f"a tensor with a bad layout (offset {offset!r}, size {size!r}, stride {stride!r})")
    if hooks:
        raise ValueError("a tensor with backward hooks")
    return _TensorRef(storage, offset, tuple(size), tuple(stride))


def _rebuild_parameter(data: Any, requires_grad: Any, hooks: Any) -> _TensorRef:
    """Stand-in for ``torch._utils._rebuild_parameter``: a parameter is its tensor."""
    if not isinstance(data, _TensorRef) or hooks:
        raise ValueError("a parameter without tensor data")
    return data


def _build_set(items: Any = ()) -> set[Any]:
    """Stand-in for ``set``: only from a list or tuple of strings (module buffer-name sets)."""
    if not isinstance(items, (list, tuple)) or not all(isinstance(item, str) for item in items):
        raise ValueError("a set of anything but names")
    return set(items)


def _is_index(value: Any) -> bool:
    return type(value) is int and value >= 0


def _is_shape(value: Any) -> bool:
    return isinstance(value, (tuple, list)) and all(_is_index(v) for v in value)


class _StandIn(_Record):
    """An allowed global as the pickle sees it: callable, but immune to BUILD (no attribute can be set)."""

    __slots__ = ("function",)

    def __init__(self, function: Any) -> None:
        self.function = function

    def __call__(self, *args: Any) -> Any:
        return self.function(*args)


_FUNCTIONS = {
    ("torch._utils", "_rebuild_tensor_v2"): _StandIn(_rebuild_tensor),
    ("torch._utils", "_rebuild_parameter"): _StandIn(_rebuild_parameter),
    ("collections", "OrderedDict"): _StandIn(OrderedDict),
    ("builtins", "set"): _StandIn(_build_set),
}


def _python3_name(module: str, name: str) -> tuple[str, str]:
    """Undo the Python 2 renaming of protocol 0-2 pickles (``__builtin__.set`` -> ``builtins.set``),
    as ``pickle.Unpickler.find_class`` does; only names are compared, nothing is imported."""
    if (module, name) in _compat_pickle.NAME_MAPPING:
        return _compat_pickle.NAME_MAPPING[module, name]
    return _compat_pickle.IMPORT_MAPPING.get(module, module), name


_MODULE_TYPES = {
    qualified: _ReadOnlyType(
        qualified.rsplit(".", 1)[1], (_PickledModule,), {"__slots__": (), "qualified_name": qualified}
    )
    for qualified in MODULE_CLASSES
}


class _SafeUnpickler(pickle.Unpickler):
    """Unpickler that resolves only the allow-list and records storages instead of reading them."""

    def __init__(self, stream: io.BytesIO, path: Path, storages: dict[str, _StorageRef]) -> None:
        super().__init__(stream)
        self.path = path
        self.storages = storages

    def find_class(self, module: str, name: str) -> Any:
        written = f"{module}.{name}"
        module, name = _python3_name(module, name)
        qualified = f"{module}.{name}"
        if (module, name) in _FUNCTIONS:
            return _FUNCTIONS[module, name]
        if module == "torch" and name in STORAGE_DTYPES:
            return _StorageType(STORAGE_DTYPES[name])
        if qualified in _MODULE_TYPES:
            return _MODULE_TYPES[qualified]
        raise UnsafePickleError(self.path, written, qualified)

    def persistent_load(self, pid: Any) -> Any:
        if isinstance(pid, tuple) and len(pid) == 4 and pid[0] == "module":
            # legacy format: ("module", class, source file, source code)
            if not (isinstance(pid[1], type) and issubclass(pid[1], _PickledModule)):
                raise ValueError(f"a module reference to {pid[1]!r}")
            return pid[1]
        if isinstance(pid, tuple) and len(pid) in (5, 6) and pid[0] == "storage":
            # ("storage", type, key, location, numel) in the zip format, + view metadata in the legacy one
            _, storage_type, key, location, numel, *view = pid
            if view and view[0] is not None:
                raise ValueError("a storage view (not written by torch.save of parameters)")
            if not (isinstance(storage_type, _StorageType) and isinstance(key, str) and _STORAGE_KEY.fullmatch(key)
                    and isinstance(location, str) and _is_index(numel)):
                raise ValueError(f"a malformed storage reference {pid!r:.200}")
            reference = _StorageRef(key, storage_type.dtype, numel)
            if self.storages.setdefault(key, reference) != reference:
                raise ValueError(f"storage '{key}' referenced with two different types or sizes")
            return reference
        raise ValueError(f"an unknown persistent reference {pid!r:.200}")


def load_official(path: str | os.PathLike[str]) -> tuple[DiscriminatorPyramid, dict[str, Any]]:
    """Read an authors' ``Ds_*.pth`` without executing it: (pyramid on CPU in eval mode, metadata).

    The metadata records ``input_range = [0, 1]``: gfxdisp/mdf (README, ``example.py``) feeds
    [0, 1] images to the discriminators unchanged, although SinGAN trained them on [-1, 1]; so
    ``MDFLoss.from_official`` reproduces the authors' loss values by default. ``task`` comes from
    the file name (sisr, denoise, jpeg) when it names one; upstream ``Ds_Denoising.pth`` is a
    byte-identical copy of ``Ds_SISR.pth``. All discriminators in the file are kept (9 in
    ``Ds_SISR.pth``); the authors' loss uses the first 8, i.e. ``scales=8``.

    Raises FileNotFoundError for a missing file, :class:`UnsafePickleError` for a pickle that
    names a global outside the allow-list, ValueError (naming the file) for anything else that is
    not a list of SinGAN discriminators.
    """
    path = existing_file(path, "path", "an official weight file (Ds_*.pth)")
    data = path.read_bytes()
    try:
        modules, storages = _read(data, path)
        discriminators = [_discriminator_state(module, index, storages) for index, module in enumerate(modules)]
    except (UnsafePickleError, FileNotFoundError):
        raise
    except (ValueError, TypeError, KeyError, IndexError, AttributeError, EOFError, OverflowError,
            pickle.UnpicklingError, zipfile.BadZipFile, UnicodeDecodeError, RuntimeError) as error:
        raise ValueError(f"{path}: not a readable list of SinGAN discriminators: {error}") from None
    widths = [state["head.conv.weight"].shape[0] for state in discriminators]
    pyramid = DiscriminatorPyramid(widths)
    for index, (discriminator, state) in enumerate(zip(pyramid.discriminators, discriminators)):
        _load_checked(discriminator, state, f"{path}: discriminator {index}")
    metadata: dict[str, Any] = {
        "input_range": list(OFFICIAL_INPUT_RANGE),
        "source": SOURCE,
        "official_file": {"name": path.name, "sha256": hashlib.sha256(data).hexdigest()},
        "license": LICENSE,
    }
    task = next((task for fragment, task in TASKS_BY_NAME.items() if fragment in path.name.lower()), None)
    if task is not None:
        metadata["task"] = task
    return pyramid.eval(), metadata


def _read(data: bytes, path: Path) -> tuple[list[Any], dict[str, torch.Tensor]]:
    """The pickled list (of module records holding tensor references) and its storages, by key."""
    if not data:
        raise ValueError("the file is empty")
    storages: dict[str, _StorageRef] = {}
    if data.startswith(b"PK\x03\x04"):
        root, raw = _read_zip(data, path, storages)
    elif data.startswith(b"\x80"):
        root, raw = _read_legacy(data, path, storages)
    elif _looks_like_safetensors(data):
        raise ValueError("this is a safetensors file; load it with MDFLoss.from_file")
    else:
        raise ValueError("neither torch.save's zip format nor its legacy pickle format")
    if not isinstance(root, list) or not root:
        raise ValueError(f"expected a non-empty list of discriminators, found {type(root).__name__}")
    tensors = {}
    for key, reference in storages.items():
        expected = reference.numel * _element_size(reference.dtype)
        if len(raw[key]) != expected:
            raise ValueError(f"storage '{key}' holds {len(raw[key])} bytes, expected {expected}")
        tensors[key] = torch.frombuffer(bytearray(raw[key]), dtype=reference.dtype) if expected else torch.empty(
            0, dtype=reference.dtype)
    return root, tensors


def _read_legacy(data: bytes, path: Path, storages: dict[str, _StorageRef]) -> tuple[Any, dict[str, bytes]]:
    """Legacy layout: pickles of magic, protocol, sys_info, the object, the storage keys; then
    for each key an int64 element count and the raw little-endian bytes."""
    stream = io.BytesIO(data)

    def load() -> Any:
        return _SafeUnpickler(stream, path, storages).load()

    if load() != LEGACY_MAGIC:
        raise ValueError("a pickle that is not a torch.save file (wrong magic number)")
    protocol = load()
    if protocol != LEGACY_PROTOCOL:
        raise ValueError(f"unsupported torch.save protocol {protocol!r}")
    sys_info = load()
    if not isinstance(sys_info, dict) or sys_info.get("little_endian") is not True:
        raise ValueError("saved on a big-endian machine or without system information")
    root = load()
    keys = load()
    if not isinstance(keys, list) or sorted(keys) != sorted(storages):
        raise ValueError("the storage key list does not match the storages the pickle references")
    raw = {}
    for key in keys:
        count = int.from_bytes(_read_exactly(stream, 8, key), "little")
        if count != storages[key].numel:
            raise ValueError(f"storage '{key}' records {count} elements, the pickle says {storages[key].numel}")
        raw[key] = _read_exactly(stream, count * _element_size(storages[key].dtype), key)
    return root, raw


def _read_zip(data: bytes, path: Path, storages: dict[str, _StorageRef]) -> tuple[Any, dict[str, bytes]]:
    """Zip layout: ``<archive>/data.pkl`` and one ``<archive>/data/<key>`` entry per storage."""
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        pickles = [name for name in archive.namelist() if name.count("/") == 1 and name.endswith("/data.pkl")]
        if len(pickles) != 1:
            raise ValueError(f"a zip archive with {len(pickles)} '<archive>/data.pkl' entries, expected 1")
        prefix = pickles[0][: -len("data.pkl")]
        if archive.getinfo(pickles[0]).file_size > MAX_PICKLE_BYTES:
            raise ValueError(f"'{pickles[0]}' is larger than {MAX_PICKLE_BYTES} bytes")
        if prefix + "byteorder" in archive.namelist() and archive.read(prefix + "byteorder") != b"little":
            raise ValueError("saved big-endian")
        root = _SafeUnpickler(io.BytesIO(archive.read(pickles[0])), path, storages).load()
        raw = {}
        for key, reference in storages.items():
            name = f"{prefix}data/{key}"
            expected = reference.numel * _element_size(reference.dtype)
            try:
                size = archive.getinfo(name).file_size
            except KeyError:
                raise ValueError(f"the archive has no entry '{name}'") from None
            if size != expected:
                raise ValueError(f"entry '{name}' holds {size} bytes, expected {expected}")
            raw[key] = archive.read(name)
    return root, raw


def _read_exactly(stream: io.BytesIO, size: int, key: str) -> bytes:
    chunk = stream.read(size)
    if len(chunk) != size:
        raise ValueError(f"truncated: storage '{key}' ends after {len(chunk)} of {size} bytes")
    return chunk


def _element_size(dtype: torch.dtype) -> int:
    return torch.empty(0, dtype=dtype).element_size()


def _looks_like_safetensors(data: bytes) -> bool:
    return len(data) > 9 and data[8:9] == b"{" and 2 <= int.from_bytes(data[:8], "little") < len(data)


def _tensor(reference: _TensorRef, storages: dict[str, torch.Tensor]) -> torch.Tensor:
    """The tensor a reference describes, copied out of its storage after a bounds check."""
    storage = storages[reference.storage.key]
    numel = 1
    for extent in reference.size:
        numel *= extent
    last = reference.offset + sum((n - 1) * s for n, s in zip(reference.size, reference.stride))
    if numel and last >= storage.numel():
        raise ValueError(f"a tensor of size {reference.size} reaches past its storage of {storage.numel()} elements")
    return torch.as_strided(storage, reference.size, reference.stride, reference.offset).clone()


def _discriminator_state(module: Any, index: int, storages: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """A WDiscriminator's tensors under PatchDiscriminator's names, architecture checked."""
    where = f"discriminator {index}"
    children = _children(module, DISCRIMINATOR_CLASS, ["head", "body", "tail"], where)
    body = _children(children["body"], SEQUENTIAL_CLASS, [f"block{k + 1}" for k in range(BODY_BLOCKS)], f"{where}.body")
    state = _prefixed("head.", _conv_block_state(children["head"], f"{where}.head", storages))
    head_shape = tuple(state["head.conv.weight"].shape)
    if len(head_shape) != 4 or head_shape[0] < 1:
        raise ValueError(f"{where}.head.conv: weight of shape {head_shape} is not (N, 3, 3, 3)")
    for k, block in enumerate(body.values()):
        state |= _prefixed(f"body.{k}.", _conv_block_state(block, f"{where}.body.block{k + 1}", storages))
    return state | _prefixed("tail.", _conv_state(children["tail"], f"{where}.tail", storages))


def _conv_block_state(block: Any, where: str, storages: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """ConvBlock = Conv2d -> BatchNorm2d -> LeakyReLU(0.2)."""
    children = _children(block, CONV_BLOCK_CLASS, ["conv", "norm", "LeakyRelu"], where)
    activation = children["LeakyRelu"]
    _check_class(activation, ACTIVATION_CLASS, f"{where}.LeakyRelu")
    _check_attribute(activation, "negative_slope", LEAKY_SLOPE, f"{where}.LeakyRelu")
    norm = children["norm"]
    _check_class(norm, NORM_CLASS, f"{where}.norm")
    _check_attribute(norm, "eps", NORM_EPS, f"{where}.norm")
    _check_attribute(norm, "affine", True, f"{where}.norm")
    _check_attribute(norm, "track_running_stats", True, f"{where}.norm")
    names = ["weight", "bias", "running_mean", "running_var", "num_batches_tracked"]
    return _prefixed("conv.", _conv_state(children["conv"], f"{where}.conv", storages)) | _prefixed(
        "norm.", _tensors(norm, names, f"{where}.norm", storages))


def _conv_state(conv: Any, where: str, storages: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Conv2d 3x3, stride 1, no padding, no dilation, one group, with a bias."""
    _check_class(conv, CONV_CLASS, where)
    for name, value in (("kernel_size", (3, 3)), ("stride", (1, 1)), ("padding", (0, 0)),
                        ("dilation", (1, 1)), ("groups", 1)):
        _check_attribute(conv, name, value, where)
    return _tensors(conv, ["weight", "bias"], where, storages)


def _children(module: Any, class_name: str, names: list[str], where: str) -> dict[str, Any]:
    _check_class(module, class_name, where)
    children = module.attributes.get("_modules")
    if not isinstance(children, dict) or list(children) != names:
        raise ValueError(f"{where}: expected the submodules {names}, found {list(children or {})}")
    return dict(children)


def _tensors(module: _PickledModule, names: list[str], where: str, storages: dict[str, torch.Tensor]
             ) -> dict[str, torch.Tensor]:
    """The module's parameters and buffers, exactly ``names``, as CPU tensors."""
    groups = [module.attributes.get(group) for group in ("_parameters", "_buffers")]
    if not all(isinstance(group, dict) for group in groups):
        raise ValueError(f"{where}: no _parameters / _buffers dictionaries")
    references = {**groups[0], **groups[1]}
    if sorted(references) != sorted(names) or not all(isinstance(references[n], _TensorRef) for n in names):
        raise ValueError(f"{where}: expected the tensors {names}, found {sorted(references)}")
    return {name: _tensor(references[name], storages) for name in names}


def _check_class(module: Any, class_name: str, where: str) -> None:
    found = module.qualified_name if isinstance(module, _PickledModule) else type(module).__name__
    if found != class_name or not hasattr(module, "attributes"):
        raise ValueError(f"{where}: expected a {class_name}, found {found}")


def _check_attribute(module: _PickledModule, name: str, expected: Any, where: str) -> None:
    value = module.attributes.get(name)
    if isinstance(value, list):
        value = tuple(value)
    if value != expected:
        raise ValueError(f"{where}: {name} is {value!r}, mdfloss's SinGAN discriminator needs {expected!r}")


def _prefixed(prefix: str, tensors: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    return {prefix + name: tensor for name, tensor in tensors.items()}


def _load_checked(discriminator: PatchDiscriminator, state: dict[str, torch.Tensor], where: str) -> None:
    """Copy ``state`` into ``discriminator`` after checking every name, shape and value."""
    expected = discriminator.state_dict()
    if sorted(state) != sorted(expected):
        raise ValueError(f"{where}: tensor names {sorted(state)} do not match {sorted(expected)}")
    for name, reference in expected.items():
        if state[name].shape != reference.shape:
            raise ValueError(
                f"{where}: tensor '{name}' has shape {tuple(state[name].shape)}, expected {tuple(reference.shape)} "
                f"for width {discriminator.width}"
            )
    floating = [name for name, tensor in state.items() if tensor.is_floating_point()]
    if not torch.cat([state[name].flatten() for name in floating]).isfinite().all():
        first = next(name for name in floating if not state[name].isfinite().all())
        raise ValueError(f"{where}: tensor '{first}' holds NaN or Inf")
    discriminator.load_state_dict(state)
