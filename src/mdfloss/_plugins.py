"""User code named ``package.module:attribute`` (a distortion, a loss, a network): imported here."""

from __future__ import annotations

import importlib
from typing import Any


def load_object(spec: str, kind: str) -> Any:
    """The callable ``spec`` names; a ValueError/TypeError naming ``kind`` and ``spec`` when it cannot be had."""
    module_name, colon, attribute = spec.partition(":")
    if not colon or not module_name or not attribute:
        raise ValueError(f"{kind}: expected 'package.module:attribute', got {spec!r}")
    try:
        module = importlib.import_module(module_name)
    except ImportError as error:
        raise ValueError(f"{kind}: cannot import module {module_name!r} for plugin {spec!r} "
                         f"({type(error).__name__}: {error})") from None
    found: Any = module
    for part in attribute.split("."):
        if not hasattr(found, part):
            raise ValueError(f"{kind}: module {module_name!r} has no attribute {attribute!r} (plugin {spec!r})")
        found = getattr(found, part)
    if not callable(found):
        raise TypeError(f"{kind}: plugin {spec!r} is a {type(found).__name__}, expected a callable")
    return found
