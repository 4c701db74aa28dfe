"""The typed facade of the limiter actor (``rt.limiter``)."""

from __future__ import annotations

import concurrent.futures
import time
from typing import Any

from actorhw.core.errors import (
    InvalidArgumentError,
    TimedOutError,
)
from actorhw.core.ids import DeviceId
from actorhw.core.messages import (
    ActiveOperation,
    Admit,
    CanAdmit,
    CheckTimeouts,
    ConfigureLimiter,
    Finish,
    GetLimiterStatistics,
    Lease,
    LimiterStatistics,
    ListOperations,
    Priority,
)
from actorhw.tree.asks import DEFAULT_ASK_TIMEOUT, ActorRef, ask
from actorhw.tree.limiter import Ticket, fast_lane, next_op_id

__all__ = ["OperationLimiter"]


class OperationLimiter:
    """The typed facade of the limiter actor (``rt.limiter``)."""

    def __init__(self, ref: ActorRef[Any]) -> None:
        self._ref = ref
        self.lane = fast_lane(ref)
        """The limiter's fast lane: admits and finishes in the caller's thread (None:
        every call asks the actor)."""

    def admit(
        self,
        device: DeviceId,
        *,
        priority: Priority = Priority.NORMAL,
        what: str = "",
        wait: bool = True,
        exclusive: bool = False,
        lease: Lease | None = None,
        actor_urn: str = "",
        timeout: float = DEFAULT_ASK_TIMEOUT,
    ) -> Ticket:
        """Wait until the operation may run (up to ``timeout`` s); `finish` it after.

        Raises:
            LimiterFullError: full, and ``wait`` is False.
            TimedOutError: not admitted within ``timeout``; the wait is given up.
            PreemptedError: never here (only a running operation is preempted).
        """
        if not isinstance(priority, Priority):
            raise InvalidArgumentError(
                f"priority must be a Priority (LOW, NORMAL, HIGH, CRITICAL), not {priority!r}",
                argument="priority",
            )
        op_id = next_op_id()
        lane = self.lane
        if lane is not None:  # a slot free and no one waiting: a function call
            fast = lane.admit_here(op_id, device, priority, what, exclusive, lease, actor_urn)
            if fast is not None:
                return fast
        message = Admit(
            op_id=op_id,
            device=device,
            priority=priority,
            what=what,
            wait=wait,
            exclusive=exclusive,
            lease=lease,
            actor_urn=actor_urn,
        )
        deadline = time.monotonic() + timeout
        ticket: Ticket = ask(self._ref, message, timeout=timeout)
        if ticket.admitted.done():
            ticket.admitted.result()
            return ticket
        try:
            ticket.admitted.result(timeout=max(0.0, deadline - time.monotonic()))
        except concurrent.futures.TimeoutError:
            self.finish(ticket)  # gives the slot back if admitted as the wait ran out
            raise TimedOutError(
                f"{device.key}: waited {timeout:.3g} s for the limiter to admit {what or 'an op'}",
                device=device.key,
                timeout=timeout,
            ) from None
        return ticket

    def admit_now(
        self,
        device: DeviceId,
        *,
        priority: Priority = Priority.NORMAL,
        what: str = "",
        exclusive: bool = False,
        lease: Lease | None = None,
        actor_urn: str = "",
    ) -> Ticket | None:
        """Admit the operation at once if the limiter's fast lane can (a slot free, no
        one waiting): its ticket, to `finish`; else None, and nothing changed (`admit`
        waits, queues or preempts)."""
        lane = self.lane
        if lane is None or not isinstance(priority, Priority):
            return None
        return lane.admit_here(
            next_op_id(), device, priority, what, exclusive, lease, actor_urn, then_ask=False
        )

    def can_run(
        self,
        device: DeviceId,
        *,
        priority: Priority = Priority.NORMAL,
        exclusive: bool = False,
        timeout: float = DEFAULT_ASK_TIMEOUT,
    ) -> bool:
        """Whether an operation would be admitted now (at once, or by preempting a Low one).

        A query only: no slot is taken, nothing queued or preempted, no statistic moves.
        The answer may be stale by the time the caller acts on it; `admit` decides.
        """
        if not isinstance(priority, Priority):
            raise InvalidArgumentError(
                f"priority must be a Priority (LOW, NORMAL, HIGH, CRITICAL), not {priority!r}",
                argument="priority",
            )
        message = CanAdmit(device=device, priority=priority, exclusive=exclusive)
        return bool(ask(self._ref, message, timeout=timeout))

    def finish(self, ticket: Ticket) -> None:
        """The operation ended (also when it failed or its caller gave up)."""
        lane = self.lane
        if lane is not None:
            lane.finish_now(ticket.op_id)
            return
        if self._ref.is_alive():
            self._ref.tell(Finish(op_id=ticket.op_id))

    def statistics(self, *, timeout: float = DEFAULT_ASK_TIMEOUT) -> LimiterStatistics:
        """A frozen snapshot of limits and counters."""
        return ask(self._ref, GetLimiterStatistics(), timeout=timeout)

    def operations(self, *, timeout: float = DEFAULT_ASK_TIMEOUT) -> tuple[ActiveOperation, ...]:
        """The operations running now, in admission order."""
        return ask(self._ref, ListOperations(), timeout=timeout)

    def configure(
        self,
        *,
        max_global: int | None = None,
        max_per_device: int | None = None,
        operation_timeout: float | None = None,
        timeout: float = DEFAULT_ASK_TIMEOUT,
    ) -> LimiterStatistics:
        """Change the limits (None keeps one); waiters that now fit are admitted."""
        message = ConfigureLimiter(
            max_global=max_global,
            max_per_device=max_per_device,
            operation_timeout=operation_timeout,
        )
        return ask(self._ref, message, timeout=timeout)

    def check_timeouts(self, *, timeout: float = DEFAULT_ASK_TIMEOUT) -> int:
        """Interrupt operations past the operation timeout now; returns how many."""
        return ask(self._ref, CheckTimeouts(), timeout=timeout)
