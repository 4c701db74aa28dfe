"""UseInFlight: one device operation admitted by the limiter and handed to the device,
its result still to come.

`Runtime.use` waits for it in the caller's thread; `Runtime.start_use` hands it to a
caller that waits elsewhere (an asyncio loop: a cluster host answers a request without
a worker thread between its loop and the board's I/O thread).
"""

from __future__ import annotations

import concurrent.futures
from typing import Any, NoReturn, Protocol

from actorhw.api.limiter import OperationLimiter
from actorhw.api.monitor import ResourceMonitor
from actorhw.core.errors import ActorHwError, DeviceExceptionError, InvalidArgumentError
from actorhw.core.messages import Lease
from actorhw.core.messages.limiter import Ticket
from actorhw.drivers.board_driver import PendingIO


class RuntimeDevices(Protocol):
    """What ending an operation asks of its runtime (actorhw.api.runtime_devices'; a
    protocol, so this module does not import that one, which imports it)."""

    @property
    def monitor(self) -> ResourceMonitor: ...
    @property
    def limiter(self) -> OperationLimiter: ...
    def _stop_revoked(self, lease: Lease, future: concurrent.futures.Future[Any]) -> None: ...


class UseInFlight:
    """An admitted operation; `result` ends it (once: it gives the limiter's slot back).

    Args:
        runtime: the runtime that started it.
        lease: the lease it runs under.
        ticket: the limiter's ticket.
        outcome: what the device answered: a value, or a PendingIO of the board's I/O.
        error: the device's refusal or failure instead of an outcome.
    """

    __slots__ = ("_ended", "error", "lease", "outcome", "runtime", "ticket")

    def __init__(
        self,
        runtime: RuntimeDevices,
        lease: Lease,
        ticket: Ticket,
        outcome: Any = None,
        error: ActorHwError | None = None,
    ) -> None:
        self.runtime = runtime
        self.lease = lease
        self.ticket = ticket
        self.outcome = outcome
        self.error = error
        self._ended = False

    @property
    def futures(self) -> tuple[concurrent.futures.Future[Any], ...]:
        """What to wait on (any one of them) before `ready` may turn true."""
        if isinstance(self.outcome, PendingIO) and not self.outcome.ran_here:
            return (self.outcome.future, self.ticket.revoked)
        return ()

    def ready(self) -> bool:
        """Whether `result` answers without blocking: the operation ended, not revoked
        (a revoked one is stopped on the board first, which blocks)."""
        if self.ticket.revoked_error() is not None:  # (makes no future)
            return False
        pending = self.outcome
        return not isinstance(pending, PendingIO) or pending.ran_here or pending.future.done()

    def result(self, timeout: float) -> Any:
        """The operation's result (waiting up to ``timeout`` s), as `Runtime.use`
        answers it, or its error raised; the limiter's slot is given back."""
        if self._ended:
            raise InvalidArgumentError("this operation's result was already taken")
        self._ended = True
        rt, ticket = self.runtime, self.ticket
        try:
            if self.error is not None:
                raise self.error
            return settle(rt, self.lease, ticket, self.outcome, timeout)
        except DeviceExceptionError as e:
            raise_device_exception(rt, self.lease, ticket, e)
        finally:
            rt.limiter.finish(ticket)


def settle(rt: RuntimeDevices, lease: Lease, ticket: Ticket, outcome: Any, timeout: float) -> Any:
    """What an admitted operation answers, given what the device handed back: a value
    as it is, a PendingIO the caller ran itself (unless revoked meanwhile), or one still
    on the board's I/O thread, waited for up to ``timeout`` s (a revoked one is stopped
    on the board).  `Runtime.use` and `UseInFlight.result` both end through it."""
    if isinstance(outcome, PendingIO):
        if outcome.ran_here:  # the caller ran it on the idle board: no future
            revoked = ticket.revoked_error()  # (makes no future)
            if revoked is not None:
                raise revoked
            if outcome.error is not None:
                raise outcome.error
            return outcome.value
        try:
            return ticket.wait(outcome.future, timeout=max(0.0, timeout))
        except ActorHwError:
            if ticket.revoked_error() is not None:
                rt._stop_revoked(lease, outcome.future)
            raise
    return outcome


def raise_device_exception(
    rt: RuntimeDevices, lease: Lease, ticket: Ticket, error: DeviceExceptionError
) -> NoReturn:
    """Raise what a device's exception during an admitted operation means: the
    revocation that caused it, or the exception itself, recorded by the monitor."""
    revoked = ticket.revoked_error()
    if revoked is not None:
        raise revoked from error
    rt.monitor.observe_error(lease.device, error.exc_name, error.message)
    raise error
