"""The ``run``, ``monitor`` and ``bench`` subcommands of ``actorhw`` (see actorhw.cli).

They return exit codes and raise ActorHwError; :func:`actorhw.cli.main` is still the
one place that turns errors into exit codes and ``actorhw: error: ...`` lines.
"""

from __future__ import annotations

import argparse
import itertools
import json
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import attrs
from rich.console import Console
from rich.live import Live
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from actorhw.api.runtime import Runtime
from actorhw.cli.options import interval, seconds
from actorhw.core.errors import ActorHwError, InvalidArgumentError, TimedOutError
from actorhw.core.messages import DeviceInfo
from actorhw.drivers.definitions import BoardCatalog
from actorhw.scenario import (
    ScenarioReport,
    StepEvent,
    junit_xml,
    load_scenario,
    run_scenario,
)
from actorhw.scenario.report import partial_report

Handler = Callable[[argparse.Namespace, Console], int]

#: Deadline of one board's memory sample in the monitor's table, in s.
MEMORY_TIMEOUT = 3.0

RUN_EPILOG = """examples:
  actorhw run scenarios/quickstart.toml
  actorhw run scenarios/*.toml --junit report.xml
  actorhw run scenarios/microbit-smoke.toml --json

exit code 0 only if every step of every scenario passed; 1 otherwise. Every file is
checked (file:line:key errors) before any runs. Ctrl-C stops cleanly: leases are
released and boards stopped, then the exit code is 130."""

MONITOR_EPILOG = """examples:
  actorhw monitor --board microbit-qemu
  actorhw monitor --board same70-xplained --board microbit --once
  actorhw monitor --board microbit-qemu --count 3 --interval 0.5 --json"""

BENCH_EPILOG = """examples:
  actorhw bench --quick
  actorhw bench --only core --quick
  actorhw bench --json

runs tests/benchmarks/bench_*.py of a source checkout; each prints its figures, the
ratios to its baselines, the target and PASS/MISS."""


# --- run ----------------------------------------------------------------------------------


def _status_style(status: str) -> str:
    return {"passed": "green", "failed": "red", "skipped": "yellow"}.get(status, "")


def cmd_run(args: argparse.Namespace, out: Console) -> int:
    """``actorhw run FILE...``: check every file, run each, report."""
    catalog = BoardCatalog.discover(args.boards_dir)
    scenarios = [load_scenario(f, catalog=catalog) for f in args.files]  # all checked first
    reports: list[ScenarioReport] = []
    live = not args.json and not args.no_progress
    err = Console(stderr=True)
    try:
        for scenario in scenarios:
            if live:
                reports.append(_run_live(scenario, err, args))
            else:
                reports.append(run_scenario(scenario, boards_dirs=args.boards_dir))
    except KeyboardInterrupt as e:
        # the interrupted scenario has torn down; report it and the ones that finished
        partial = partial_report(e)
        _report([*reports, *([partial] if partial else [])], args, out)
        raise
    _report(reports, args, out)
    return 0 if all(r.passed for r in reports) else 1


def _report(reports: list[ScenarioReport], args: argparse.Namespace, out: Console) -> None:
    if args.junit:
        Path(args.junit).write_text(junit_xml(reports), encoding="utf-8")
    if args.json:
        print(json.dumps([r.to_dict() for r in reports], indent=2))
    elif reports:
        _summary(reports, out)


