"""Messages that cross process boundaries between the hosts and clients of a cluster.

Like :mod:`actorhw.core.messages`, each is an immutable ``attrs`` class built from
values msgpack carries, encoded by :mod:`actorhw.core.codec`.  Devices travel as plain
strings here (board and device names of the host), since the id enums of a host and of a
client are different classes.  See docs/cluster.md.
"""

from __future__ import annotations

from typing import Any

import attrs

from actorhw.core.ids import DeviceKind
from actorhw.core.lifecycle import DeviceState, SharingPolicy


@attrs.frozen(kw_only=True)
class HostDevice:
    """One device of an exported board, as its host saw it at a heartbeat."""

    name: str
    """The device's id name on its board (``UART0``)."""
    kind: DeviceKind
    state: DeviceState
    policy: SharingPolicy
    owners: tuple[str, ...] = ()
    """Owners of the host's local leases (the cluster owners that opened it)."""
    generation: int = 0
    last_error: str | None = None


@attrs.frozen(kw_only=True)
class HostBoard:
    """One board a host exports."""

    board: str
    """The board's name on its host (``microbit-qemu``); clients say ``host/board``."""
    definition: str
    driver: str
    state: DeviceState
    reason: str
    restarts: int = 0
    quarantined: bool = False
    devices: tuple[HostDevice, ...] = ()


@attrs.frozen(kw_only=True)
class HostAnnounce:
    """A host's heartbeat: who it is and what it exports, put in the hosts bucket."""

    host: str
    """The host's name in the cluster (``lab-1``)."""
    started: float
    """Wall-clock time the host process started serving (tells restarts apart)."""
    at: float
    """Wall-clock time of this heartbeat."""
    interval: float
    """Seconds between heartbeats; a host silent for a few of them is offline."""
    boards: tuple[HostBoard, ...] = ()
    stopping: bool = False
    """The host is shutting down cleanly: its boards are offline at once."""


@attrs.frozen(kw_only=True)
class LeaseHolder:
    """One owner of a cluster lease."""

    owner: str
    """The owner's name, as in a local lease."""
    token: int
    """The fencing token: the bucket revision that made this owner a holder."""
    client: str
    """Where the owner runs (its machine and process), for busy errors."""
    renewed: float
    """Wall-clock time of the holder's last renewal (SHARED holders expire one by one)."""


@attrs.frozen(kw_only=True)
class LeaseRecord:
    """The value of a device's key in the leases bucket: who holds it."""

    host: str
    board: str
    device: str
    policy: SharingPolicy
    holders: tuple[LeaseHolder, ...] = ()


@attrs.frozen(kw_only=True)
class Step:
    """One call of a device's work as data: a handle method and its arguments
    (``toggle``; ``exec`` with code and timeout).  See actorhw.api.steps."""

    name: str
    args: tuple[Any, ...] = ()


@attrs.frozen(kw_only=True)
class RemoteTarget:
    """A device of a batched job step, with the fencing token of its lease."""

    board: str
    device: str
    token: int


@attrs.frozen(kw_only=True)
class RemoteCall:
    """A client's request to a host: one operation on one of its boards or devices."""

    op: str
    """``open``, ``close``, ``release``, ``use``, ``info``, ``status``; the board calls
    ``board``, ``fault``, ``wait_board``, ``wait_device`` (actorhw.cluster.board_calls)."""
    board: str = ""
    """The board's name on the host."""
    device: str = ""
    """The device's id name, for device operations."""
    owner: str = ""
    token: int = 0
    """The lease's fencing token: operations that need a lease are refused without a
    current one."""
    name: str = ""
    """The device operation, for ``use`` (``exec``, ``write``...)."""
    args: tuple[Any, ...] = ()
    timeout: float = 10.0
    priority: int = 1
    wait: bool = True
    exclusive: bool = False
    targets: tuple[RemoteTarget, ...] = ()
    """For ``steps``: the host's devices to run them on, each with its lease token."""
    steps: tuple[Step, ...] = ()
    """For ``steps``: the work each target does, in order."""


@attrs.frozen(kw_only=True)
class RemoteReply:
    """A host's answer to a :class:`RemoteCall`: a value, or a typed error."""

    value: tuple[Any, ...] = ()
    """The result as a one-element tuple (empty when there is none)."""
    error_type: str = ""
    """The actorhw error class's name, when the call failed."""
    error: str = ""
    """The error's message."""
    context: dict[str, Any] = attrs.field(factory=dict)
    """The error's context (device, owners, ...)."""


@attrs.frozen(kw_only=True)
class ReservationRequest:
    """A waiter in the reservations queue: ``count`` boards matching ``pattern``."""

    owner: str
    pattern: str
    """A shell-style pattern over ``host/board`` names or board names."""
    count: int
    priority: int
    client: str
    deadline: float
    """Wall-clock time after which the waiter gives up."""
    renewed: float
    """Wall-clock time of the waiter's last renewal; a vanished waiter expires."""
    arrival: int = 0
    """The revision that put the waiter in the queue (0 in that first write itself)."""
