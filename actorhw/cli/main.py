"""actorhw: drive many hardware boards at once, safely, from the command line.

main() is the one place errors become exit codes: 0 success; 1 an actorhw error; 2 bad
usage; 3 a deadline passed (timed_out); 4 code on a board raised (device_exception);
130 interrupted (Ctrl-C); 143 terminated (SIGTERM: the same clean stop as Ctrl-C).
Errors print as ``actorhw: error: [code] message`` (with --json, as
``{"error": {"code": ..., "message": ...}}`` on stdout); tracebacks only with --debug.
A mistyped subcommand, option or board name gets the closest known names.
"""

from __future__ import annotations

import argparse
import importlib.metadata
import json
import re
import sys
import traceback
from collections.abc import Sequence
from typing import Any, NoReturn

from rich.console import Console

from actorhw.cli import bench, boards, cluster, execute, monitor, run
from actorhw.cli.command import Command, add_common_options
from actorhw.cli.serial_cmds import add_serial_parsers
from actorhw.cli.signals import Terminated, terminate_like_interrupt
from actorhw.core import log
from actorhw.core.errors import ActorHwError
from actorhw.core.suggest import did_you_mean

#: Every subcommand, in the order --help lists them. A new one: a module defining a
#: Command, and a line here.
COMMANDS: tuple[Command, ...] = (
    boards.BOARDS,
    boards.DEVICES,
    execute.COMMAND,
    run.COMMAND,
    monitor.COMMAND,
    bench.COMMAND,
    cluster.SERVER,
    cluster.SERVE,
    cluster.RESERVE,
)

EXIT_CODES = {"timed_out": 3, "device_exception": 4}

DESCRIPTION = """\
actorhw drives many hardware boards at once: each board and each of its devices is an
actor with its own lifecycle and owners, so scripts, tests and people can share a lab
without stepping on each other. Boards are data files (actorhw boards); MicroPython
boards run code (actorhw exec); scenario files bring boards up and run checked steps
(actorhw run) with JUnit reports for CI; actorhw monitor shows who holds what."""

EPILOG = """examples:
  actorhw boards
  actorhw devices --board same70-xplained --json
  actorhw exec --board microbit-qemu "print(1+1)"
  actorhw exec --port /dev/ttyACM0 "print(1+1)"      # any MicroPython board on a port
  actorhw ports --probe
  actorhw fs cp main.py :main.py --port auto
  actorhw run scenarios/quickstart.toml --junit report.xml
  actorhw monitor --board microbit-qemu
  actorhw bench --quick
  actorhw --cluster nats://lab:4222 boards           # every host of a cluster (docs/cluster.md)

every subcommand has --help with examples. Docs: docs/index.md (or the docs site)."""


def version() -> str:
    try:
        return importlib.metadata.version("actorhw")
    except importlib.metadata.PackageNotFoundError:  # a source tree not installed
        return "unknown"


class Parser(argparse.ArgumentParser):
    """argparse, with "did you mean" on usage errors and JSON errors under --json."""

    json_errors = False
    words: tuple[str, ...] = ()
    """The command line being parsed (for suggestions about mistyped options)."""

    def error(self, message: str) -> NoReturn:
        message += _usage_hint(self, message)
        if Parser.json_errors:
            print(json.dumps({"error": {"code": "usage", "message": message}}))
            self.exit(2)
        self.print_usage(sys.stderr)
        self.exit(2, f"{self.prog}: error: {message}\n")


def _usage_hint(parser: argparse.ArgumentParser, message: str) -> str:
    choice = re.search(r"invalid choice: '([^']*)' \(choose from (.*)\)", message)
    if choice:
        return did_you_mean(choice.group(1), re.findall(r"'([^']*)'", choice.group(2)))
    options = _option_strings(parser)
    mistyped = [
        w.split("=")[0]
        for w in Parser.words
        if w.startswith("--") and w.split("=")[0] not in options
    ]
    return did_you_mean(mistyped[0], options) if mistyped else ""


def _option_strings(parser: argparse.ArgumentParser) -> set[str]:
    found: set[str] = {"--help", "--version"}
    for action in parser._actions:
        found.update(s for s in action.option_strings if s.startswith("--"))
        if isinstance(action, argparse._SubParsersAction):
            for sub in action.choices.values():
                found |= _option_strings(sub)
    return found


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of every subcommand."""
    parser = Parser(
        prog="actorhw",
        description=DESCRIPTION,
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"actorhw {version()}")
    add_common_options(parser, top=True)
    cluster.add_cluster_options(parser)
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for command in COMMANDS:
        p = sub.add_parser(
            command.name,
            help=command.help,
            description=command.description,
            epilog=command.examples,
            formatter_class=argparse.RawDescriptionHelpFormatter,
        )
        command.arguments(p)
        add_common_options(p, top=False)
        p.set_defaults(run=command.run)
    add_serial_parsers(sub)  # ports, fs, repl (actorhw.cli.serial_cmds)
    for name in ("ports", "fs", "repl"):
        add_common_options(sub.choices[name], top=False)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit code."""
    words = list(sys.argv[1:] if argv is None else argv)
    Parser.json_errors = "--json" in words
    Parser.words = tuple(words)
    args = build_parser().parse_args(words)
    if args.verbose:
        log.logger.remove()  # loguru's default stderr sink: each line printed once
        log.enable("DEBUG" if args.debug else "INFO")
    out = Console()
    err = Console(stderr=True)
    try:
        run = cluster.for_cluster(args) if args.cluster else args.run
        with terminate_like_interrupt():
            code: int = run(args, out)
            return code
    except Terminated:
        err.print("actorhw: terminated (SIGTERM)", markup=False)
        return 143
    except KeyboardInterrupt:
        err.print("actorhw: interrupted", markup=False)
        return 130
    except ActorHwError as e:
        if args.debug:
            traceback.print_exc()
        _print_error(e, args, err)
        return EXIT_CODES.get(e.code, 1)
    except Exception as e:  # a bug: one line, the traceback with --debug
        if args.debug:
            raise
        _print_error(e, args, err)
        return 1


def _print_error(e: Exception, args: argparse.Namespace, err: Console) -> None:
    data: dict[str, Any]
    if isinstance(e, ActorHwError):
        data = e.to_dict()
    else:
        data = {
            "code": "internal_error",
            "message": f"{type(e).__name__}: {e} (--debug shows where)",
        }
    if args.json:
        print(json.dumps({"error": data}))
        return
    board_traceback = data.get("traceback_text")
    if isinstance(board_traceback, str) and board_traceback.strip():
        # what the board printed, as mpremote shows it: file, line, exception
        err.print(board_traceback.rstrip(), markup=False, highlight=False, soft_wrap=True)
    text = str(e) if isinstance(e, ActorHwError) else f"[internal_error] {data['message']}"
    err.print(f"actorhw: error: {text}", markup=False, highlight=False, soft_wrap=True)


if __name__ == "__main__":
    raise SystemExit(main())
