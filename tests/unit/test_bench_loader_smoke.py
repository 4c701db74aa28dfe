"""Smoke test of tests/benchmarks/bench_loader.py: its quick run prints both figures.

The speed targets are the benchmark's (``actorhw bench``); here the ratio is checked
loosely, so a quadratic loader (ratio ~64) still fails on a busy machine.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.timeout(120)

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "bench_loader.py"


def test_quick_run_prints_figures_and_the_loader_is_linear(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, str(SCRIPT), "--quick"],
        cwd=tmp_path, capture_output=True, text=True, timeout=110, check=False,
    )  # fmt: skip
    assert result.returncode in (0, 1), result.stderr
    a = re.search(r"ratio 8k/1k ([\d.]+) .* (PASS|MISS)", result.stdout)
    b = re.search(r"50,000 devices (refused|ACCEPTED) in ([\d.]+) ms .* (PASS|MISS)", result.stdout)
    assert a is not None and b is not None, result.stdout
    assert float(a.group(1)) < 24, result.stdout
    assert b.group(1) == "refused", result.stdout
