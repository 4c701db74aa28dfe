"""Smoke runs of the QEMU benchmarks' --quick forms (issue 14): they run, print every
figure with its target, and exit 1 exactly when a line says MISS (which lines do, the
shared machine decides; no timing is asserted here)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from actorhw.links import qemu_available

BENCH = Path(__file__).resolve().parents[1] / "benchmarks"


def _quick(script: str, tmp_path: Path, timeout: float) -> list[str]:
    reason = qemu_available()
    if reason is not None:
        pytest.fail(f"QEMU micro:bit is required for this test: {reason}", pytrace=False)
    result = subprocess.run(
        [sys.executable, str(BENCH / script), "--quick"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    assert "Traceback" not in result.stderr, result.stderr
    lines = result.stdout.splitlines()
    missed = any(line.rstrip().endswith("MISS") or line.startswith("MISS") for line in lines)
    assert result.returncode == (1 if missed else 0), (result.returncode, result.stdout)
    return lines


@pytest.mark.timeout(180)
def test_bench_boards_quick_prints_the_curve(tmp_path: Path) -> None:
    lines = _quick("bench_boards.py", tmp_path, 170)
    rows = [line.split() for line in lines if line.strip().startswith(("QEMU", "unix port"))]
    # board label (two words), boards, runtime/s, bare/s, ratio, target..., verdict
    assert [(row[0], row[2]) for row in rows] == [("QEMU", "1"), ("QEMU", "2"), ("unix", "2")]
    for row in rows:
        assert float(row[3]) > 0 and float(row[4]) > 0 and row[-1] in ("PASS", "MISS"), row


@pytest.mark.timeout(180)
def test_bench_runtime_exec_quick_prints_wall_and_cpu_ratios(tmp_path: Path) -> None:
    lines = _quick("bench_runtime_exec.py", tmp_path, 170)
    assert any("CPU us/call" in line for line in lines), lines
    verdicts = [line for line in lines if line.startswith(("PASS", "MISS"))]
    assert len(verdicts) == 4, lines
    assert any("host CPU per call" in v for v in verdicts)


@pytest.mark.timeout(180)
def test_bench_resources_quick_prints_paired_monitoring_overhead(tmp_path: Path) -> None:
    lines = _quick("bench_resources.py", tmp_path, 170)
    verdicts = [line for line in lines if line.rstrip().endswith(("PASS", "MISS"))]
    assert [v.split()[0] for v in verdicts] == ["a.", "b.", "c."], lines
    assert "paired by round [" in verdicts[1]
