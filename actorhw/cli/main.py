"""The ``actorhw`` command. main() is the one place errors become exit codes.

Exit codes: 0 success; 1 an actorhw error; 2 bad usage; 3 a deadline passed
(timed_out); 4 code on a board raised (device_exception); 130 interrupted (Ctrl-C);
143 terminated (SIGTERM: the same clean stop as Ctrl-C).
Errors print as ``actorhw: error: [code] message``; tracebacks only with --debug.
"""

from __future__ import annotations

import argparse
import json
import sys
import traceback
from collections.abc import Callable, Sequence
from typing import Any

from rich.console import Console
from rich.table import Table

from actorhw.api.handles import Board
from actorhw.api.runtime import Runtime
from actorhw.cli.console import add_parsers
from actorhw.cli.options import seconds
from actorhw.cli.serial_cmds import add_port_option, add_serial_parsers, board_spec
from actorhw.cli.signals import Terminated, terminate_like_interrupt
from actorhw.core import log
from actorhw.core.errors import ActorHwError, UnsupportedOperationError
from actorhw.core.messages import DeviceInfo
from actorhw.drivers.definitions import BoardCatalog

EXIT_CODES = {"timed_out": 3, "device_exception": 4}

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

every subcommand has --help with examples.
"""


def _boards(args: argparse.Namespace, out: Console) -> int:
    catalog = BoardCatalog.discover(args.boards_dir)
    rows: list[dict[str, Any]] = [
        {
            "name": b.name,
            "title": b.title,
            "driver": b.driver,
            "devices": len(b.devices),
            "source": str(b.source),
        }
        for b in sorted(catalog.boards.values(), key=lambda b: b.name)
    ]
    if args.json:
        print(json.dumps(rows, indent=2))
        return 0
    table = Table(title="board definitions")
    for column in ("name", "title", "driver", "devices"):
        table.add_column(column)
    for row in rows:
        table.add_row(row["name"], row["title"], row["driver"], str(row["devices"]))
    out.print(table)
    return 0


def device_row(info: DeviceInfo) -> dict[str, Any]:
    """A device as plain data, for --json and tables."""
    return {
        "id": info.device.name,
        "board": type(info.device).board,
        "kind": info.kind.value,
        "state": info.state.name,
        "policy": info.policy.name,
        "owners": list(info.owners),
        "owners_count": info.owners_count,
        "open_count": info.open_count,
        "generation": info.generation,
        "last_error": info.last_error,
    }


def _devices(args: argparse.Namespace, out: Console) -> int:
    spec = board_spec(args)
    args.board = spec.definition
    with Runtime.start(boards=[spec], boards_dirs=args.boards_dir, timeout=args.timeout) as rt:
        rows = [device_row(i) for i in rt.devices(args.board)]
    if args.json:
        print(json.dumps(rows, indent=2))
        return 0
    table = Table(title=f"devices of {args.board}")
    for column in ("id", "kind", "state", "policy", "owners"):
        table.add_column(column)
    for row in rows:
        owners = f"{row['owners_count']}: {', '.join(row['owners'])}" if row["owners"] else "0"
        table.add_row(row["id"], row["kind"], row["state"], row["policy"], owners)
    out.print(table)
    return 0


def _exec(args: argparse.Namespace, out: Console) -> int:
    spec = board_spec(args)
    args.board = spec.definition
    with Runtime.start(boards=[spec], boards_dirs=args.boards_dir, timeout=args.timeout) as rt:
        board_id = rt.ids(args.board).__members__.get("BOARD")
        if board_id is None:
            raise UnsupportedOperationError(
                f"board {args.board} has no BOARD device, so it does not run code; "
                "exec needs a board with a MicroPython driver (microbit-qemu, or --port)",
                board=args.board,
            )
        with rt.lease(Board, board_id, owner="actorhw-cli") as board:
            try:
                output = board.exec(args.code, timeout=args.exec_timeout)
            except ActorHwError as e:
                if args.json:
                    print(json.dumps({"ok": False, "error": e.to_dict()}))
                    return EXIT_CODES.get(e.code, 1)
                raise
    if args.json:
        print(json.dumps({"ok": True, "output": output}))
    else:
        sys.stdout.write(output)
    return 0


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of every subcommand."""
    parser = argparse.ArgumentParser(
        prog="actorhw",
        description=__doc__.splitlines()[0],
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--debug", action="store_true", help="show tracebacks of errors")
    parser.add_argument("-v", "--verbose", action="store_true", help="log lifecycle events")
    parser.add_argument(
        "--boards-dir",
        action="append",
        default=[],
        metavar="DIR",
        help="an extra folder of board files (repeatable)",
    )
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser(
        "boards", help="list board definitions", epilog="example: actorhw boards --json"
    )
    p.add_argument("--json", action="store_true", help="print JSON")
    p.set_defaults(run=_boards)

    p = sub.add_parser(
        "devices",
        help="bring a board up and list its devices",
        epilog="example: actorhw devices --board same70-xplained",
    )
    p.add_argument("--board", help="a board definition name")
    add_port_option(p)
    p.add_argument("--json", action="store_true", help="print JSON")
    p.add_argument("--timeout", type=seconds, default=30.0, help="bring-up deadline, s")
    p.set_defaults(run=_devices)

    p = sub.add_parser(
        "exec",
        help="run MicroPython code on a board and print its output",
        epilog='example: actorhw exec --board microbit-qemu "print(1+1)"',
    )
    p.add_argument("code", help="the code to run")
    p.add_argument("--board", help="a board definition with a BOARD device")
    add_port_option(p)
    p.add_argument("--json", action="store_true", help="print JSON")
    p.add_argument("--timeout", type=seconds, default=30.0, help="bring-up deadline, s")
    p.add_argument("--exec-timeout", type=seconds, default=10.0, help="the code's deadline, s")
    p.set_defaults(run=_exec)
    add_parsers(sub)  # run, monitor, bench (actorhw.console)
    add_serial_parsers(sub)  # ports, fs, repl (actorhw.cli.serial_cmds)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit code."""
    args = build_parser().parse_args(argv)
    if args.verbose:
        log.logger.remove()  # loguru's default stderr sink: each line printed once
        log.enable("DEBUG" if args.debug else "INFO")
    out = Console()
    err = Console(stderr=True)
    run: Callable[[argparse.Namespace, Console], int] = args.run
    try:
        with terminate_like_interrupt():
            return run(args, out)
    except Terminated:
        err.print("actorhw: terminated (SIGTERM)", markup=False)
        return 143
    except KeyboardInterrupt:
        err.print("actorhw: interrupted", markup=False)
        return 130
    except ActorHwError as e:
        if args.debug:
            traceback.print_exc()
        err.print(f"actorhw: error: {e}", markup=False, highlight=False, soft_wrap=True)
        return EXIT_CODES.get(e.code, 1)


if __name__ == "__main__":
    raise SystemExit(main())
