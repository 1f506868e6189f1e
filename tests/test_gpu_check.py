"""scripts/gpu_check.py on its CPU path, at tiny sizes: every step runs and lands in one file."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[1] / "scripts" / "gpu_check.py"
TINY = ["--device", "cpu", "--tests", "tests/test_runtime.py", "--shapes", "1x3x48x48", "--reps", "1",
        "--preset", "cpu-mini", "--task", "denoise", "--losses", "l2", "--image-size", "96"]


@pytest.fixture(scope="module")
def gpu_check():
    spec = importlib.util.spec_from_file_location("gpu_check", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    sys.modules["gpu_check"] = module  # its dataclass looks its module up
    spec.loader.exec_module(module)
    yield module
    del sys.modules["gpu_check"]


@pytest.mark.slow
def test_the_cpu_path_writes_every_step(gpu_check, tmp_path):
    out = tmp_path / "check.md"
    assert gpu_check.main([*TINY, "--out", str(out)]) == 0
    text = out.read_text()
    sections = text.split("\n## ")[1:]
    assert [s.splitlines()[0] for s in sections] == [
        "CUDA tests", "Loss cost (paper Table 1), VGG16 with random weights",
        "Benchmark speed: `cpu-mini` preset, seconds per iteration"]
    assert all("exit 0, " in section for section in sections)
    assert "deselected" in sections[0]  # pytest -k cuda ran and selected
    assert "VGG" in sections[1] and "| denoise-dncnn | l2 |" in sections[2]
    assert str(tmp_path) not in text.replace(str(out), "")  # no temporary paths in the results


def test_a_spent_budget_stops_the_steps_and_fails(gpu_check, tmp_path):
    out = tmp_path / "check.md"
    assert gpu_check.main([*TINY, "--budget", "0", "--out", str(out)]) == 1
    assert out.read_text().count("not run: no time left") == 3
