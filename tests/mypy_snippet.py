"""Run mypy --strict on a snippet of code, as a user's project would type-check it."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path


def mypy_snippet(tmp_path: Path, code: str) -> subprocess.CompletedProcess[str]:
    """mypy's run over ``code`` written to ``tmp_path / "snippet.py"`` (110 s at most)."""
    path = tmp_path / "snippet.py"
    path.write_text(code)
    return subprocess.run(
        [sys.executable, "-m", "mypy", "--strict", "--no-incremental", str(path)],
        capture_output=True, text=True, timeout=110, check=False,
    )  # fmt: skip
