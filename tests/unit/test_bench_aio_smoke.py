"""Smoke test of tests/benchmarks/bench_aio.py --quick: it runs and prints its lines."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.timeout(60)

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "bench_aio.py"


def test_quick_run_prints_figures_targets_and_verdicts(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, str(SCRIPT), "--quick"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=50,
        check=False,
    )
    assert "Traceback" not in result.stderr, result.stderr
    lines = result.stdout.splitlines()
    # An honest exit: 1 exactly when a target was missed (the shared machine decides).
    assert result.returncode == (1 if any(x.endswith("MISS") for x in lines) else 0)
    assert [line[:2] for line in lines] == ["a.", "b."], result.stdout
    for line in lines:
        figures = [float(x) for x in re.findall(r"(-?\d+\.\d+) us", line)]
        assert len(figures) == 3 and figures[0] > 0 and figures[1] > 0, line
        assert re.search(r"ratio \d+\.\d+x", line), line
        assert "target <=" in line and line.endswith(("PASS", "MISS")), line
