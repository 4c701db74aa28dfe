"""``actorhw monitor``: bring boards up and show their devices live, fitted to the terminal.

On a terminal it takes the whole screen: a summary row per board, then as many devices
as fit, scrolled with the arrows or PgUp/PgDn; ``q`` quits (as do Ctrl-C and SIGTERM).
``--state`` shows only devices in those states. Piped, or with ``--count``/``--once``,
it prints whole tables; ``--json`` prints one JSON line per sample.
"""

from __future__ import annotations

import argparse
import itertools
import json
import threading
import time
from collections.abc import Iterable
from typing import Any

import attrs
from rich.console import Console
from rich.live import Live

from actorhw.api.runtime import Runtime
from actorhw.cli.command import Command
from actorhw.cli.monitor_view import KeyReader, MonitorView, board_rows
from actorhw.cli.options import interval, seconds
from actorhw.core.errors import ActorHwError, InvalidArgumentError
from actorhw.core.lifecycle import DeviceState
from actorhw.core.messages import DeviceInfo
from actorhw.core.suggest import did_you_mean

#: Deadline of one board's memory sample, in s.
MEMORY_TIMEOUT = 3.0

EXAMPLES = """examples:
  actorhw monitor --board microbit-qemu
  actorhw monitor --board same70-xplained --board microbit --state ACTIVE --state ERROR
  actorhw monitor --board microbit-qemu --count 3 --interval 0.5 --json

keys: q quits; up/down (j/k), PgUp/PgDn (b/space), g/G scroll the devices."""


def monitor_rows(rt: Runtime) -> list[dict[str, Any]]:
    """Every device of every board: state, owners, memory, last error (plain data)."""
    memory = _memory_by_board(rt)
    return [
        _monitor_row(info, memory.get(status.board))
        for status in rt.boards()
        for info in rt.devices(status.board)
    ]


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


def sample(rt: Runtime, states: set[str]) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """The boards' summary rows and the device rows in ``states`` (all if empty)."""
    devices = monitor_rows(rt)
    memory = {d["device"].partition(".")[0]: d["memory"] for d in devices if d["memory"]}
    boards = board_rows(rt.boards(), devices, memory)
    return boards, [d for d in devices if not states or d["state"] in states]


def _states(args: argparse.Namespace) -> set[str]:
    known = [s.name for s in DeviceState]
    wanted = {s.upper() for s in args.state or ()}
    for state in wanted - set(known):
        raise InvalidArgumentError(
            f"--state {state}: no such state{did_you_mean(state, known)}; valid: "
            f"{', '.join(known)}",
            argument="state",
        )
    return wanted


def cmd_monitor(args: argparse.Namespace, out: Console) -> int:
    """``actorhw monitor``: bring boards up and show their devices live."""
    count = 1 if args.once else args.count
    if count is not None and count < 1:
        raise InvalidArgumentError("--count must be at least 1", argument="count")
    states = _states(args)
    pause = threading.Event()  # never set: a deadline-bound pause Ctrl-C can break
    with Runtime.start(
        boards=args.board,
        boards_dirs=args.boards_dir,
        drivers_dirs=args.drivers_dir,
        timeout=args.timeout,
    ) as rt:
        view = MonitorView()
        if args.json or count is not None or not out.is_terminal:
            for n in _ticks(count):
                if n:
                    pause.wait(args.interval)
                boards, devices = sample(rt, states)
                if args.json:
                    line = {"at": time.time(), "boards": boards, "devices": devices}
                    print(json.dumps(line), flush=True)
                else:
                    view.update(boards, devices)
                    out.print(view.render(out.size.width))
            return 0
        _interactive(rt, view, states, args.interval, out)
    return 0


def _interactive(
    rt: Runtime, view: MonitorView, states: set[str], every: float, out: Console
) -> None:
    """The whole screen, refreshed every ``every`` s and on each key, until ``q``."""
    keys = KeyReader() if KeyReader.usable() else None
    with (
        keys or _NoKeys(),
        Live(console=out, screen=True, auto_refresh=False, transient=True) as live,
    ):
        while True:
            view.update(*sample(rt, states))
            live.update(view.render(out.size.width, out.size.height), refresh=True)
            deadline = time.monotonic() + every
            woken = keys.wake if keys is not None else threading.Event()  # never set
            while (left := deadline - time.monotonic()) > 0:
                if keys is None or not woken.wait(left):
                    break
                for action in keys.actions():
                    if action == "quit":
                        return
                    view.key(action, out.size.height)
                live.update(view.render(out.size.width, out.size.height), refresh=True)


class _NoKeys:
    """Stands in for KeyReader when stdin is not a terminal (Ctrl-C quits)."""

    def __enter__(self) -> None:
        return None

    def __exit__(self, *exc: object) -> None:
        return None


def _ticks(count: int | None) -> Iterable[int]:
    return range(count) if count is not None else itertools.count()


def _arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--board", action="append", required=True, help="a board (repeatable)")
    p.add_argument(
        "--state", action="append", metavar="STATE", help="only devices in this state (repeatable)"
    )
    p.add_argument("--once", action="store_true", help="print one table and exit")
    p.add_argument("--count", type=int, help="print this many tables and exit")
    p.add_argument("--interval", type=interval, default=1.0, help="seconds between samples")
    p.add_argument("--timeout", type=seconds, default=30.0, help="bring-up deadline, s")


COMMAND = Command(
    name="monitor",
    help="a live view of boards and devices",
    description="Bring boards up and show every board and device: state, owners, memory, "
    "last error. On a terminal it fits the screen and scrolls; q quits.",
    examples=EXAMPLES,
    arguments=_arguments,
    run=cmd_monitor,
)
