"""OperationLimiterActor: how many device operations run at once, and in which order.

Every ``Runtime.use`` asks the limiter to admit its operation and tells it when done.
At most ``max_global`` operations run in the runtime and ``max_per_device`` on one
device (default 4 each).  When full, a High or Critical operation preempts a Low one:
the Low one's caller gets a :class:`~actorhw.errors.PreemptedError` at once and the
board is interrupted (Ctrl-C on a MicroPython board).  Others wait in priority, then
arrival order, up to their deadline, or are refused at once if they asked not to wait.
An operation running past ``operation_timeout`` (default 5 min) is interrupted and its
caller gets a TimedOutError.  Admission state lives only in this actor's mailbox.
"""

from __future__ import annotations

import bisect
import collections
import concurrent.futures
import itertools
import threading
import time
from collections.abc import Callable
from typing import Any, Protocol

from actorhw.core.errors import (
    ActorHwError,
    InvalidArgumentError,
    LimiterFullError,
    PreemptedError,
    TimedOutError,
)
from actorhw.core.events import EventBus
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
    OperationPreempted,
    Priority,
    Ticket,
    Use,
)
from actorhw.core.messages.limiter import ADMITTED
from actorhw.tree.asks import DEFAULT_ASK_TIMEOUT, ask_later, by_urn
from actorhw.tree.dispatch import DispatchActor

__all__ = ["FastLane", "OperationLimiterActor", "Ticket", "fast_lane", "next_op_id"]

#: Operation ids are unique in the process.
_op_ids = itertools.count(1)


def next_op_id() -> int:
    """A new operation id, unique in the process."""
    return next(_op_ids)


class _Op(Ticket):
    """One operation at the limiter, admitted or waiting: its caller's ticket, and what
    it asked for (the fields of its `Admit`, kept here: the fast lane makes no message)
    and its place in the queue."""

    __slots__ = (
        "actor_urn", "exclusive", "lease", "priority", "seq", "started", "started_wall", "what",
    )  # fmt: skip

    def __init__(  # an Admit's fields, positional: one call per operation
        self,
        op_id: int,
        device: DeviceId,
        priority: Priority,
        what: str,
        exclusive: bool,
        lease: Lease | None,
        actor_urn: str,
        admitted: concurrent.futures.Future[None],
        seq: int,
        started: float = 0.0,
        started_wall: float = 0.0,
    ) -> None:
        self.op_id = op_id
        self.device = device
        self.admitted = admitted
        self._revoked = None
        self.priority = priority
        self.what = what
        self.exclusive = exclusive
        self.lease = lease
        self.actor_urn = actor_urn
        self.seq = seq
        self.started = started  # (the limiter's clock; 0 while waiting)
        self.started_wall = started_wall

    @classmethod
    def asked(cls, m: Admit, seq: int) -> _Op:
        """The operation an Admit message asks for, waiting to be admitted."""
        return cls(m.op_id, m.device, m.priority, m.what, m.exclusive, m.lease, m.actor_urn,
                   concurrent.futures.Future(), seq)  # fmt: skip

    @property
    def sort_key(self) -> tuple[int, int]:
        return (-int(self.priority), self.seq)


