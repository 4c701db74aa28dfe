"""The serial-port subcommands of ``actorhw``: ``ports``, ``fs``, ``repl``, and ``--port``.

A board on a serial port is named by ``--port`` (a path, URL, ``serial:NUMBER``,
``VID:PID``, ``location:LOC`` or ``auto``) and optionally ``--board`` (a definition
driven by the ``micropython`` driver); without ``--board`` the port is probed and the
definition that fits the firmware is used.  Errors are ActorHwError, turned into exit
codes by :func:`actorhw.cli.main`.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from actorhw.api.handles import Board
from actorhw.api.runtime import BoardSpec, Runtime
from actorhw.cli.options import seconds
from actorhw.core.errors import InvalidArgumentError
from actorhw.links.mpy_fs import FileSystem
from actorhw.links.ports import list_candidates, parse_port, resolve_port
from actorhw.links.probe import probe_port, try_probe

__all__ = ["add_serial_parsers", "board_spec"]

OWNER = "actorhw-cli"

PORTS_EPILOG = """examples:
  actorhw ports                      # serial ports whose USB ids are MicroPython boards'
  actorhw ports --all --json         # every serial port, as JSON
  actorhw ports --probe              # also ask each listed board what it runs
  actorhw ports --probe --port /tmp/ttyMP0

--probe enters the raw REPL (it interrupts what the board runs); without it no port
is opened."""

FS_EPILOG = """examples:
  actorhw fs ls --port auto
  actorhw fs cat main.py --port /dev/ttyACM0
  actorhw fs cp main.py :main.py --port auto      # ':' marks the board's side
  actorhw fs cp :log.txt ./log.txt --port auto
  actorhw fs rm :old.py --port auto
  actorhw fs mkdir :lib --port auto
  actorhw fs sync ./src : --port auto            # copy only the files that differ

every transfer is checked by a hash the board computes of what it stored."""

REPL_EPILOG = """example:
  actorhw repl --port auto        # Ctrl-] leaves

the board is leased by actorhw-repl while the REPL runs."""


def board_spec(args: argparse.Namespace) -> BoardSpec:
    """The board of ``--board`` / ``--port``; probes the port when no board is named.

    Raises:
        InvalidArgumentError: neither --board nor --port was given.
    """
    port = getattr(args, "port", None)
    board = getattr(args, "board", None)
    if port is None:
        if board is None:
            parser = getattr(args, "parser", None)
            if isinstance(parser, argparse.ArgumentParser):
                parser.error("give --board, or --port for a board on a serial port")  # exit 2
            raise InvalidArgumentError("give --board, or --port for a board on a serial port")
        return BoardSpec(board)
    if board is None:
        spec = parse_port(port)
        device = resolve_port(spec)
        board = probe_port(device, timeout=min(float(args.timeout), 10.0))["board"]
    return BoardSpec(board, port=port)


def start_board(args: argparse.Namespace) -> tuple[Runtime, str]:
    """A runtime with the board of ``--board`` / ``--port`` up (with ``--boards-dir``,
    ``--drivers-dir`` and ``--timeout``), and the board's name; the caller stops it."""
    spec = board_spec(args)
    rt = Runtime.start(
        boards=[spec],
        boards_dirs=args.boards_dir,
        drivers_dirs=getattr(args, "drivers_dir", None) or (),
        timeout=args.timeout,
    )
    return rt, spec.name or spec.definition


@contextlib.contextmanager
def leased_board(args: argparse.Namespace, owner: str = OWNER) -> Iterator[tuple[Runtime, Board]]:
    """A runtime with the board of ``args`` up and its BOARD device leased."""
    rt, name = start_board(args)
    with rt, rt.lease(Board, rt.ids(name)["BOARD"], owner=owner) as board:
        yield rt, board


# --- ports ---------------------------------------------------------------------------------


