"""Where boards live, as protocols: a local Runtime or a cluster of hosts.

Code that runs steps and jobs on boards (scenarios, jobs) is typed against `Lab`, which
both `actorhw.api.runtime.Runtime` and ``actorhw.cluster.Cluster`` satisfy, so it runs
unchanged on one machine or across hosts. `BoardDirectory` is what a cluster scenario's
boards are checked against.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol

from actorhw.api.handles import Handle
from actorhw.core.ids import DeviceId
from actorhw.core.lifecycle import DeviceState
from actorhw.core.messages import BoardStatus, DeviceInfo, Lease, Priority


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