class OperationLimiterActor(DispatchActor):
    """Admits, queues, preempts and times out device operations."""

    label = "limiter"

    def __init__(
        self,
        *,
        events: EventBus,
        max_global: int = 4,
        max_per_device: int = 4,
        operation_timeout: float = 300.0,
        check_interval: float | None = 1.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        super().__init__()
        _check_limits(max_global, max_per_device, operation_timeout)
        self._events = events
        self._max_global = max_global
        self._max_per_device = max_per_device
        self._timeout = operation_timeout
        self._clock = clock
        self._active: dict[int, _Op] = {}
        self._per_device: dict[DeviceId, int] = {}  # running operations; no zero entries
        self._exclusive: set[DeviceId] = set()
        self._waiting: list[_Op] = []
        self._seq = itertools.count()
        self._stats = collections.Counter[str]()
        self._check_interval = check_interval
        self._ticker_stop = threading.Event()
        self._ticker: threading.Thread | None = None
        # The admission books are guarded by this lock, so that the common case (a slot
        # free, no one waiting) and every finish are a function call in the caller's
        # thread (the fast lane: see try_admit, finish_now); the mailbox still serves
        # the rest, one message at a time: queueing, preemption, timeouts, listings.
        self._lock = threading.RLock()
        self._asking = 0  # Admits sent to the mailbox by try_admit's callers, not yet handled
        self.handle(
            {
                Admit: self._locked(self._admit),
                CanAdmit: self._locked(self._can_admit),
                Finish: self._locked(self._finish),
                CheckTimeouts: self._locked(self._check_timeouts),
                GetLimiterStatistics: self._locked(lambda _m: self._statistics()),
                ListOperations: self._locked(self._list),
                ConfigureLimiter: self._locked(self._configure),
            }
        )
        self.actor_ref.fast_lane = self  # type: ignore[attr-defined]  # see fast_lane()

    def _locked(self, handler: Callable[[Any], Any]) -> Callable[[Any], Any]:
        def locked(message: Any) -> Any:
            with self._lock:
                return handler(message)

        return locked

    # --- the fast lane: called from callers' threads -------------------------------------

    def try_admit(self, message: Admit, *, then_ask: bool = True) -> Ticket | None:
        """Admit ``message`` at once if a slot is free and no one waits (then its ticket),
        else None: the caller asks the actor, which queues or preempts (``then_ask``
        False: the caller will not ask, and nothing changed)."""
        m = message
        return self.admit_here(
            m.op_id, m.device, m.priority, m.what, m.exclusive, m.lease, m.actor_urn, then_ask
        )

    def admit_here(  # an Admit's fields: the fast lane makes no message
        self,
        op_id: int,
        device: DeviceId,
        priority: Priority,
        what: str,
        exclusive: bool,
        lease: Lease | None,
        actor_urn: str,
        then_ask: bool = True,
    ) -> Ticket | None:
        """`try_admit` of an operation given by an Admit's fields, without the message
        (a frozen message of eight fields costs more than the rest of an admission)."""
        with self._lock:
            n = self._per_device.get(device, 0)
            if (  # _fits, when no one waits
                self._waiting
                or self._asking
                or len(self._active) >= self._max_global
                or n >= self._max_per_device
                or device in self._exclusive
                or (exclusive and n)
            ):
                self._asking += then_ask  # the caller asks now: later ones queue behind it
                return None
            op = _Op(op_id, device, priority, what, exclusive, lease, actor_urn, ADMITTED,
                     next(self._seq), self._clock(), time.time())  # fmt: skip
            self._active[op_id] = op
            self._per_device[device] = n + 1
            if exclusive:
                self._exclusive.add(device)
            self._stats["admitted"] += 1
            return op

    def finish_now(self, op_id: int) -> None:
        """The operation ended: give its slot back and admit waiters that now fit."""
        with self._lock:
            op = self._active.get(op_id)
            if op is None or self._waiting or op.exclusive:
                self._finish_op(op_id)
                return
            del self._active[op_id]  # the common case of _finish_op (_remove, inline)
            device = op.device
            left = self._per_device[device] - 1
            if left:
                self._per_device[device] = left
            else:
                del self._per_device[device]

    def on_start(self) -> None:
        if self._check_interval is not None:
            self._ticker = threading.Thread(target=self._tick, name="limiter-timeouts", daemon=True)
            self._ticker.start()

    def on_stop(self) -> None:
        self._ticker_stop.set()
        if self._ticker is not None:
            self._ticker.join(DEFAULT_ASK_TIMEOUT)
        with self._lock:
            for op in [*self._active.values(), *self._waiting]:
                _revoke(op, TimedOutError("the runtime stopped", device=op.device.key))

    def _tick(self) -> None:
        assert self._check_interval is not None
        while not self._ticker_stop.wait(self._check_interval):
            if self.actor_ref.is_alive():
                self.actor_ref.tell(CheckTimeouts())

    # --- admission ----------------------------------------------------------------------

    def _fits(self, m: Admit | CanAdmit | _Op, *, without: _Op | None = None) -> bool:
        """Whether ``m`` fits now (or once ``without``, a running operation, is gone)."""
        n = self._per_device.get(m.device, 0)
        active = len(self._active)
        alone = m.device in self._exclusive
        if without is not None:
            active -= 1
            if without.device is m.device:
                n -= 1
                alone = alone and not without.exclusive
        return (
            active < self._max_global
            and n < self._max_per_device
            and not alone
            and not (m.exclusive and n)
            and (m.exclusive or not self._waiting or not self._exclusive_waits(m))
        )

    def _exclusive_waits(self, m: Admit | CanAdmit | _Op) -> bool:
        """An exclusive operation of at least ``m``'s priority waits for ``m``'s device:
        ``m`` queues behind it, so a stream of shared operations cannot starve it."""
        return any(
            w.exclusive and w.device == m.device and w.priority >= m.priority for w in self._waiting
        )

    def _can_admit(self, message: CanAdmit) -> bool:
        """Whether :meth:`_admit` would run it now; reads state, changes none."""
        if self._fits(message):
            return True
        if message.priority < Priority.HIGH:
            return False
        lows = [o for o in self._active.values() if o.priority is Priority.LOW]
        return any(self._fits(message, without=victim) for victim in lows)

    def _admit(self, message: Admit) -> Ticket:
        self._asking = max(0, self._asking - 1)
        op = _Op.asked(message, next(self._seq))
        if self._fits(message) or self._preempt_for(op):
            self._start(op)
            return op
        if not message.wait:
            self._stats["refused"] += 1
            raise LimiterFullError(
                f"{message.device.key}: {len(self._active)} operations running "
                f"(max {self._max_global} in all, {self._max_per_device} per device); "
                "the operation asked not to wait",
                device=message.device.key,
                active=len(self._active),
                max_global=self._max_global,
                max_per_device=self._max_per_device,
            )
        bisect.insort(self._waiting, op, key=lambda o: o.sort_key)
        return op

    def _start(self, op: _Op) -> None:
        op.started, op.started_wall = self._clock(), time.time()
        self._active[op.op_id] = op
        device = op.device
        self._per_device[device] = self._per_device.get(device, 0) + 1
        if op.exclusive:
            self._exclusive.add(op.device)
        self._stats["admitted"] += 1
        admitted = op.admitted
        if admitted is not ADMITTED and not admitted.done():  # else: in the fast lane
            admitted.set_result(None)

    def _remove(self, op: _Op) -> None:
        del self._active[op.op_id]
        device = op.device
        left = self._per_device[device] - 1
        if left:
            self._per_device[device] = left
        else:
            del self._per_device[device]
        if op.exclusive:
            self._exclusive.discard(device)

    def _preempt_for(self, op: _Op) -> bool:
        """Interrupt one Low operation whose slot lets ``op`` in; newest first."""
        if op.priority < Priority.HIGH:
            return False
        lows = [o for o in self._active.values() if o.priority is Priority.LOW]
        for victim in sorted(lows, key=lambda o: -o.seq):
            self._remove(victim)
            if self._fits(op):
                self._stats["preempted"] += 1
                error = PreemptedError(
                    f"{victim.device.key}: operation {victim.op_id} "
                    f"({victim.what}) preempted by a {op.priority.name} one",
                    device=victim.device.key,
                    op_id=victim.op_id,
                    by_priority=op.priority.name,
                )
                _revoke(victim, error)
                _interrupt(victim)
                self._events.publish(
                    OperationPreempted(
                        op_id=victim.op_id,
                        device=victim.device,
                        by_op_id=op.op_id,
                        by_priority=op.priority,
                        at=time.time(),
                    )
                )
                return True
            self._restore(victim)
        return False

    def _restore(self, op: _Op) -> None:
        self._active[op.op_id] = op
        device = op.device
        self._per_device[device] = self._per_device.get(device, 0) + 1
        if op.exclusive:
            self._exclusive.add(op.device)

    def _finish(self, message: Finish) -> None:
        self._finish_op(message.op_id)

    def _finish_op(self, op_id: int) -> None:
        op = self._active.get(op_id)
        if op is not None:
            self._remove(op)
            if self._waiting:
                self._dispatch()
            return
        for i, waiting in enumerate(self._waiting):
            if waiting.op_id == op_id:
                del self._waiting[i]
                self._stats["cancelled"] += 1
                self._dispatch()  # an exclusive waiter may have held others back
                return

    def _dispatch(self) -> None:
        """Admit waiters in priority, then arrival order, wherever they fit."""
        i = 0
        while i < len(self._waiting) and len(self._active) < self._max_global:
            op = self._waiting[i]
            if self._fits(op):
                del self._waiting[i]
                self._start(op)
            else:
                i += 1

    def _check_timeouts(self, _message: CheckTimeouts) -> int:
        now = self._clock()
        late = [o for o in self._active.values() if now - o.started > self._timeout]
        for op in late:
            self._remove(op)
            self._stats["timed_out"] += 1
            _revoke(
                op,
                TimedOutError(
                    f"{op.device.key}: operation {op.op_id} "
                    f"({op.what}) ran past the operation timeout of {self._timeout:g} s",
                    device=op.device.key,
                    op_id=op.op_id,
                    timeout=self._timeout,
                ),
            )
            _interrupt(op)
        if late:
            self._dispatch()
        return len(late)

    # --- introspection ------------------------------------------------------------------

    def _statistics(self) -> LimiterStatistics:
        return LimiterStatistics(
            max_global=self._max_global,
            max_per_device=self._max_per_device,
            operation_timeout=self._timeout,
            active=len(self._active),
            waiting=len(self._waiting),
            admitted=self._stats["admitted"],
            refused=self._stats["refused"],
            preempted=self._stats["preempted"],
            timed_out=self._stats["timed_out"],
            cancelled=self._stats["cancelled"],
        )

    def _list(self, _message: ListOperations) -> tuple[ActiveOperation, ...]:
        return tuple(
            ActiveOperation(
                op_id=o.op_id,
                device=o.device,
                priority=o.priority,
                what=o.what,
                exclusive=o.exclusive,
                started_at=o.started_wall,
            )
            for o in self._active.values()  # in admission order
        )

    def _configure(self, message: ConfigureLimiter) -> LimiterStatistics:
        max_global = self._max_global if message.max_global is None else message.max_global
        per_device = (
            self._max_per_device if message.max_per_device is None else message.max_per_device
        )
        timeout = self._timeout if message.operation_timeout is None else message.operation_timeout
        _check_limits(max_global, per_device, timeout)
        self._max_global, self._max_per_device, self._timeout = max_global, per_device, timeout
        self._dispatch()
        return self._statistics()


def _check_limits(max_global: int, max_per_device: int, timeout: float) -> None:
    for name, value in (("max_global", max_global), ("max_per_device", max_per_device)):
        if not isinstance(value, int) or isinstance(value, bool) or value < 1:
            raise InvalidArgumentError(f"{name} must be an int >= 1, not {value!r}", argument=name)
    if not isinstance(timeout, int | float) or timeout <= 0:
        raise InvalidArgumentError(
            f"operation_timeout must be > 0 seconds, not {timeout!r}", argument="operation_timeout"
        )


def _revoke(op: _Op, error: ActorHwError) -> None:
    if not op.admitted.done():
        op.admitted.set_exception(error)
    if not op.revoked.done():
        op.revoked.set_result(error)


def _interrupt(op: _Op) -> None:
    """Ask the device to stop what runs on the board; never waits for the answer."""
    lease, urn = op.lease, op.actor_urn
    ref = by_urn(urn) if urn else None
    if lease is not None and ref is not None:
        ask_later(ref, Use(lease=lease, op="interrupt"))


class FastLane(Protocol):
    """What a caller's thread may call on the limiter directly (see try_admit)."""

    def try_admit(self, message: Admit, *, then_ask: bool = True) -> Ticket | None: ...
    def admit_here(
        self,
        op_id: int,
        device: DeviceId,
        priority: Priority,
        what: str,
        exclusive: bool,
        lease: Lease | None,
        actor_urn: str,
        then_ask: bool = True,
    ) -> Ticket | None: ...
    def finish_now(self, op_id: int) -> None: ...


def fast_lane(ref: Any) -> FastLane | None:
    """The limiter's fast lane, if ``ref`` is a running limiter (else None: ask it)."""
    lane = getattr(ref, "fast_lane", None)
    return lane if isinstance(lane, OperationLimiterActor) else None
