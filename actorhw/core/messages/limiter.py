"""The operation limiter: priorities, tickets, admitted operations, statistics,
preemption events and the limiter's requests."""

from __future__ import annotations

import concurrent.futures
import enum
import threading
from typing import Any

import attrs

from actorhw.core.errors import ActorHwError, TimedOutError
from actorhw.core.ids import DeviceId
from actorhw.core.messages.devices import Lease
from actorhw.core.messages.request import Request


class Priority(enum.IntEnum):
    """An operation's priority at the limiter; a higher one is admitted first."""

    LOW = 0
    NORMAL = 1
    HIGH = 2
    CRITICAL = 3


@attrs.frozen(kw_only=True)
class ActiveOperation:
    """One operation the limiter admitted and that has not finished."""

    op_id: int
    """Unique in the runtime."""
    device: DeviceId
    """The device it runs on."""
    priority: Priority
    """Its priority."""
    what: str
    """What it does (``exec``, ``write``...)."""
    exclusive: bool
    """It runs alone on its device."""
    started_at: float
    """Wall-clock time it was admitted."""


@attrs.frozen(kw_only=True)
class LimiterStatistics:
    """A snapshot of the operation limiter."""

    max_global: int
    """Operations that may run at once in the runtime."""
    max_per_device: int
    """Operations that may run at once on one device."""
    operation_timeout: float
    """Seconds an operation may run before it is interrupted."""
    active: int
    """Operations running now."""
    waiting: int
    """Operations queued now."""
    admitted: int
    """Operations admitted so far."""
    refused: int
    """Operations refused at once (full, and they asked not to wait)."""
    preempted: int
    """Operations preempted by a higher priority so far."""
    timed_out: int
    """Operations interrupted by the operation timeout so far."""
    cancelled: int
    """Waits given up (deadline passed) so far."""


@attrs.frozen(kw_only=True)
class OperationPreempted:
    """Event: a Low operation was interrupted to admit a High or Critical one."""

    op_id: int
    """The preempted operation."""
    device: DeviceId
    """Its device."""
    by_op_id: int
    """The operation admitted in its place."""
    by_priority: Priority
    """That operation's priority."""
    at: float
    """Wall-clock time (seconds since the epoch)."""


#: The one completed ``admitted`` future of every ticket admitted at once (fast lane).
ADMITTED: concurrent.futures.Future[None] = concurrent.futures.Future()
ADMITTED.set_result(None)
#: Guards the making of a ticket's ``revoked`` future (its waiter and its revoker race).
_MAKING = threading.Lock()


class Ticket:
    """The caller's side of one operation: admitted, and maybe revoked later.

    Handed back through an ask (like a PendingIO), never sent over a wire.
    """

    __slots__ = ("_revoked", "admitted", "device", "op_id")

    def __init__(self, op_id: int, device: DeviceId, *, admitted: bool = False) -> None:
        self.op_id = op_id
        self.device = device
        # Admitted at once (the limiter's fast lane): one completed future serves all.
        self.admitted: concurrent.futures.Future[None] = (
            ADMITTED if admitted else concurrent.futures.Future()
        )
        # Made when first needed (a wait on board I/O, or a revocation): an operation
        # that answers at once never pays for a future (a Condition and its lock).
        self._revoked: concurrent.futures.Future[ActorHwError] | None = None

    @property
    def revoked(self) -> concurrent.futures.Future[ActorHwError]:
        """Completes with the error that ends the operation early (preempted, timed out)."""
        future = self._revoked
        if future is None:
            with _MAKING:
                future = self._revoked
                if future is None:
                    future = self._revoked = concurrent.futures.Future()
        return future

    def revoked_error(self) -> ActorHwError | None:
        """The error that ended the operation early (preempted, timed out), or None."""
        future = self._revoked
        return future.result() if future is not None and future.done() else None

    def wait(self, pending: concurrent.futures.Future[Any], *, timeout: float) -> Any:
        """``pending``'s result, unless the operation is revoked first (then its error)."""
        done, _ = concurrent.futures.wait(
            (pending, self.revoked), timeout=timeout, return_when=concurrent.futures.FIRST_COMPLETED
        )
        error = self.revoked_error()
        if error is not None:
            pending.cancel()  # not started yet on the I/O thread: it never will be
            raise error
        if pending in done:
            return pending.result()
        raise TimedOutError(
            f"{self.device.key}: operation {self.op_id}: no answer within {timeout:.3g} s",
            device=self.device.key,
            timeout=timeout,
        )


@attrs.frozen(kw_only=True)
class Admit(Request[Ticket]):
    """Ask the limiter to run an operation. Answered with a `Ticket` whose
    ``admitted`` completes once the operation may run; refused at once if full and
    ``wait`` is False."""

    op_id: int
    """Unique in the runtime (the caller draws it)."""
    device: DeviceId
    """The device the operation runs on."""
    priority: Priority = Priority.NORMAL
    """Higher runs first; High and Critical may preempt a Low one."""
    what: str = ""
    """What it does, for listings."""
    wait: bool = True
    """Queue when full (True), or be refused at once (False)."""
    exclusive: bool = False
    """Run alone on the device (Belay ``exclusive`` tasks)."""
    lease: Lease | None = None
    """The caller's open lease: the limiter interrupts the board through it."""
    actor_urn: str = ""
    """The device actor's URN, to reach it for an interrupt."""


@attrs.frozen(kw_only=True)
class CanAdmit(Request[bool]):
    """Ask the limiter whether an operation would be admitted now, changing nothing (no
    slot taken, nothing queued or preempted, no counter moved). Answered with a bool."""

    device: DeviceId
    """The device the operation would run on."""
    priority: Priority = Priority.NORMAL
    """Its priority: a High or Critical one may fit by preempting a Low one."""
    exclusive: bool = False
    """Whether it would run alone on the device."""


@attrs.frozen(kw_only=True)
class Finish:
    """Tell the limiter an operation ended (or its caller stopped waiting)."""

    op_id: int
    """The operation."""


@attrs.frozen(kw_only=True)
class CheckTimeouts(Request[int]):
    """The limiter's note to itself: interrupt operations past the operation timeout."""


@attrs.frozen(kw_only=True)
class GetLimiterStatistics(Request[LimiterStatistics]):
    """Answered with `LimiterStatistics`."""


@attrs.frozen(kw_only=True)
class ListOperations(Request[tuple[ActiveOperation, ...]]):
    """Answered with a tuple of `ActiveOperation`."""


@attrs.frozen(kw_only=True)
class ConfigureLimiter(Request[LimiterStatistics]):
    """Change the limiter's limits; running operations keep their slots. Answered with
    `LimiterStatistics`."""

    max_global: int | None = None
    """Operations at once in the runtime (None: unchanged)."""
    max_per_device: int | None = None
    """Operations at once on one device (None: unchanged)."""
    operation_timeout: float | None = None
    """Seconds an operation may run (None: unchanged)."""
