"""``actorhw exec``: run MicroPython on a board and print what it printed."""

from __future__ import annotations

import argparse
import json
import sys

from rich.console import Console

from actorhw.api.handles import Board
from actorhw.cli.command import Command
from actorhw.cli.options import seconds
from actorhw.cli.serial_cmds import add_port_option, start_board
from actorhw.core.errors import UnsupportedOperationError


def _exec(args: argparse.Namespace, out: Console) -> int:
    rt, args.board = start_board(args)
    with rt:
        board_id = rt.ids(args.board).__members__.get("BOARD")
        if board_id is None:
            raise UnsupportedOperationError(
                f"board {args.board} has no BOARD device, so it does not run code; "
                "exec needs a board with a MicroPython driver (microbit-qemu, or --port)",
                board=args.board,
            )
        with rt.lease(Board, board_id, owner="actorhw-cli") as board:
            output = board.exec(args.code, timeout=args.exec_timeout)
    if args.json:
        print(json.dumps({"ok": True, "output": output}))
    else:
        sys.stdout.write(output)
    return 0


def _arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("code", help="the code to run")
    p.add_argument("--board", help="a board definition with a BOARD device")
    add_port_option(p)
    p.add_argument("--timeout", type=seconds, default=30.0, help="bring-up deadline, s")
    p.add_argument("--exec-timeout", type=seconds, default=10.0, help="the code's deadline, s")


COMMAND = Command(
    name="exec",
    help="run MicroPython code on a board and print its output",
    description="Run MicroPython code on a board and print its output. If the code raises,"
    " the board's traceback is shown (with its line numbers) and the exit code is 4.",
    examples='examples:\n  actorhw exec --board microbit-qemu "print(1+1)"\n'
    '  actorhw exec --port /dev/ttyACM0 "print(1+1)"   # any MicroPython board on a port\n'
    '  actorhw exec --board microbit-qemu --json "import gc; print(gc.mem_free())"',
    arguments=_arguments,
    run=_exec,
)
