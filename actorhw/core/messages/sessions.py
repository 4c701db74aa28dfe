"""Sessions and allocations: what a session holds, and the requests that open,
feed and end it."""

from __future__ import annotations

from concurrent.futures import Future

import attrs

from actorhw.core.ids import DeviceId
from actorhw.core.messages.devices import Lease
from actorhw.core.messages.request import Request
from actorhw.core.messages.resources import ResourceKind


@attrs.frozen(kw_only=True)
class Allocation:
    """A reservation of a board's memory, storage or CPU time, held by a session."""

    allocation_id: int
    """Unique in the runtime."""
    session: str
    """The session that holds it."""
    device: DeviceId
    """The board device."""
    kind: ResourceKind
    """What is reserved."""
    amount: int
    """Bytes (memory, storage) or milliseconds (CPU time)."""
    at: float
    """Wall-clock time it was granted."""


@attrs.frozen(kw_only=True)
class SessionInfo:
    """A session as the monitor keeps it."""

    session: str
    """The session's unique name."""
    owner: str
    """Who opened it; its leases are acquired in this name."""
    ttl: float | None
    """Seconds without a heartbeat after which it expires; None: no heartbeat needed."""
    leases: tuple[Lease, ...]
    """Leases it holds."""
    allocations: tuple[Allocation, ...]
    """Allocations it holds."""


@attrs.frozen(kw_only=True)
class SessionEnded:
    """Event: a session ended and everything it held was released."""

    session: str
    """The session."""
    owner: str
    """Its owner."""
    reason: str
    """``ended``, ``owner thread died``, ``heartbeat expired`` or ``runtime stopped``."""
    leases: int
    """Leases released."""
    allocations: int
    """Allocations released."""
    at: float
    """Wall-clock time (seconds since the epoch)."""


@attrs.frozen(kw_only=True)
class Allocate(Request[Future[Allocation]]):
    """Reserve part of a board for a session. Answered with an `Allocation`."""

    session: str
    """The session that will hold it."""
    device: DeviceId
    """The board device."""
    kind: ResourceKind
    """Memory, storage or CPU time."""
    amount: int
    """Bytes, or milliseconds of CPU time."""


@attrs.frozen(kw_only=True)
class ReleaseAllocation(Request[None]):
    """Give an allocation back. Answered with None."""

    allocation_id: int
    """The allocation."""


@attrs.frozen(kw_only=True)
class ListAllocations(Request[tuple[Allocation, ...]]):
    """Answered with a tuple of `Allocation`."""

    session: str | None = None
    """Only this session's, or all."""


@attrs.frozen(kw_only=True)
class OpenSession(Request[SessionInfo]):
    """Start a session. Answered with its `SessionInfo`."""

    session: str
    """Unique name."""
    owner: str
    """Owner name for its leases."""
    thread_id: int
    """The owner thread's ident: the session ends if that thread dies (0: not watched)."""
    ttl: float | None = None
    """Heartbeat period after which it expires; None: no heartbeat."""
    memory_quota: int | None = None
    """Bytes of memory its allocations may hold in all."""
    storage_quota: int | None = None
    """Bytes of storage its allocations may hold in all."""
    cpu_quota: int | None = None
    """Milliseconds of CPU time its allocations may hold in all."""


@attrs.frozen(kw_only=True)
class Heartbeat(Request[None]):
    """The session is alive. Answered with None; stale_session if it already ended."""

    session: str
    """The session."""


@attrs.frozen(kw_only=True)
class TrackLease(Request[None]):
    """Record that a session holds a lease (released when it ends)."""

    session: str
    """The session."""
    lease: Lease
    """The lease it acquired."""


@attrs.frozen(kw_only=True)
class UntrackLease(Request[None]):
    """A session released a lease itself."""

    session: str
    """The session."""
    lease: Lease
    """The lease."""


@attrs.frozen(kw_only=True)
class EndSession(Request[SessionEnded]):
    """End a session and release all it holds. Answered with `SessionEnded`."""

    session: str
    """The session."""
    reason: str = "ended"
    """Why."""


@attrs.frozen(kw_only=True)
class GetSession(Request[SessionInfo]):
    """Answered with a session's `SessionInfo`."""

    session: str
    """The session."""


@attrs.frozen(kw_only=True)
class ReapSessions(Request[list[SessionEnded]]):
    """The monitor's note to itself: end sessions whose owner died or heartbeat stopped."""
