"""``actorhw bench``: run the benchmarks of a source checkout and print their figures."""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from actorhw.cli.command import Command
from actorhw.cli.options import seconds
from actorhw.core.errors import InvalidArgumentError, TimedOutError

EXAMPLES = """examples:
  actorhw bench --quick
  actorhw bench --only core --quick
  actorhw bench --json

runs tests/benchmarks/bench_*.py of a source checkout; each prints its figures, the
ratios to its baselines, the target and PASS/MISS."""


def benchmarks_dir(explicit: str | None = None) -> Path:
    """tests/benchmarks of the source checkout this actorhw runs from (or ``explicit``).

    Raises:
        InvalidArgumentError: not a source checkout (no bench_*.py there).
    """
    if explicit:
        folder = Path(explicit)
    else:
        import actorhw

        folder = Path(actorhw.__file__).resolve().parent.parent / "tests" / "benchmarks"
    if not folder.is_dir() or not sorted(folder.glob("bench_*.py")):
        raise InvalidArgumentError(
            f"no benchmarks at {folder}: `actorhw bench` runs tests/benchmarks/bench_*.py of "
            "a source checkout (clone the repository, `pip install -e .[test]`, run it there), "
            "or pass --dir",
            argument="dir",
        )
    return folder


def cmd_bench(args: argparse.Namespace, out: Console) -> int:
    """``actorhw bench``: run every bench_*.py and print what it measured."""
    folder = benchmarks_dir(args.dir)
    scripts = sorted(folder.glob("bench_*.py"))
    if args.only:
        scripts = [s for s in scripts if any(o in s.stem for o in args.only)]
        if not scripts:
            raise InvalidArgumentError(
                f"no benchmark matches {args.only}; have: "
                f"{', '.join(s.stem for s in sorted(folder.glob('bench_*.py')))}",
                argument="only",
            )
    results: list[dict[str, Any]] = []
    for script in scripts:
        command = [sys.executable, str(script), *(["--quick"] if args.quick else [])]
        if not args.json:
            out.rule(f"{script.stem}{' --quick' if args.quick else ''}")
        began = time.monotonic()
        try:
            done = subprocess.run(
                command, capture_output=True, text=True, timeout=args.timeout, check=False
            )
        except subprocess.TimeoutExpired as e:
            raise TimedOutError(
                f"{script.name} did not finish within {args.timeout:g} s", timeout=args.timeout
            ) from e
        lines = [line for line in done.stdout.splitlines() if line.strip()]
        results.append(
            {
                "script": script.name,
                "returncode": done.returncode,
                "seconds": round(time.monotonic() - began, 2),
                "lines": lines,
                "pass": sum(1 for line in lines if "PASS" in line),
                "miss": sum(1 for line in lines if "MISS" in line),
                "stderr": done.stderr.strip().splitlines()[-5:] if done.returncode else [],
            }
        )
        if not args.json:
            for line in lines:
                style = "green" if "PASS" in line else "red" if "MISS" in line else ""
                out.print(line, style=style or None, markup=False, highlight=False, soft_wrap=True)
            if done.returncode:
                out.print(f"[red]{script.name} exited with {done.returncode}[/]")
                for line in results[-1]["stderr"]:
                    out.print(line, markup=False, highlight=False, soft_wrap=True)
    if args.json:
        print(json.dumps(results, indent=2))
    else:
        table = Table(title="benchmarks")
        for column in ("script", "exit", "PASS", "MISS", "time"):
            table.add_column(column)
        for r in results:
            table.add_row(r["script"], str(r["returncode"]), str(r["pass"]), str(r["miss"]),
                          f"{r['seconds']:.1f} s")  # fmt: skip
        out.print(table)
    return 0 if all(r["returncode"] == 0 for r in results) else 1


def _arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--quick", action="store_true", help="short runs (each script's --quick)")
    p.add_argument("--only", action="append", metavar="NAME", help="only scripts matching NAME")
    p.add_argument("--dir", help="the benchmarks folder (default: the checkout's)")
    p.add_argument("--timeout", type=seconds, default=1800.0, help="per-script deadline, s")


COMMAND = Command(
    name="bench",
    help="run the benchmarks",
    description="Run tests/benchmarks/bench_*.py of a source checkout.",
    examples=EXAMPLES,
    arguments=_arguments,
    run=cmd_bench,
)
