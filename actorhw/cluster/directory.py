"""The cluster's directory as a client sees it: which hosts are online, their boards,
devices and lease holders, read from the hosts and leases buckets' watches."""

from __future__ import annotations

import fnmatch
import time

import attrs

from actorhw.cluster import wire
from actorhw.cluster.config import ClusterConfig
from actorhw.cluster.views import ClusterBoard, device_info, split_board
from actorhw.core.errors import (
    HostUnreachableError,
    InvalidArgumentError,
    NoSuchBoardError,
    NoSuchDeviceError,
)
from actorhw.core.ids import DeviceId, make_id_enum
from actorhw.core.messages import DeviceInfo
from actorhw.core.messages.cluster import HostAnnounce, HostBoard, HostDevice, LeaseRecord


@attrs.define
class Seen:
    announce: HostAnnounce
    at: float
    """time.monotonic() of the heartbeat (estimated for ones older than the watch)."""


class ClusterDirectory:
    """Lookups over what the watches keep (AsyncCluster's read side; no I/O here)."""

    config: ClusterConfig
    _hosts: dict[str, Seen]
    _records: wire.Records
    _enums: dict[tuple[str, tuple[str, ...]], type[DeviceId]]

    def online(self, host: str) -> bool:
        """Whether ``host`` heartbeats."""
        seen = self._hosts.get(host)
        return (
            seen is not None
            and not seen.announce.stopping
            and time.monotonic() - seen.at <= self.config.offline_after
        )

    def _require_online(self, host: str, what: str) -> None:
        if not self.online(host):
            seen = self._hosts.get(host)
            why = (
                "never seen"
                if seen is None
                else "stopped"
                if seen.announce.stopping
                else f"silent for {time.monotonic() - seen.at:.1f} s"
            )
            raise HostUnreachableError(
                f"{what}: host {host} is offline ({why})", host=host, device=what
            )

    def _board(self, name: str) -> tuple[str, HostBoard]:
        host, board = split_board(name)
        seen = self._hosts.get(host)
        for b in seen.announce.boards if seen else ():
            if b.board == board:
                return host, b
        raise NoSuchBoardError(
            f"no board {name!r} in the cluster; boards: {', '.join(self.board_names()) or 'none'}",
            board=name,
        )

    def board_names(self) -> list[str]:
        """``host/board`` of every board any host ever announced (online or not)."""
        return sorted(
            f"{h}/{b.board}" for h, seen in self._hosts.items() for b in seen.announce.boards
        )

    def boards(self, pattern: str = "*") -> list[ClusterBoard]:
        """Every board (matching the shell-style ``pattern`` over ``host/board``)."""
        out = []
        for host, seen in sorted(self._hosts.items()):
            online = self.online(host)
            for b in seen.announce.boards:
                name = f"{host}/{b.board}"
                if fnmatch.fnmatchcase(name, pattern) or fnmatch.fnmatchcase(b.board, pattern):
                    out.append(
                        ClusterBoard(
                            name=name, host=host, board=b.board, definition=b.definition,
                            driver=b.driver, state=b.state,
                            reason=b.reason if online else f"host {host} offline",
                            online=online, devices=len(b.devices), restarts=b.restarts,
                        )
                    )  # fmt: skip
        return out

    def ids(self, board: str) -> type[DeviceId]:
        """The id enum of the cluster board ``host/board``."""
        _host, b = self._board(board)
        names = tuple(d.name for d in b.devices)
        key = (board, names)
        if key not in self._enums:
            enum_name = "".join(p.capitalize() for p in board.replace("/", "-").split("-"))
            self._enums[key] = make_id_enum(enum_name, board, list(names))
        return self._enums[key]

    def device(self, board: str, name: str) -> DeviceId:
        """The id ``name`` of ``board``; NoSuchDeviceError (listing the ids) if none."""
        ids = self.ids(board)
        try:
            return ids[name]
        except KeyError:
            raise NoSuchDeviceError(
                f"{board} has no device {name!r}",
                device=f"{board}.{name}",
                valid_ids=[d.name for d in ids],
            ) from None

    def _where(self, device: DeviceId) -> tuple[str, str, HostDevice]:
        """(host, board, announced device) of a cluster id."""
        if not isinstance(device, DeviceId):
            raise InvalidArgumentError(f"expected a DeviceId, not {device!r}", argument="device")
        host, b = self._board(type(device).board)
        for d in b.devices:
            if d.name == device.name:
                return host, b.board, d
        raise NoSuchDeviceError(
            f"{type(device).board} has no device {device.name!r}",
            device=device.key,
            valid_ids=[d.name for d in b.devices],
        )

    def devices(self, board: str | None = None) -> list[DeviceInfo]:
        """Every device (of ``board``): state from its host's heartbeat, owners from the
        leases bucket."""
        names = [board] if board is not None else self.board_names()
        out = []
        for name in names:
            host, b = self._board(name)
            ids = self.ids(name)
            for d in b.devices:
                held = self._records.get(wire.lease_key(host, b.board, d.name))
                owners = tuple(h.owner for h in held[0].holders) if held else ()
                out.append(device_info(ids[d.name], d, owners))
        return out

    def holders(self, device: DeviceId) -> LeaseRecord | None:
        """The device's lease record as this client last saw it (None: not held)."""
        host, board, _d = self._where(device)
        held = self._records.get(wire.lease_key(host, board, device.name))
        return held[0] if held else None

    # --- requests --------------------------------------------------------------------------