def _ports(args: argparse.Namespace, out: Console) -> int:
    if args.port is not None:
        device = resolve_port(args.port)
        rows: list[dict[str, Any]] = [
            {"device": device, "port": args.port, "family": None, "serial_number": None}
        ]
    else:
        rows = [c.to_dict() for c in list_candidates(all_ports=args.all)]
    if args.probe:
        for row in rows:
            row["probe"] = try_probe(row["device"], timeout=args.timeout)
    if args.json:
        print(json.dumps(rows, indent=2))
        return 0
    table = Table(title="serial ports" + (" (all)" if args.all else " (MicroPython USB ids)"))
    for column in ("device", "port", "usb", "what"):
        table.add_column(column)
    for row in rows:
        usb = f"{row.get('vid')}:{row.get('pid')}" if row.get("vid") else ""
        what = row.get("family") or row.get("description") or ""
        probe = row.get("probe")
        if probe is not None:
            what = (
                f"{probe['implementation']} {probe['version']} on {probe['platform']} "
                f"-> --board {probe['board']}"
                if "error" not in probe
                else f"no MicroPython: {probe['error']['message']}"
            )
        table.add_row(row["device"], row.get("port") or "", usb, what)
    out.print(table)
    if not rows:
        out.print("no ports found" + ("" if args.all else " (try --all)"))
    return 0


# --- fs ---------------------------------------------------------------------------------


def _remote(path: str) -> str | None:
    """The board-side path of ``:path`` (None for a host path)."""
    return path[1:] if path.startswith(":") else None


def _fs(args: argparse.Namespace, out: Console) -> int:
    with leased_board(args) as (_rt, board):
        fs = FileSystem(
            lambda code, t: board.exec(code, timeout=t), name=board.device.key, chunk=args.chunk
        )
        timeout = args.fs_timeout
        result: Any = None
        if args.action == "ls":
            entries = fs.ls(_remote(args.path) or args.path.lstrip(":"), timeout=timeout)
            result = [e.to_dict() for e in entries]
            if not args.json:
                for e in entries:
                    out.print(f"{'dir' if e.is_dir else e.size:>8}  {e.name}", highlight=False)
        elif args.action == "cat":
            data = fs.cat(args.path.lstrip(":"), timeout=timeout)
            if args.json:
                result = data.decode("utf-8", "replace")
            else:
                sys.stdout.buffer.write(data)
                sys.stdout.flush()
        elif args.action == "cp":
            result = _cp(fs, args.source, args.dest, timeout)
        elif args.action == "rm":
            fs.rm(args.path.lstrip(":"), timeout=timeout)
        elif args.action == "mkdir":
            fs.mkdir(args.path.lstrip(":"), timeout=timeout)
        else:
            result = _sync(fs, Path(args.source), (_remote(args.dest) or "").strip("/"), timeout)
            if not args.json:
                out.print(
                    f"copied {len(result['copied'])}, unchanged {len(result['unchanged'])}",
                    highlight=False,
                )
    if args.json:
        print(json.dumps({"ok": True, "result": result}))
    return 0


def _cp(fs: FileSystem, source: str, dest: str, timeout: float) -> dict[str, Any]:
    src, dst = _remote(source), _remote(dest)
    if (src is None) == (dst is None):
        raise InvalidArgumentError(
            "cp copies between the host and the board: mark the board's side with ':' "
            "(actorhw fs cp main.py :main.py)",
            argument="dest",
        )
    if dst is not None:
        data = _read_host(Path(source))
        target = dst or Path(source).name
        if target.endswith("/"):
            target += Path(source).name
        return {"to": target, "bytes": len(data), "hash": fs.put(target, data, timeout=timeout)}
    assert src is not None
    data = fs.cat(src, timeout=timeout)
    path = Path(dest)
    if path.is_dir():
        path = path / Path(src).name
    path.write_bytes(data)
    return {"to": str(path), "bytes": len(data)}


