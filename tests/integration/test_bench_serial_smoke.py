"""Smoke test of tests/benchmarks/bench_serial.py --quick: it runs on a real unix-port
board and prints every figure and target line.  No timing is asserted here: a MISS is
the benchmark's verdict (exit 1), not a broken script (exit 2 or a traceback)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tests import unix_port

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "bench_serial.py"


@pytest.mark.timeout(240)
def test_bench_serial_quick_runs_and_reports() -> None:
    reason = unix_port.unavailable()
    if reason is not None:
        pytest.fail(f"the MicroPython unix port is required: {reason}", pytrace=False)
    done = subprocess.run(
        [sys.executable, str(SCRIPT), "--quick"], capture_output=True, text=True, timeout=220
    )
    assert done.returncode in (0, 1), done.stdout + done.stderr
    out = done.stdout
    for line in (
        "runtime Board.exec",
        "RawReplLink.exec",
        "bare pyserial, same exchange",
        "mpremote SerialTransport.exec",
        "RawReplLink.exec (raw-paste)",
        "mpremote fs_writefile",
        "link <= 1.1x bare",
        "4 KiB raw-paste faster than mpremote",
    ):
        assert line in out, out
    assert out.count("PASS") + out.count("MISS") == 5
    assert "execs the link sent through raw-paste: 0" not in out
