"""Sessions, quotas and allocation against a board's live status.

A session owns leases and allocations; ending it (or its owner thread dying, or its
heartbeat stopping when it has a ttl) releases all of them.  The books are kept in the
resource monitor's mailbox (:class:`SessionBooks`, plain data, no locks); callers hold
a :class:`Session`::

    with rt.session("job-7", ttl=5.0, quotas={ResourceKind.MEMORY: 2048}) as s:
        board = s.lease(Board, ids.BOARD)
        s.allocate(ids.BOARD, ResourceKind.MEMORY, 1024)
        s.heartbeat()

An allocation may take what the board has free, minus a reserve of 10% of its total,
minus what other allocations on the board already hold.
"""

from __future__ import annotations

import itertools
import threading
import time
from typing import TYPE_CHECKING

import attrs

from actorhw.core.errors import (
    AllocationRefusedError,
    InvalidArgumentError,
    NoSuchSessionError,
    QuotaExceededError,
)
from actorhw.core.ids import DeviceId
from actorhw.core.messages import (
    Allocation,
    Lease,
    OpenSession,
    ResourceKind,
    ResourceStatus,
    SessionInfo,
)

if TYPE_CHECKING:
    pass

#: Share of a board's total that allocations never take.
RESERVE = 0.10
#: CPU time is allocated in milliseconds per second of the board's time.
CPU_MS_PER_S = 1000

_allocation_ids = itertools.count(1)


#: The unit of each kind's amounts, as messages say it.
UNITS = {
    ResourceKind.MEMORY: "bytes",
    ResourceKind.STORAGE: "bytes",
    ResourceKind.CPU_TIME: "ms per s",
}


def allocatable(status: ResourceStatus, kind: ResourceKind, allocated: int) -> int | None:
    """What one more allocation of ``kind`` may take; None if the board cannot tell."""
    if kind is ResourceKind.MEMORY:
        total, free = status.memory.total, status.memory.free
    elif kind is ResourceKind.STORAGE:
        total, free = status.storage.total, status.storage.free
    else:
        usage = status.cpu.usage_percent
        total = CPU_MS_PER_S
        free = int(CPU_MS_PER_S * (1 - (usage or 0.0) / 100))
    if total is None or free is None:
        return None
    return max(0, int(free - RESERVE * total) - allocated)


@attrs.define
class _Book:
    info: OpenSession
    last_beat: float
    leases: dict[int, Lease] = attrs.field(factory=dict)
    allocations: dict[int, Allocation] = attrs.field(factory=dict)


class SessionBooks:
    """Every session's leases, allocations, quotas and heartbeat: plain data."""

    def __init__(self) -> None:
        self._books: dict[str, _Book] = {}
        self._allocations: dict[int, Allocation] = {}

    def open(self, message: OpenSession, now: float) -> SessionInfo:
        """Start keeping a session's books."""
        if message.session in self._books:
            raise InvalidArgumentError(
                f"a session named {message.session!r} is already open",
                argument="session",
                value=message.session,
            )
        self._books[message.session] = _Book(message, now)
        return self.info(message.session)

    def book(self, session: str) -> _Book:
        """The books of a session, or NoSuchSessionError."""
        book = self._books.get(session)
        if book is None:
            raise NoSuchSessionError(
                f"no open session {session!r} (it ended, expired, or never began)",
                session=session,
            )
        return book

    def info(self, session: str) -> SessionInfo:
        """A snapshot of one session."""
        book = self.book(session)
        return SessionInfo(
            session=session,
            owner=book.info.owner,
            ttl=book.info.ttl,
            leases=tuple(book.leases.values()),
            allocations=tuple(book.allocations.values()),
        )

    def allocate(
        self, session: str, device: DeviceId, kind: ResourceKind, amount: int,
        status: ResourceStatus,
    ) -> Allocation:  # fmt: skip
        """Grant an allocation against ``status``, or refuse it saying what is left."""
        book = self.book(session)
        quota = {
            ResourceKind.MEMORY: book.info.memory_quota,
            ResourceKind.STORAGE: book.info.storage_quota,
            ResourceKind.CPU_TIME: book.info.cpu_quota,
        }[kind]
        held = sum(a.amount for a in book.allocations.values() if a.kind is kind)
        if quota is not None and held + amount > quota:
            raise QuotaExceededError(
                f"session {session!r}: {amount} more {kind.value} would make {held + amount}, "
                f"over its quota of {quota}",
                session=session, kind=kind.value, requested=amount, held=held, quota=quota,
            )  # fmt: skip
        taken = sum(
            a.amount for a in self._allocations.values() if a.device is device and a.kind is kind
        )
        left = allocatable(status, kind, taken)
        if left is None or amount > left:
            unit = UNITS[kind]
            raise AllocationRefusedError(
                f"{device.key}: requested {amount} {unit} of {kind.value}, allocatable "
                + ("unknown (the board cannot report it)" if left is None else f"{left} {unit}")
                + f" (free minus a {RESERVE:.0%} reserve, minus {taken} {unit} already"
                " allocated)",
                device=device.key, kind=kind.value, requested=amount, allocatable=left,
            )  # fmt: skip
        allocation = Allocation(
            allocation_id=next(_allocation_ids),
            session=session,
            device=device,
            kind=kind,
            amount=amount,
            at=time.time(),
        )
        book.allocations[allocation.allocation_id] = allocation
        self._allocations[allocation.allocation_id] = allocation
        return allocation

    def release_allocation(self, allocation_id: int) -> None:
        """Give one allocation back; an unknown id is ignored (already released)."""
        allocation = self._allocations.pop(allocation_id, None)
        if allocation is not None and allocation.session in self._books:
            self._books[allocation.session].allocations.pop(allocation_id, None)

    def allocations(self, session: str | None = None) -> tuple[Allocation, ...]:
        """Every allocation, or one session's."""
        return tuple(a for a in self._allocations.values() if session in (None, a.session))

    def close(self, session: str) -> tuple[_Book, list[Lease], int]:
        """Forget a session: its book, the leases to release, the allocations dropped."""
        book = self.book(session)
        del self._books[session]
        for allocation_id in book.allocations:
            self._allocations.pop(allocation_id, None)
        return book, list(book.leases.values()), len(book.allocations)

    def expired(self, now: float, live_threads: set[int]) -> list[tuple[str, str]]:
        """(session, reason) of every session whose owner thread died or ttl passed."""
        out = []
        for name, book in self._books.items():
            if book.info.thread_id and book.info.thread_id not in live_threads:
                out.append((name, "owner thread died"))
            elif book.info.ttl is not None and now - book.last_beat > book.info.ttl:
                out.append((name, "heartbeat expired"))
        return out

    def names(self) -> list[str]:
        """Every open session."""
        return list(self._books)


def live_thread_ids() -> set[int]:
    """The idents of the threads alive in this process now."""
    return {t.ident for t in threading.enumerate() if t.ident is not None}
