"""Smoke test of tests/benchmarks/bench_cluster.py --quick: it runs against a real
nats-server and hosts, prints its four figures with targets and verdicts (and a's
rounds and their spread), and its exit code says whether every target was met."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.timeout(240)

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "bench_cluster.py"


def test_quick_run_prints_figures_targets_and_verdicts(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, str(SCRIPT), "--quick"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=220,
        check=False,
    )
    lines = result.stdout.splitlines()
    # Lines ending "(information)" (d': the same job as a Python function) have no
    # target; indented lines are a figure's details (a's rounds and their spread).
    figures = [line for line in lines if not line.endswith("(information)") and line[:1] != " "]
    assert any(line.startswith("   added per round:") and "spread" in line for line in lines)
    assert [line[:2] for line in figures] == ["a.", "b.", "c.", "d."], (
        result.stdout,
        result.stderr,
    )
    for line in lines:
        assert re.search(r"\d+\.\d+ ?(ms|s|x)", line), line
    for line in figures:
        assert "target" in line and line.endswith(("PASS", "MISS")), line
    # Exit 1 exactly when a target was missed (figures on a shared machine vary).
    assert result.returncode == (1 if any(line.endswith("MISS") for line in figures) else 0)
