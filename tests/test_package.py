"""`import mdfloss` stays light: torch, numpy and safetensors only."""

from __future__ import annotations

import subprocess
import sys

HEAVY = ("PIL", "matplotlib", "scipy", "yaml", "pytorch_msssim")


def test_import_needs_only_torch_numpy_and_safetensors():
    code = (
        "import sys, mdfloss, mdfloss.cli\n"
        f"print(','.join(sorted({{m.split('.')[0] for m in sys.modules}} & set({HEAVY!r}))))"
    )
    loaded = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip()
    assert loaded == ""
