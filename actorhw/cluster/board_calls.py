"""A cluster client's calls about boards (status, faults, waits): the part of the Runtime's
API a scenario needs beyond leases and use, asked of the board's host.

Each is one request to the host, which runs the Runtime call of the same name there, so
a wait waits on the host's own events (no polling over the network).  A fault is
refused while another owner holds a device of the board (a drill never breaks someone
else's work).
"""

from __future__ import annotations

from typing import Any

import attrs

from actorhw.cluster import wire
from actorhw.cluster.config import Buckets
from actorhw.cluster.directory import ClusterDirectory
from actorhw.cluster.views import device_info
from actorhw.core.errors import HostUnreachableError
from actorhw.core.ids import DeviceId
from actorhw.core.lifecycle import DeviceState
from actorhw.core.messages import BoardStatus, DeviceInfo
from actorhw.core.messages.cluster import HostDevice, RemoteCall

#: Deadline of a call that names none, s (as the client's).
DEFAULT_TIMEOUT = 10.0


class BoardCalls(ClusterDirectory):
    """Board status, fault injection and waits, on the board's host (AsyncCluster's)."""

    _buckets: Buckets | None

    async def _request(self, host: str, call: RemoteCall, what: str) -> Any:
        raise NotImplementedError  # AsyncCluster's

    def _owner(self, owner: str | None) -> str:
        raise NotImplementedError  # AsyncCluster's

    async def _board_call(self, board: str, op: str, timeout: float, **fields: Any) -> Any:
        host, b = self._board(board)
        call = RemoteCall(op=op, board=b.board, timeout=timeout, **fields)
        return await self._request(host, call, board)

    async def board_status(self, board: str, *, timeout: float = DEFAULT_TIMEOUT) -> BoardStatus:
        """The status of ``host/board`` now, asked of its host (named ``host/board``)."""
        value = await self._board_call(board, "board", timeout)
        return attrs.evolve(wire.structure(value, BoardStatus), board=board)

    async def inject_fault(
        self, board: str, fault: str, *, owner: str | None = None, timeout: float = DEFAULT_TIMEOUT
    ) -> str | None:
        """Make ``host/board`` fail as hardware does (``unplug``, ``hang``, ``power_cycle``,
        ``memory_error``), on its host; see Runtime.inject_fault.

        Raises:
            DeviceBusyError: another owner holds one of the board's devices.
        """
        value = await self._board_call(
            board, "fault", timeout, name=fault, owner=self._owner(owner)
        )
        return None if value is None else str(value)

    async def wait_for_board(
        self, board: str, state: DeviceState, *, timeout: float, restarts: int = 0
    ) -> BoardStatus:
        """Wait until ``host/board`` is in ``state`` (recovered at least ``restarts``
        times), on its host. TimedOutError says where it is."""
        value = await self._board_call(
            board, "wait_board", timeout, name=state.name, args=(int(restarts),)
        )
        return attrs.evolve(wire.structure(value, BoardStatus), board=board)

    async def wait_for_device(
        self, device: DeviceId, state: DeviceState, *, timeout: float
    ) -> DeviceInfo:
        """Wait until ``device`` is in ``state``, on its host; its info then."""
        value = await self._board_call(
            type(device).board, "wait_device", timeout, device=device.name, name=state.name
        )
        d = wire.structure(value, HostDevice)
        return device_info(device, d, await self._owners_now(device))

    async def _owners_now(self, device: DeviceId) -> tuple[str, ...]:
        """The device's owners as the leases bucket holds them now (the watch may lag a
        write this client has just made)."""
        if self._buckets is None:
            raise HostUnreachableError("this cluster client is closed", host="")
        host, board, _d = self._where(device)
        key = wire.lease_key(host, board, device.name)
        value, _revision = await wire.read(self._buckets.leases, key)
        return tuple(h.owner for h in wire.record_of(value).holders) if value else ()
