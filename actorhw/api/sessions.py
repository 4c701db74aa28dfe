"""The caller-side Session: leases and allocations released together."""

from __future__ import annotations

import contextlib
import itertools
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Protocol

from actorhw.core.errors import (
    InvalidArgumentError,
    NoSuchSessionError,
)
from actorhw.core.ids import DeviceId
from actorhw.core.messages import (
    Allocation,
    Lease,
    ResourceKind,
    SessionInfo,
)

if TYPE_CHECKING:
    from actorhw.api.handles import Handle
    from actorhw.api.monitor import ResourceMonitor
    from actorhw.core.messages import SessionEnded


class LeaseCalls(Protocol):
    """What a session asks of the runtime for its leases."""

    def lease(
        self, kind: Any, device: Any = None, *, owner: str, timeout: float = ...
    ) -> Handle: ...
    def acquire(self, device: DeviceId, *, owner: str, timeout: float = ...) -> Lease: ...
    def release(self, lease: Lease, *, timeout: float = ...) -> int: ...


class Session:
    """A caller's session: leases and allocations released together when it ends.

    Get one with ``rt.session(owner, ...)``; use it as a context manager.  It watches
    the thread that opened it (unless ``watch_thread=False``): if that thread dies, the
    monitor ends the session.  With a ``ttl`` it must :meth:`heartbeat` at least that
    often, or it expires.
    """

    def __init__(self, monitor: ResourceMonitor, runtime: LeaseCalls, info: SessionInfo) -> None:
        self._monitor = monitor
        self._rt = runtime
        self.name = info.session
        self.owner = info.owner
        self.ttl = info.ttl
        self.ended: SessionEnded | None = None

    def __repr__(self) -> str:
        return f"<Session {self.name} of {self.owner!r}{' ended' if self.ended else ''}>"

    def lease(self, kind: Any, device: Any = None, *, timeout: float = 5.0) -> Handle:
        """Acquire and open a device in the session's name; released when it ends."""
        handle: Handle = self._rt.lease(kind, device, owner=self.owner, timeout=timeout)
        assert handle.lease is not None
        self._monitor.track_lease(self.name, handle.lease, timeout=timeout)
        return handle

    def acquire(self, device: DeviceId, *, timeout: float = 5.0) -> Lease:
        """Acquire a device in the session's name; released when it ends."""
        lease: Lease = self._rt.acquire(device, owner=self.owner, timeout=timeout)
        self._monitor.track_lease(self.name, lease, timeout=timeout)
        return lease

    def release(self, lease: Lease, *, timeout: float = 5.0) -> int:
        """Release one lease before the session ends."""
        remaining: int = self._rt.release(lease, timeout=timeout)
        self._monitor.untrack_lease(self.name, lease, timeout=timeout)
        return remaining

    def allocate(
        self, device: DeviceId, kind: ResourceKind, amount: int, *, timeout: float = 10.0
    ) -> Allocation:
        """Reserve ``amount`` of ``kind`` on a board, checked against its live status."""
        return self._monitor.allocate(self.name, device, kind, amount, timeout=timeout)

    def release_allocation(self, allocation: Allocation, *, timeout: float = 5.0) -> None:
        """Give one allocation back before the session ends."""
        self._monitor.release_allocation(allocation, timeout=timeout)

    def heartbeat(self, *, timeout: float = 5.0) -> None:
        """Keep a session with a ttl alive; NoSuchSessionError if it already expired."""
        self._monitor.heartbeat(self.name, timeout=timeout)

    def info(self, *, timeout: float = 5.0) -> SessionInfo:
        """What the session holds now."""
        return self._monitor.session_info(self.name, timeout=timeout)

    def end(self, *, timeout: float = 10.0) -> SessionEnded:
        """Release everything the session holds. Safe to call twice."""
        if self.ended is None:
            self.ended = self._monitor.end_session(self.name, timeout=timeout)
        return self.ended

    def __enter__(self) -> Session:
        return self

    def __exit__(self, *exc: object) -> None:
        # An expired session, or one whose owner was declared gone, holds nothing left.
        with contextlib.suppress(NoSuchSessionError):
            self.end()


def quota_fields(quotas: Mapping[ResourceKind, int] | None) -> dict[str, int | None]:
    """``{ResourceKind: amount}`` as OpenSession's quota fields."""
    quotas = dict(quotas or {})
    fields: dict[str, int | None] = {}
    for kind, name in (
        (ResourceKind.MEMORY, "memory_quota"),
        (ResourceKind.STORAGE, "storage_quota"),
        (ResourceKind.CPU_TIME, "cpu_quota"),
    ):
        fields[name] = quotas.pop(kind, None)
    if quotas:
        raise InvalidArgumentError(
            f"quotas keys must be ResourceKind members, not {list(quotas)!r}", argument="quotas"
        )
    return fields


_session_ids = itertools.count(1)


def next_session_name(owner: str) -> str:
    """A unique session name for ``owner``."""
    return f"{owner}#{next(_session_ids)}"
