"""Load piq's metric modules without running ``piq/__init__.py`` (which imports torchvision).

``import piq`` fails beside the CPU torch build used here ("operator torchvision::nms does not
exist"), but ``piq/haarpsi.py``, ``piq/dss.py`` and ``piq/mdsi.py`` and the subpackages they use
(``piq.utils``, ``piq.functional``) import only torch and numpy. A stub module named ``piq``
with the installed package's ``__path__`` lets ``importlib`` import exactly those submodules.
The stub is registered only while importing and removed afterwards unless a real ``piq`` was
already loaded, so other code that imports ``piq`` is not affected by it.
"""

from __future__ import annotations

import importlib
import importlib.util
import sys
import types
from pathlib import Path


def load_piq_module(name: str) -> types.ModuleType | None:
    """``piq.<name>`` (e.g. "haarpsi"), or None when piq is not installed."""
    if "piq" in sys.modules and getattr(sys.modules["piq"], "__file__", None):
        return importlib.import_module(f"piq.{name}")  # the real package is loaded already
    spec = importlib.util.find_spec("piq") if "piq" not in sys.modules else None
    if spec is None and "piq" not in sys.modules:
        return None
    if "piq" not in sys.modules:
        assert spec is not None and spec.submodule_search_locations is not None
        stub = types.ModuleType("piq")
        stub.__path__ = list(spec.submodule_search_locations)  # type: ignore[attr-defined]
        stub.__package__ = "piq"
        stub.__spec__ = importlib.util.spec_from_loader("piq", loader=None, is_package=True)
        stub.__spec__.submodule_search_locations = stub.__path__  # type: ignore[union-attr]
        sys.modules["piq"] = stub
    return importlib.import_module(f"piq.{name}")


def piq_version() -> str | None:
    spec = importlib.util.find_spec("piq") if "piq" not in sys.modules else None
    location = spec.origin if spec else getattr(sys.modules.get("piq"), "__path__", [None])[0]
    if location is None:
        return None
    init = Path(location) if str(location).endswith(".py") else Path(location) / "__init__.py"
    for line in init.read_text().splitlines():
        if line.startswith("__version__"):
            return line.split("=")[1].strip().strip("\"'")
    return None
