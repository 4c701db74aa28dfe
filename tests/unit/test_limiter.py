"""The operation limiter: limits, priority order, preemption, deadlines, timeouts.

Deterministic: admissions are asked straight of the actor (the answer is a Ticket whose
futures say what happened), time is a fake clock, and nothing sleeps.
"""

from __future__ import annotations

import concurrent.futures
from collections.abc import Iterator
from typing import Any

import attrs
import pykka
import pytest

from actorhw import Runtime
from actorhw.api.limiter import OperationLimiter
from actorhw.core.errors import (
    InvalidArgumentError,
    LimiterFullError,
    PreemptedError,
    TimedOutError,
)
from actorhw.core.events import EventBus
from actorhw.core.messages import Admit, OperationPreempted, Priority
from actorhw.tree import limiter as limiter_module
from actorhw.tree.asks import ask
from actorhw.tree.limiter import OperationLimiterActor, Ticket

pytestmark = pytest.mark.timeout(20)
WAIT = 5.0


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@attrs.define
class Kit:
    ref: pykka.ActorRef[Any]
    limiter: OperationLimiter
    events: EventBus
    clock: Clock
    ids: Any

    def admit(self, device: Any, priority: Priority = Priority.NORMAL, **kw: Any) -> Ticket:
        message = Admit(op_id=next(limiter_module._op_ids), device=device, priority=priority, **kw)
        ticket: Ticket = ask(self.ref, message, timeout=WAIT)
        return ticket

    def finish(self, ticket: Ticket) -> None:
        self.limiter.finish(ticket)
        self.limiter.statistics(timeout=WAIT)  # the Finish was handled


@pytest.fixture
def kit() -> Iterator[Kit]:
    from actorhw.drivers.definitions import BoardCatalog

    ids = BoardCatalog.discover(()).get("microbit").ids("lim")
    events, clock = EventBus(), Clock()
    ref = OperationLimiterActor.start(
        events=events, max_global=2, max_per_device=2, operation_timeout=60.0,
        check_interval=None, clock=clock,
    )  # fmt: skip
    try:
        yield Kit(ref, OperationLimiter(ref), events, clock, ids)
    finally:
        ref.stop(timeout=WAIT)


def admitted(ticket: Ticket) -> bool:
    return ticket.admitted.done() and ticket.admitted.exception() is None


def test_full_limiter_queues_and_admits_by_priority_then_arrival(kit: Kit) -> None:
    a, b = kit.admit(kit.ids.PIN0), kit.admit(kit.ids.PIN1)
    low = kit.admit(kit.ids.PIN2, Priority.LOW)
    normal1 = kit.admit(kit.ids.PIN3, Priority.NORMAL)
    normal2 = kit.admit(kit.ids.PIN4, Priority.NORMAL)
    assert admitted(a) and admitted(b)
    assert not any(t.admitted.done() for t in (low, normal1, normal2))
    assert kit.limiter.statistics().waiting == 3
    kit.finish(a)
    assert admitted(normal1) and not normal2.admitted.done() and not low.admitted.done()
    kit.finish(b)
    assert admitted(normal2) and not low.admitted.done()
    kit.finish(normal1)
    assert admitted(low)
    assert [o.op_id for o in kit.limiter.operations()] == [normal2.op_id, low.op_id]


def test_per_device_limit_lets_other_devices_pass(kit: Kit) -> None:
    kit.limiter.configure(max_global=3, max_per_device=1)
    first = kit.admit(kit.ids.PIN0)
    same = kit.admit(kit.ids.PIN0)
    other = kit.admit(kit.ids.PIN1)
    assert admitted(first) and admitted(other) and not same.admitted.done()
    kit.finish(first)
    assert admitted(same)


def test_no_wait_is_refused_at_once_and_counted(kit: Kit) -> None:
    kit.admit(kit.ids.PIN0), kit.admit(kit.ids.PIN1)
    with pytest.raises(LimiterFullError) as info:
        kit.admit(kit.ids.PIN2, wait=False)
    assert info.value.code == "too_many_operations" and info.value.active == 2
    stats = kit.limiter.statistics()
    assert (stats.refused, stats.active, stats.waiting) == (1, 2, 0)


def test_waiting_with_a_deadline_gives_up_and_frees_nothing_it_had_not(kit: Kit) -> None:
    a = kit.admit(kit.ids.PIN0)
    kit.admit(kit.ids.PIN1)
    with pytest.raises(TimedOutError):
        kit.limiter.admit(kit.ids.PIN2, timeout=0.05)
    stats = kit.limiter.statistics()
    assert (stats.cancelled, stats.waiting, stats.active) == (1, 0, 2)
    kit.finish(a)
    assert kit.limiter.statistics().active == 1  # the given-up wait was not admitted