def _read_host(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except OSError as e:
        raise InvalidArgumentError(f"cannot read {path}: {e}", argument="source") from e


def _sync(fs: FileSystem, source: Path, prefix: str, timeout: float) -> dict[str, list[str]]:
    if not source.is_dir():
        raise InvalidArgumentError(f"sync copies a folder; {source} is not one", argument="source")
    files = {}
    for path in sorted(source.rglob("*")):
        if path.is_file():
            rel = path.relative_to(source).as_posix()
            files[f"{prefix}/{rel}" if prefix else rel] = _read_host(path)
    return fs.sync(files, timeout=timeout)


# --- repl ---------------------------------------------------------------------------------


def _repl(args: argparse.Namespace, out: Console) -> int:
    import termios
    import tty

    if not os.isatty(sys.stdin.fileno()):
        raise InvalidArgumentError("actorhw repl needs a terminal on stdin", argument="stdin")
    with leased_board(args, owner="actorhw-repl") as (rt, board):
        name = type(board.device).board
        out.print(f"connected to {name}; Ctrl-] leaves", highlight=False)
        saved = termios.tcgetattr(sys.stdin.fileno())
        tty.setraw(sys.stdin.fileno())
        try:
            rt.manager.execute_command(
                "micropython",
                "repl",
                name,
                {"stdin_fd": sys.stdin.fileno(), "stdout_fd": sys.stdout.fileno()},
                timeout=args.session_timeout,
            )
        finally:
            termios.tcsetattr(sys.stdin.fileno(), termios.TCSADRAIN, saved)
        out.print("\nleft the REPL", highlight=False)
    return 0


# --- parsers ------------------------------------------------------------------------------


def add_port_option(p: argparse.ArgumentParser) -> None:
    """``--port`` for subcommands that bring a board up (``--board`` or ``--port`` is
    then required: a usage error, exit 2, names both)."""
    p.set_defaults(parser=p)
    p.add_argument(
        "--port",
        help="the board's serial port: a path, URL, serial:NUMBER, VID:PID, location:LOC "
        "or auto (then --board is optional: the port is probed)",
    )


def add_serial_parsers(sub: Any) -> None:
    """Add ``ports``, ``fs`` and ``repl`` to the ``actorhw`` subparsers."""
    fmt = argparse.RawDescriptionHelpFormatter
    p = sub.add_parser(
        "ports", help="list serial ports and the MicroPython boards on them",
        epilog=PORTS_EPILOG, formatter_class=fmt,
    )  # fmt: skip
    p.add_argument("--all", action="store_true", help="every serial port, not only known USB ids")
    p.add_argument("--probe", action="store_true", help="ask each listed board what it runs")
    p.add_argument("--port", help="only this port (implies nothing is listed otherwise)")
    p.add_argument("--json", action="store_true", help="print JSON")
    p.add_argument("--timeout", type=seconds, default=5.0, help="probe deadline per port, s")
    p.set_defaults(run=_ports)

    p = sub.add_parser(
        "fs", help="files on a board: ls, cat, cp, rm, mkdir, sync",
        epilog=FS_EPILOG, formatter_class=fmt,
    )  # fmt: skip
    p.add_argument("action", choices=["ls", "cat", "cp", "rm", "mkdir", "sync"])
    p.add_argument("paths", nargs="*", help="ls/cat/rm/mkdir: PATH; cp/sync: SOURCE DEST")
    p.add_argument("--board", help="a board definition (default: probe the port)")
    add_port_option(p)
    p.add_argument("--json", action="store_true", help="print JSON")
    p.add_argument("--timeout", type=seconds, default=30.0, help="bring-up deadline, s")
    p.add_argument("--fs-timeout", type=seconds, default=120.0, help="the operation's deadline, s")
    p.add_argument("--chunk", type=int, default=2048, help="bytes of file per exec when writing")
    p.set_defaults(run=_fs_entry)

    p = sub.add_parser(
        "repl", help="the board's interactive REPL (Ctrl-] leaves)",
        epilog=REPL_EPILOG, formatter_class=fmt,
    )  # fmt: skip
    p.add_argument("--board", help="a board definition (default: probe the port)")
    add_port_option(p)
    p.add_argument("--timeout", type=seconds, default=30.0, help="bring-up deadline, s")
    p.add_argument(
        "--session-timeout", type=seconds, default=24 * 3600.0, help="longest session, s"
    )
    p.set_defaults(run=_repl)


def _fs_entry(args: argparse.Namespace, out: Console) -> int:
    """Check the paths an action takes, then run it."""
    wanted = {"ls": (0, 1), "cat": (1, 1), "rm": (1, 1), "mkdir": (1, 1), "cp": (2, 2)}
    low, high = wanted.get(args.action, (2, 2))
    if not low <= len(args.paths) <= high:
        raise InvalidArgumentError(
            f"fs {args.action} takes {low if low == high else f'{low} or {high}'} path(s), "
            f"not {len(args.paths)}",
            argument="paths",
        )
    args.path = args.paths[0] if args.paths else ""
    if len(args.paths) == 2:
        args.source, args.dest = args.paths
    if args.port is None and args.board is None:
        raise InvalidArgumentError("give --port (or --board)", argument="port")
    return _fs(args, out)
