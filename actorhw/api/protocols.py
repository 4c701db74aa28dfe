"""What the caller-side objects need of a runtime, as small protocols.

Handles, sessions and the manager are typed against these, not against the concrete
Runtime, so they do not import it (and the Runtime, which builds them, imports them
without a circle).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, Protocol

from actorhw.core.ids import DeviceId
from actorhw.core.lifecycle import DeviceState
from actorhw.core.messages import BoardStatus, DeviceInfo, Lease, Priority
from actorhw.drivers.definitions import BoardCatalog
from actorhw.drivers.plugins import DriverCatalog
from actorhw.tree.asks import ActorRef

if TYPE_CHECKING:
    from actorhw.api.handles import Handle


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


class Lab(Protocol):
    """Where boards live, for code that runs steps and jobs on them: a local
    :class:`~actorhw.api.runtime.Runtime`, or a cluster of hosts
    (``actorhw.cluster.Cluster``, boards named ``host/board``). Scenarios run against it."""

    def ids(self, board: str) -> type[DeviceId]: ...
    def get(self, device: DeviceId, /, *, timeout: float = ...) -> Handle: ...
    def lease(self, device: DeviceId, /, *, owner: str, timeout: float = ...) -> Handle: ...
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
    def board_status(self, board: str, *, timeout: float = ...) -> BoardStatus: ...
    def inject_fault(
        self, board: str, fault: str, *, owner: str | None = ..., timeout: float = ...
    ) -> str | None: ...
    def wait_for_board(
        self, board: str, state: DeviceState, *, timeout: float, restarts: int = ...
    ) -> BoardStatus: ...
    def wait_for_device(
        self, device: DeviceId, state: DeviceState, *, timeout: float
    ) -> DeviceInfo: ...


class DirectoryBoard(Protocol):
    """A board as a directory of hosts lists it (``actorhw.cluster.ClusterBoard``)."""

    @property
    def name(self) -> str: ...
    @property
    def host(self) -> str: ...
    @property
    def board(self) -> str: ...
    @property
    def definition(self) -> str: ...


class BoardDirectory(Protocol):
    """Which boards live on which hosts, and their device ids (a Cluster): what a
    scenario file's boards and devices are checked against when it runs on a cluster."""

    def boards(self, pattern: str = ...) -> Sequence[DirectoryBoard]: ...
    def ids(self, board: str) -> type[DeviceId]: ...