def test_high_preempts_the_newest_low_and_its_caller_gets_preempted(kit: Kit) -> None:
    sub = kit.events.subscribe()
    old_low = kit.admit(kit.ids.PIN0, Priority.LOW)
    new_low = kit.admit(kit.ids.PIN1, Priority.LOW)
    high = kit.admit(kit.ids.PIN2, Priority.HIGH)
    assert admitted(high) and not old_low.revoked.done()
    error = new_low.revoked_error()
    assert isinstance(error, PreemptedError) and error.code == "preempted"
    assert error.op_id == new_low.op_id and error.by_priority == "HIGH"
    event = sub.wait_for(lambda e: isinstance(e, OperationPreempted), timeout=WAIT)
    assert (event.op_id, event.by_op_id, event.by_priority) == (
        new_low.op_id, high.op_id, Priority.HIGH,
    )  # fmt: skip
    board_call: concurrent.futures.Future[Any] = concurrent.futures.Future()  # never ends
    with pytest.raises(PreemptedError):
        new_low.wait(board_call, timeout=WAIT)
    assert board_call.cancelled()  # not started on the I/O thread: it never will be
    kit.finish(new_low)  # a late Finish of a preempted operation changes nothing
    stats = kit.limiter.statistics()
    assert (stats.preempted, stats.active) == (1, 2)


def test_normal_does_not_preempt_and_high_without_a_low_waits(kit: Kit) -> None:
    kit.admit(kit.ids.PIN0, Priority.NORMAL), kit.admit(kit.ids.PIN1, Priority.NORMAL)
    normal = kit.admit(kit.ids.PIN2, Priority.NORMAL)
    critical = kit.admit(kit.ids.PIN3, Priority.CRITICAL)
    assert not normal.admitted.done() and not critical.admitted.done()
    assert kit.limiter.statistics().preempted == 0


def test_operation_timeout_interrupts_and_admits_the_next(kit: Kit) -> None:
    kit.limiter.configure(operation_timeout=30.0)
    late = kit.admit(kit.ids.PIN0)
    kit.clock.now += 20
    fresh = kit.admit(kit.ids.PIN1)
    waiting = kit.admit(kit.ids.PIN2)
    kit.clock.now += 15  # late ran 35 s, fresh 15 s
    assert kit.limiter.check_timeouts() == 1
    error = late.revoked_error()
    assert isinstance(error, TimedOutError) and error.timeout == 30.0
    assert not fresh.revoked.done() and admitted(waiting)
    assert kit.limiter.statistics().timed_out == 1


def test_exclusive_runs_alone_on_its_device(kit: Kit) -> None:
    kit.limiter.configure(max_global=4, max_per_device=4)
    shared = kit.admit(kit.ids.BOARD)
    exclusive = kit.admit(kit.ids.BOARD, exclusive=True)
    assert not exclusive.admitted.done()
    kit.finish(shared)
    assert admitted(exclusive)
    behind = kit.admit(kit.ids.BOARD)
    elsewhere = kit.admit(kit.ids.PIN0)
    assert not behind.admitted.done() and admitted(elsewhere)
    kit.finish(exclusive)
    assert admitted(behind)
    (op,) = [o for o in kit.limiter.operations() if o.device is kit.ids.BOARD]
    assert not op.exclusive


def test_a_waiting_exclusive_keeps_later_operations_of_its_device_out(kit: Kit) -> None:
    kit.limiter.configure(max_global=4, max_per_device=4)
    shared = kit.admit(kit.ids.BOARD)
    exclusive = kit.admit(kit.ids.BOARD, exclusive=True)
    later = kit.admit(kit.ids.BOARD)  # would fit, but the exclusive one waits first
    elsewhere = kit.admit(kit.ids.PIN0)
    urgent = kit.admit(kit.ids.BOARD, Priority.HIGH)  # a higher priority still passes
    assert not exclusive.admitted.done() and not later.admitted.done()
    assert admitted(elsewhere) and admitted(urgent)
    kit.finish(shared)
    kit.finish(urgent)
    assert admitted(exclusive) and not later.admitted.done()
    kit.finish(exclusive)
    assert admitted(later)


def test_statistics_is_a_frozen_snapshot(kit: Kit) -> None:
    stats = kit.limiter.statistics()
    kit.admit(kit.ids.PIN0)
    assert stats.active == 0 and kit.limiter.statistics().active == 1
    with pytest.raises(attrs.exceptions.FrozenInstanceError):
        stats.active = 3  # type: ignore[misc]


@pytest.mark.parametrize(
    "kw", [{"max_global": 0}, {"max_per_device": -1}, {"operation_timeout": -1.0}]
)
def test_bad_limits_are_refused_and_nothing_changes(kit: Kit, kw: dict[str, Any]) -> None:
    before = kit.limiter.statistics()
    with pytest.raises(InvalidArgumentError):
        kit.limiter.configure(**kw)
    assert kit.limiter.statistics() == before


def test_runtime_use_passes_the_limiter() -> None:
    with Runtime.start(boards=["microbit"]) as rt:
        ids = rt.ids("microbit")
        with rt.lease(ids.PIN0, owner="t") as pin:
            assert pin.lease is not None
            before = rt.limiter.statistics().admitted
            assert rt.use(pin.lease, "read") is False
            assert rt.limiter.statistics().admitted == before + 1
            rt.limiter.configure(max_global=1)
            other = rt.limiter.admit(ids.PIN1)  # takes the only slot
            with pytest.raises(LimiterFullError):
                rt.use(pin.lease, "read", wait=False)
            with pytest.raises(InvalidArgumentError, match="priority"):
                rt.use(pin.lease, "read", priority=3)  # type: ignore[arg-type]
            rt.limiter.finish(other)
            assert rt.use(pin.lease, "read", priority=Priority.HIGH) is False
