"""The docs examples that need the real micro:bit firmware in QEMU."""

from __future__ import annotations

import runpy
from pathlib import Path

import pytest

from actorhw.links import qemu_available

pytestmark = [pytest.mark.qemu, pytest.mark.timeout(120)]

EXAMPLES = Path(__file__).parents[2] / "docs" / "examples"


def test_programming_example(capsys: pytest.CaptureFixture[str]) -> None:
    missing = qemu_available()
    if missing is not None:
        pytest.fail(f"QEMU micro:bit is required for this test: {missing}", pytrace=False)
    runpy.run_path(str(EXAMPLES / "programming.py"), run_name="__main__")
    out = capsys.readouterr().out
    assert "status keys: ['free', 'uptime_ms']" in out
    assert "collected: 3 samples" in out
    assert "batch: ok=[True, True, False], error=ZeroDivisionError" in out
    assert "batching: ['free', 'uptime_ms'], 3 samples" in out
    assert "after close: owners_count=0" in out
