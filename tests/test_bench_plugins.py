"""A user's own loss, network and degradation in ``mdfloss bench``: they run, are recorded, and fail clearly."""

from __future__ import annotations

import json
import sys
import textwrap

import pytest
from test_bench_repeats import bench_args, folders  # noqa: F401  (the fixture)

from mdfloss.cli import main

PLUGIN = textwrap.dedent('''
    import torch

    __version__ = "1.2.3"


    class Charbonnier(torch.nn.Module):
        def __init__(self, eps=1e-3):
            super().__init__()
            self.eps = eps

        def forward(self, output, target):
            return torch.sqrt((output - target) ** 2 + self.eps ** 2).mean()


    def build(task, scale, width=4):
        return torch.nn.Sequential(torch.nn.Conv2d(3, width, 3, padding=1), torch.nn.ReLU(),
                                   torch.nn.Conv2d(width, 3, 3, padding=1))


    def banding(batch, generator, strength=0.3):
        b, _, _, w = batch.shape
        amplitude = strength * torch.rand(b, 1, 1, 1, generator=generator)
        return batch + amplitude * torch.randn(b, 1, 1, w, generator=generator) / 10


    def not_scalar():
        return lambda output, target: (output - target) ** 2


    def no_gradient():
        return lambda output, target: torch.tensor(1.0)


    def wrong_shape(task, scale):
        return torch.nn.Conv2d(3, 3, 3)


    def wrong_size(batch, generator):
        return batch[..., 1:]


    def needs_argument(required):
        return None
''')


@pytest.fixture
def plugin(tmp_path, monkeypatch):
    (tmp_path / "mybench_plugin.py").write_text(PLUGIN)
    monkeypatch.syspath_prepend(str(tmp_path))
    yield "mybench_plugin"
    sys.modules.pop("mybench_plugin", None)


def run(folders, out, *extra):  # noqa: F811
    """``mdfloss bench`` on the tiny data, without the settings of the built-in network and noise."""
    args = bench_args(folders, out, "--repeats", "1", "--mdf", "denoise")
    builtin = [k for k, a in enumerate(args) if a.startswith(("model.", "degradation."))]
    kept = [a for k, a in enumerate(args) if k not in builtin and k + 1 not in builtin]
    return main(kept + list(extra))


def test_own_loss_network_and_degradation_train_and_are_recorded(folders, plugin, tmp_path):  # noqa: F811
    out = tmp_path / "own"
    assert run(folders, out, "--losses", f"l2,{plugin}:Charbonnier", "--model", f"{plugin}:build",
               "--degradation", f"{plugin}:banding", "--set", "degradation.params.strength=0.5",
               "--set", "loss_options.Charbonnier.eps=0.01", "--set", "model.width=6") == 0
    manifest = json.loads((out / "manifest.json").read_text())
    entry = manifest["experiments"]["denoise-build"]
    assert entry["plugins"] == [{"spec": f"{plugin}:Charbonnier", "version": "1.2.3"},
                                {"spec": f"{plugin}:build", "version": "1.2.3"},
                                {"spec": f"{plugin}:banding", "version": "1.2.3"}]
    assert entry["datasets"] == ["test/custom"]
    assert sorted(entry["runs"]) == ["l2", f"{plugin}:Charbonnier"]


@pytest.mark.parametrize(("extra", "message"), [
    (["--losses", "nowhere_pkg.losses:Loss"], "cannot import module 'nowhere_pkg.losses'"),
    (["--losses", "{p}:Missing"], "has no attribute 'Missing'"),
    (["--losses", "{p}:__version__"], "is a str, expected a callable"),
    (["--losses", "{p}:needs_argument"], "calling it with no arguments failed"),
    (["--losses", "{p}:not_scalar"], "expected a scalar, got a tensor of shape (2, 3, 16, 16)"),
    (["--losses", "{p}:no_gradient"], "no gradient to train with"),
    (["--losses", "l2", "--model", "{p}:wrong_shape"], "expected an output of shape (1, 3, 16, 16)"),
    (["--losses", "l2", "--degradation", "{p}:wrong_size"], "expected a result of shape (1, 3, 16, 16)"),
    (["--losses", "l2", "--task", "sisr", "--model", "edsr", "--degradation", "{p}:banding"],
     "expected a same-size task (denoise or jpeg)"),
])
def test_each_plugin_error_is_one_line_and_exit_code_2(folders, plugin, tmp_path, capsys, extra, message):  # noqa: F811
    args = [a.replace("{p}", plugin) for a in extra]
    assert run(folders, tmp_path / "x", *args) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1 and "Traceback" not in err