def _run_live(scenario: Any, err: Console, args: argparse.Namespace) -> ScenarioReport:
    progress = Progress(
        TextColumn("[bold]{task.fields[scenario]}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TextColumn("{task.description}"),
        console=err,
        transient=False,
    )
    task = progress.add_task(
        "bring-up", total=scenario.step_count, scenario=scenario.name, start=True
    )

    def on_event(event: StepEvent) -> None:
        if event.index < 0 or event.status == "running":
            progress.update(task, description=event.step)
        elif event.counted:  # the unit of the summary and JUnit: a group's step per target
            progress.update(task, advance=1, description=event.status)
        if event.status == "failed":
            progress.console.print(f"[red]FAILED[/] {event.step}: {event.message}", markup=True)

    with progress:
        return run_scenario(scenario, on_event=on_event, boards_dirs=args.boards_dir)


def _summary(reports: list[ScenarioReport], out: Console) -> None:
    table = Table(title="scenarios")
    for column in ("scenario", "result", "passed", "failed", "skipped", "time"):
        table.add_column(column)
    for report in reports:
        counts = report.counts()
        table.add_row(
            report.name,
            "[green]PASS[/]" if report.passed else "[red]FAIL[/]",
            str(counts["passed"]),
            str(counts["failed"]),
            str(counts["skipped"]),
            f"{report.elapsed:.1f} s",
        )
    out.print(table)
    for report in reports:
        problems = [report.error] if report.error else []
        problems += ["interrupted"] if report.interrupted else []
        problems += [
            f"{s.name}: {s.message}"
            for top in report.steps
            for s in (top.children or (top,))
            if s.status == "failed"
        ]
        for problem in problems:
            out.print(f"FAILED {report.file}: {problem}", markup=False, soft_wrap=True)


# --- monitor ------------------------------------------------------------------------------


def monitor_rows(rt: Runtime) -> list[dict[str, Any]]:
    """Every device of every board: state, owners, memory, last error (plain data)."""
    memory = _memory_by_board(rt)
    rows = []
    for status in rt.boards():
        for info in rt.devices(status.board):
            rows.append(_monitor_row(info, memory.get(status.board)))
    return rows


def _monitor_row(info: DeviceInfo, memory: dict[str, Any] | None) -> dict[str, Any]:
    return {
        "device": info.device.key,
        "kind": info.kind.value,
        "state": info.state.name,
        "owners": list(info.owners),
        "owners_count": info.owners_count,
        "memory": memory if info.kind.value == "board" else None,
        "last_error": info.last_error,
    }


def _memory_by_board(rt: Runtime) -> dict[str, dict[str, Any]]:
    """Each board's memory from the resource monitor (boards that can tell)."""
    out: dict[str, dict[str, Any]] = {}
    for status in rt.boards():
        board = rt.ids(status.board).__members__.get("BOARD")
        if board is None:
            continue
        try:
            memory = rt.monitor.status(board, timeout=MEMORY_TIMEOUT).memory
        except ActorHwError:
            continue  # no figures (a simulated board, a board recovering): shown as "-"
        out[status.board] = attrs.asdict(memory)
    return out


def _memory_text(memory: dict[str, Any] | None) -> str:
    if not memory or memory.get("free") is None:
        return "-"
    total = memory.get("total")
    return f"{memory['free']} B free" + (f" of {total}" if total else "")


def monitor_table(rows: list[dict[str, Any]]) -> Table:
    """The monitor's table of ``rows``."""
    table = Table(title=f"devices at {time.strftime('%H:%M:%S')}")
    table.add_column("board", no_wrap=True)
    table.add_column("device", no_wrap=True)
    table.add_column("kind")
    table.add_column("state", no_wrap=True)
    for column in ("owners", "memory", "last error"):
        table.add_column(column)
    for row in rows:
        board, _, name = row["device"].partition(".")
        owners = f"{row['owners_count']}: {', '.join(row['owners'])}" if row["owners"] else "0"
        style = "red" if row["state"] in ("ERROR", "DISCONNECTED") else ""
        table.add_row(
            board,
            name,
            row["kind"],
            f"[{style}]{row['state']}[/]" if style else row["state"],
            owners,
            _memory_text(row["memory"]),
            row["last_error"] or "",
        )
    return table


def cmd_monitor(args: argparse.Namespace, out: Console) -> int:
    """``actorhw monitor``: bring boards up and show their devices live."""
    count = 1 if args.once else args.count
    if count is not None and count < 1:
        raise InvalidArgumentError("--count must be at least 1", argument="count")
    stop = threading.Event()  # only set by Ctrl-C's unwinding: a deadline-bound pause
    with Runtime.start(boards=args.board, boards_dirs=args.boards_dir, timeout=args.timeout) as rt:
        if args.json:
            for n in _ticks(count):
                if n:
                    stop.wait(args.interval)
                print(json.dumps({"at": time.time(), "devices": monitor_rows(rt)}), flush=True)
            return 0
        if count is not None and not out.is_terminal:
            for n in _ticks(count):
                if n:
                    stop.wait(args.interval)
                out.print(monitor_table(monitor_rows(rt)))
            return 0
        with Live(monitor_table(monitor_rows(rt)), console=out, auto_refresh=False) as live:
            for n in _ticks(count):
                if n:
                    stop.wait(args.interval)
                live.update(monitor_table(monitor_rows(rt)), refresh=True)
    return 0


def _ticks(count: int | None) -> Iterable[int]:
    return range(count) if count is not None else itertools.count()


# --- bench --------------------------------------------------------------------------------


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


# --- parsers ------------------------------------------------------------------------------


def add_parsers(sub: Any) -> None:
    """Add ``run``, ``monitor`` and ``bench`` to the ``actorhw`` subparsers."""
    fmt = argparse.RawDescriptionHelpFormatter
    p = sub.add_parser(
        "run", help="run scenario files", epilog=RUN_EPILOG, formatter_class=fmt,
        description="Run scenario files (TOML): bring boards up, run checked steps.",
    )  # fmt: skip
    p.add_argument("files", nargs="+", metavar="FILE", help="scenario files (.toml)")
    p.add_argument("--junit", metavar="OUT.xml", help="write a JUnit XML report")
    p.add_argument("--json", action="store_true", help="print the reports as JSON")
    p.add_argument("--no-progress", action="store_true", help="no live progress display")
    p.set_defaults(run=cmd_run)

    p = sub.add_parser(
        "monitor", help="a live table of devices", epilog=MONITOR_EPILOG, formatter_class=fmt,
        description="Bring boards up and show every device: state, owners, memory, last error.",
    )  # fmt: skip
    p.add_argument("--board", action="append", required=True, help="a board (repeatable)")
    p.add_argument("--once", action="store_true", help="print one table and exit")
    p.add_argument("--count", type=int, help="print this many tables and exit")
    p.add_argument("--interval", type=interval, default=1.0, help="seconds between tables")
    p.add_argument("--timeout", type=seconds, default=30.0, help="bring-up deadline, s")
    p.add_argument("--json", action="store_true", help="one JSON line per table")
    p.set_defaults(run=cmd_monitor)

    p = sub.add_parser(
        "bench", help="run the benchmarks", epilog=BENCH_EPILOG, formatter_class=fmt,
        description="Run tests/benchmarks/bench_*.py of a source checkout.",
    )  # fmt: skip
    p.add_argument("--quick", action="store_true", help="short runs (each script's --quick)")
    p.add_argument("--only", action="append", metavar="NAME", help="only scripts matching NAME")
    p.add_argument("--dir", help="the benchmarks folder (default: the checkout's)")
    p.add_argument("--timeout", type=seconds, default=1800.0, help="per-script deadline, s")
    p.add_argument("--json", action="store_true", help="print the results as JSON")
    p.set_defaults(run=cmd_bench)
