"""Run pytest on a small project in a subprocess and read its JUnit report.

The plugin's own tests use this: each run is a fresh pytest session (its own board
pool, its own xdist workers), as a lab's CI would start it.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import xml.etree.ElementTree as ET
from pathlib import Path

import attrs


@attrs.frozen
class Run:
    """What one pytest run printed and reported."""

    returncode: int
    stdout: str
    stderr: str
    outcomes: dict[str, str]
    """Test name -> ``passed``, ``failed``, ``error`` or ``skipped``."""
    messages: dict[str, str]
    """Test name -> its failure, error or skip message."""

    def __str__(self) -> str:
        return f"exit {self.returncode}\n--- stdout\n{self.stdout}\n--- stderr\n{self.stderr}"


def clean_env() -> dict[str, str]:
    """This environment without the outer session's pytest and xdist variables."""
    return {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("PYTEST_", "ACTORHW_")) and k != "PYTHONPATH"
    }


def write_project(folder: Path, files: dict[str, str]) -> None:
    """Write ``files`` (path -> dedented text) under ``folder``."""
    for name, text in files.items():
        path = folder / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text), encoding="utf-8")


def run_pytest(
    folder: Path, *args: str, timeout: float = 120.0, python: str = sys.executable
) -> Run:
    """``python -m pytest ARGS`` in ``folder``, with a JUnit report read back."""
    report = folder / "report.xml"
    result = subprocess.run(
        [python, "-m", "pytest", "-p", "no:cacheprovider", f"--junitxml={report}", *args],
        cwd=folder,
        env=clean_env(),
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    outcomes: dict[str, str] = {}
    messages: dict[str, str] = {}
    if report.exists():
        for case in ET.parse(report).getroot().iter("testcase"):
            name = case.get("name", "")
            outcome, message = "passed", ""
            for tag in ("failure", "error", "skipped"):
                found = case.find(tag)
                if found is not None:
                    outcome = "failed" if tag == "failure" else tag
                    message = found.get("message", "") or (found.text or "")
                    break
            outcomes[name] = outcome
            messages[name] = message
    return Run(result.returncode, result.stdout, result.stderr, outcomes, messages)
