"""Scenarios on a cluster: boards that live on hosts, named ``host/board``.

A cluster scenario's ``[[boards]]`` bring nothing up: they name boards that hosts
already serve (``host = "lab-1"``, or ``name = "lab-1/mb"``), and the loader checks them
against the cluster's directory (host, board, definition, devices), so a misspelt host
or board is refused with the file, line and key before anything runs.
"""

from __future__ import annotations

from typing import Any

from actorhw.core.suggest import did_you_mean
from actorhw.scenario.model import BoardUp
from actorhw.scenario.reader import FileReader, KeyPath


def on_host(
    reader: FileReader, table: dict[str, Any], path: KeyPath, host: str, base: str, definition: str
) -> BoardUp:
    """A ``[[boards]]`` entry of a cluster scenario, checked against the cluster."""
    where = (*path, "host") if "host" in table else (*path, "name")
    cluster = reader.cluster
    if cluster is None:
        raise reader.fail(
            where,
            "boards on cluster hosts need a cluster: run the file with "
            "'actorhw --cluster URL run FILE'",
        )
    listed = {b.name: b for b in cluster.boards()}
    hosts = sorted({b.host for b in listed.values()})
    if not host:
        raise reader.fail(
            path,
            f'on a cluster a board lives on a host: add host = "..." (hosts: '
            f"{', '.join(hosts) or 'none'}); steps then name it HOST/{base}",
        )
    for key in ("port", "options"):
        if key in table:
            raise reader.fail(
                (*path, key),
                f"{key} belongs to the host that serves the board (actorhw serve), "
                "not to a cluster scenario",
            )
    if host not in hosts:
        raise reader.fail(
            where,
            f"no host {host!r} in the cluster{did_you_mean(host, hosts)}; "
            f"hosts: {', '.join(hosts) or 'none'}",
        )
    count = reader.count(table, (*path, "count"))
    names = (base,) if count == 1 else tuple(f"{base}-{n}" for n in range(1, count + 1))
    theirs = sorted(b.board for b in listed.values() if b.host == host)
    for n in names:
        name = f"{host}/{n}"
        found = listed.get(name)
        if found is None:
            raise reader.fail(
                (*path, "name") if "name" in table else (*path, "board"),
                f"host {host} has no board {n!r}{did_you_mean(n, theirs)}; "
                f"its boards: {', '.join(theirs) or 'none'}",
            )
        if found.definition != definition:
            raise reader.fail(
                (*path, "board"), f"{name} is a {found.definition} board, not {definition}"
            )
        if name in reader.boards:
            raise reader.fail(path, f"board instance {name!r} is declared twice")
        reader.boards[name] = definition
        reader.devices[name] = [d.name for d in cluster.ids(name)]
    return BoardUp(
        definition=definition,
        names=tuple(f"{host}/{n}" for n in names),
        line=reader.lines.line(path),
        host=host,
    )
