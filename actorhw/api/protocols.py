"""What the caller-side objects need of a runtime, as small protocols.

Handles, sessions and the manager are typed against these, not against the concrete
Runtime, so they do not import it (and the Runtime, which builds them, imports them
without a circle).
"""

from __future__ import annotations

from typing import Any, Protocol

from actorhw.core.ids import DeviceId
from actorhw.core.messages import BoardStatus, DeviceInfo, Lease, Priority
from actorhw.drivers.definitions import BoardCatalog
from actorhw.drivers.plugins import DriverCatalog
from actorhw.tree.asks import ActorRef


class DeviceCalls(Protocol):
    """The ownership and usage calls a handle makes for its device."""

    def acquire(self, device: DeviceId, *, owner: str, timeout: float = ...) -> Lease: ...
    def open(self, lease: Lease, *, timeout: float = ...) -> DeviceInfo: ...
    def close(self, lease: Lease, *, timeout: float = ...) -> DeviceInfo: ...
    def release(self, lease: Lease, *, timeout: float = ...) -> int: ...
    def info(self, device: DeviceId, *, timeout: float = ...) -> DeviceInfo: ...
    def use(
        self,
        lease: Lease,
        op: str,
        args: tuple[Any, ...] = (),
        *,
        timeout: float = ...,
        priority: Priority = ...,
        wait: bool = ...,
        exclusive: bool = ...,
    ) -> Any: ...


class BoardHost(Protocol):
    """What the DeviceDriverManager asks of the runtime for its boards."""

    catalog: BoardCatalog
    drivers: DriverCatalog
    _boards: dict[str, Any]

    def boards(self, *, timeout: float = ...) -> list[BoardStatus]: ...
    def board_status(self, board: str, *, timeout: float = ...) -> BoardStatus: ...
    def attach_board(self, definition: str, *, name: str | None = None) -> str: ...
    def _board_ref(self, board: str) -> ActorRef[Any]: ...
