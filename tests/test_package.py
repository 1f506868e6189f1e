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


def loaded_after(code: str) -> set[str]:
    """The mdfloss modules in sys.modules after running ``code`` in a fresh interpreter."""
    program = f"import sys\n{code}\nprint(' '.join(m for m in sys.modules if m.split('.')[0] == 'mdfloss'))"
    return set(subprocess.run([sys.executable, "-c", program], capture_output=True, text=True, check=True).stdout.split())


def test_import_loads_the_primitives_and_the_core_only():
    # docs/architecture.md: primitives (_checks, _files, _version, functional) and core (base,
    # discriminator, loss, weights, official); no losses/, metrics/, train/ or tools
    assert loaded_after("import mdfloss") == {
        "mdfloss", "mdfloss._checks", "mdfloss._files", "mdfloss._version", "mdfloss.functional",
        "mdfloss.base", "mdfloss.discriminator", "mdfloss.loss", "mdfloss.weights",
        "mdfloss.official", "mdfloss.official.reader",
    }


def test_train_loss_is_imported_on_first_use():
    loaded = loaded_after("import mdfloss\nfrom mdfloss import train_loss")
    assert {"mdfloss.train", "mdfloss.train.trainer"} <= loaded
    assert subprocess.run([sys.executable, "-c", "import mdfloss; mdfloss.nothing"], capture_output=True,
                          text=True).stderr.strip().endswith("AttributeError: module 'mdfloss' has no attribute 'nothing'")
