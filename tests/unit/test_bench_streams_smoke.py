"""Smoke test of tests/benchmarks/bench_streams.py: its quick sim part runs and reports.

No timing assertion: the point is that the script works, not how fast the machine is.
The QEMU part runs in the full benchmark (it needs the emulator).
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.timeout(60)

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "bench_streams.py"


def test_quick_sim_part_prints_its_figures_and_verdict(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, str(SCRIPT), "--quick", "--only", "sim"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=50,
        check=False,
    )
    assert result.returncode in (0, 1), result.stderr
    out = result.stdout
    one = re.search(r"to 1 subscriber\s+([\d,]+) msg/s\s+target >= 50,000 msg/s\s+(PASS|MISS)", out)
    eight = re.search(r"to 8 subscribers\s+([\d,]+) msg/s each", out)
    assert one is not None and eight is not None, out
    assert int(one.group(1).replace(",", "")) > 0 and int(eight.group(1).replace(",", "")) > 0
    assert result.returncode == (0 if one.group(2) == "PASS" else 1)
