"""Every example under docs/examples runs, and prints what the docs say it prints."""

from __future__ import annotations

import runpy
from pathlib import Path

import pytest

pytestmark = pytest.mark.timeout(60)

EXAMPLES = sorted((Path(__file__).parents[2] / "docs" / "examples").glob("*.py"))


@pytest.mark.parametrize("path", EXAMPLES, ids=[p.name for p in EXAMPLES])
def test_example_runs(path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    runpy.run_path(str(path), run_name="__main__")
    out = capsys.readouterr().out
    assert out.strip(), f"{path.name} printed nothing"


def test_quickstart_output(capsys: pytest.CaptureFixture[str]) -> None:
    runpy.run_path(str(EXAMPLES[0].parent / "quickstart.py"), run_name="__main__")
    out = capsys.readouterr().out
    assert "UART0 loopback read: b'hello'" in out
    assert "module-b refused: device_or_resource_busy" in out
    assert "owners_count=2" in out
    assert "LED_GREEN lit: True" in out
