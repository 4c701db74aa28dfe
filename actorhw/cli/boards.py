"""``actorhw boards`` (the board definitions) and ``actorhw devices`` (a board's devices)."""

from __future__ import annotations

import argparse
import json
from typing import Any

from rich.console import Console
from rich.table import Table

from actorhw.cli.command import Command
from actorhw.cli.options import seconds
from actorhw.cli.serial_cmds import add_port_option, start_board
from actorhw.core.messages import DeviceInfo
from actorhw.drivers.definitions import BoardCatalog


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
    rt, args.board = start_board(args)
    with rt:
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


def _devices_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--board", help="a board definition name")
    add_port_option(p)
    p.add_argument("--timeout", type=seconds, default=30.0, help="bring-up deadline, s")


BOARDS = Command(
    name="boards",
    help="list the board definitions",
    description="List every board definition: bundled, ACTORHW_BOARDS_PATH, --boards-dir.",
    examples="examples:\n  actorhw boards\n  actorhw boards --json --boards-dir ./my-boards",
    arguments=lambda p: None,
    run=_boards,
)

DEVICES = Command(
    name="devices",
    help="bring a board up and list its devices",
    description="Bring a board up and list its devices: kind, state, policy, owners.",
    examples="examples:\n  actorhw devices --board same70-xplained\n"
    "  actorhw devices --board microbit-qemu --json\n  actorhw devices --port /dev/ttyACM0",
    arguments=_devices_arguments,
    run=_devices,
)
