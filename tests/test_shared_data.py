"""The oracles that read ../shared skip without it, and fail instead under CI."""

from __future__ import annotations

from pathlib import Path

import conftest
import pytest
from _metrics_support import photo


@pytest.fixture
def no_shared(tmp_path, monkeypatch):
    monkeypatch.setattr(conftest, "SHARED", tmp_path / "absent")
    monkeypatch.delenv("MDFLOSS_REQUIRE_SHARED", raising=False)


def test_a_missing_photo_skips_outside_ci(no_shared, monkeypatch):
    monkeypatch.setenv("CI", "false")
    with pytest.raises(pytest.skip.Exception, match="shared data not found"):
        photo("LadyBird.png")


@pytest.mark.parametrize("variable, value", [("CI", "true"), ("MDFLOSS_REQUIRE_SHARED", "1")])
def test_a_missing_photo_fails_under_ci(no_shared, monkeypatch, variable, value):
    monkeypatch.setenv("CI", "false")
    monkeypatch.setenv(variable, value)
    with pytest.raises(pytest.fail.Exception, match="the shared data is required"):
        photo("LadyBird.png")


def test_the_ci_script_turns_the_strict_mode_on():
    script = (Path(__file__).resolve().parents[1] / ".ci" / "run").read_text()
    assert "export CI=true" in script.split("make test")[0]
