"""``actorhw run``: check every scenario file, run each, report (summary, JSON, JUnit)."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import TYPE_CHECKING

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from actorhw.api.lab import BoardDirectory
from actorhw.cli.command import Command
from actorhw.core.errors import ScenarioFileError
from actorhw.drivers.definitions import BoardCatalog
from actorhw.scenario import (
    Scenario,
    ScenarioReport,
    StepEvent,
    junit_xml,
    load_scenario,
    run_scenario,
)
from actorhw.scenario.report import leaves, partial_report

if TYPE_CHECKING:
    from actorhw.cluster import Cluster

EXAMPLES = """examples:
  actorhw run scenarios/quickstart.toml
  actorhw run scenarios/*.toml --junit report.xml
  actorhw run scenarios/microbit-smoke.toml --json
  actorhw --cluster nats://lab:4222 run lab.toml     # boards on hosts: host/board

exit code 0 only if every step of every scenario passed; 1 otherwise. Every file is
checked first and every problem of every file reported (file:line:key) before any
runs. Ctrl-C or SIGTERM stops cleanly: leases are released and boards stopped, the
summary and JUnit report are written, then the exit code is 130 (143 for SIGTERM)."""


def load_all(
    files: list[str], catalog: BoardCatalog, cluster: BoardDirectory | None = None
) -> list[Scenario]:
    """Every file loaded (checked against ``cluster``'s hosts and boards, if it runs on
    one); the problems of all of them raised as one error."""
    scenarios, errors = [], []
    for f in files:
        try:
            scenarios.append(load_scenario(f, catalog=catalog, cluster=cluster))
        except ScenarioFileError as e:
            errors.append(e)
    if len(errors) == 1:
        raise errors[0]
    if errors:
        problems = [p for e in errors for p in (e.problems or [e.to_dict()])]
        listing = "".join(f"\n  {p['message']}" for p in problems[1:])
        raise ScenarioFileError(
            f"{problems[0]['message']}\n  and {len(problems) - 1} more problems in "
            f"{len(errors)} files:{listing}",
            file=errors[0].file,
            line=errors[0].line,
            key=errors[0].key,
            problems=problems,
        )
    return scenarios


def cmd_run(args: argparse.Namespace, out: Console) -> int:
    """``actorhw run FILE...``: check every file, run each, report."""
    return run_files(args, out)


def run_files(args: argparse.Namespace, out: Console, cluster: Cluster | None = None) -> int:
    """Check every file, run each (on ``cluster``'s hosts if given), report."""
    scenarios = load_all(args.files, BoardCatalog.discover(args.boards_dir), cluster)
    reports: list[ScenarioReport] = []
    live = not args.json and not args.no_progress
    err = Console(stderr=True)
    try:
        for scenario in scenarios:
            if live:
                reports.append(_run_live(scenario, err, args, cluster))
            else:
                reports.append(
                    run_scenario(
                        scenario,
                        boards_dirs=args.boards_dir,
                        drivers_dirs=args.drivers_dir,
                        runtime=cluster,
                    )
                )
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
        summary(reports, out)


def _run_live(
    scenario: Scenario, err: Console, args: argparse.Namespace, cluster: Cluster | None
) -> ScenarioReport:
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
        return run_scenario(
            scenario,
            on_event=on_event,
            boards_dirs=args.boards_dir,
            drivers_dirs=args.drivers_dir,
            runtime=cluster,
        )


def summary(reports: list[ScenarioReport], out: Console) -> None:
    """A table of the reports (steps counted as progress and JUnit count them), then
    every failure, with the board's traceback where code on a board raised."""
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
        problems: list[tuple[str, str]] = [(report.error, "")] if report.error else []
        problems += [("interrupted", "")] if report.interrupted else []
        problems += [
            (f"{s.name}: {s.message}", s.detail)
            for s in leaves(report.steps)
            if s.status == "failed"
        ]
        for problem, detail in problems:
            out.print(f"FAILED {report.file}: {problem}", markup=False, soft_wrap=True)
            for line in detail.rstrip().splitlines():
                out.print(f"    {line}", markup=False, highlight=False, soft_wrap=True)


def _arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("files", nargs="+", metavar="FILE", help="scenario files (.toml)")
    p.add_argument("--junit", metavar="OUT.xml", help="write a JUnit XML report")
    p.add_argument("--no-progress", action="store_true", help="no live progress display")


COMMAND = Command(
    name="run",
    help="run scenario files",
    description="Run scenario files (TOML): bring boards up, run checked steps, report.",
    examples=EXAMPLES,
    arguments=_arguments,
    run=cmd_run,
)
