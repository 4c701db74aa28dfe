"""The common case costs a function call (issue 14): the limiter's fast lane admits and
finishes in the caller's thread, and an opened lease performs on a peripheral that
allows it without a hop through the device's mailbox; everything else still goes
through the actors, which keep ownership, lifecycle, queueing and preemption."""

from __future__ import annotations

import concurrent.futures
import threading
import time
from typing import Any

import pytest

from actorhw.core.events import EventBus
from actorhw.core.ids import DeviceKind, make_id_enum
from actorhw.core.lifecycle import DeviceState, SharingPolicy, legal_path
from actorhw.core.messages import (
    Acquire,
    Admit,
    Close,
    GetLimiterStatistics,
    Open,
    Priority,
    Release,
    Transition,
    Use,
)
from actorhw.drivers.board_driver import PendingIO, Peripheral
from actorhw.drivers.definitions import DeviceSpec
from actorhw.drivers.io_lane import TURN, op_timeout
from actorhw.tree.asks import ask
from actorhw.tree.device import BY_MAILBOX, DeviceActor, fast_use
from actorhw.tree.limiter import OperationLimiterActor, fast_lane, next_op_id

Ids = make_id_enum("FastIds", "fast", ["PIN0"])


def _admit(device: Any) -> Admit:
    return Admit(op_id=next_op_id(), device=device, what="read")


def test_the_fast_lane_admits_in_the_callers_thread_and_queues_when_full() -> None:
    ref = OperationLimiterActor.start(events=EventBus(), max_global=1, check_interval=None)
    try:
        lane = fast_lane(ref)
        assert lane is not None
        first = lane.try_admit(_admit(Ids.PIN0))
        assert first is not None and first.admitted.done()
        assert lane.try_admit(_admit(Ids.PIN0)) is None  # full: the caller must ask
        queued = ask(ref, _admit(Ids.PIN0), timeout=5)  # the actor queues it
        assert not queued.admitted.done()
        # A later caller may not overtake the queued one through the fast lane.
        assert lane.try_admit(_admit(Ids.PIN0)) is None
        lane.finish_now(first.op_id)  # the finish admits the waiter, no mailbox hop
        assert queued.admitted.done()
        lane.finish_now(queued.op_id)
        stats = ask(ref, GetLimiterStatistics(), timeout=5)
        assert (stats.active, stats.waiting, stats.admitted) == (0, 0, 2)
    finally:
        ref.stop()


class _Recorder(Peripheral):
    """A peripheral whose operations run on an I/O thread (as a MicroPython board's)."""

    callers_may_perform = True

    def __init__(self) -> None:
        super().__init__(DeviceSpec(name="PIN0", kind=DeviceKind.GPIO, policy=SharingPolicy.SINGLE))
        self.io = concurrent.futures.ThreadPoolExecutor(1)
        self.performed_by: list[str] = []
        self.timeouts: list[float] = []

    def perform(self, verb: str, args: tuple[Any, ...]) -> Any:
        self.performed_by.append(threading.current_thread().name)
        self.timeouts.append(op_timeout(2.0))
        return PendingIO(self.io.submit(lambda: True), what=verb)

    def reset(self) -> None:
        pass


@pytest.fixture
def device() -> Any:
    peripheral = _Recorder()
    ref = DeviceActor.start(
        device=Ids.PIN0, spec=peripheral.spec, peripheral=peripheral, events=EventBus()
    )
    for to in legal_path(DeviceState.UNKNOWN, DeviceState.CONNECTED):
        ask(ref, Transition(to=to, reason="test"), timeout=5)
    yield ref, peripheral
    ref.stop(block=True, timeout=5)
    peripheral.io.shutdown()


def test_an_opened_lease_performs_in_the_callers_thread(device: Any) -> None:
    ref, peripheral = device
    lease = ask(ref, Acquire(owner="t"), timeout=5)
    assert fast_use(ref, lease, "read", ()) is BY_MAILBOX  # acquired, not opened
    ask(ref, Open(lease=lease), timeout=5)
    result = fast_use(ref, lease, "read", ())
    assert isinstance(result, PendingIO) and result.wait(timeout=5) is True
    assert peripheral.performed_by == [threading.current_thread().name]
    assert fast_use(ref, lease, "write", (True,)) is not BY_MAILBOX
    assert fast_use(ref, lease, "no_such_op", ()) is BY_MAILBOX  # the actor refuses it


def test_closed_released_stale_or_down_goes_through_the_mailbox(device: Any) -> None:
    ref, _peripheral = device
    lease = ask(ref, Acquire(owner="t"), timeout=5)
    ask(ref, Open(lease=lease), timeout=5)
    other = type(lease)(
        device=lease.device, owner="intruder", token=lease.token, generation=lease.generation
    )
    assert fast_use(ref, other, "read", ()) is BY_MAILBOX  # not the owner
    ask(ref, Transition(to=DeviceState.DISCONNECTED, reason="fault"), timeout=5)
    assert fast_use(ref, lease, "read", ()) is BY_MAILBOX  # the device is down
    for to in legal_path(DeviceState.DISCONNECTED, DeviceState.CONNECTED):
        ask(ref, Transition(to=to, reason="recovered"), timeout=5)
    assert fast_use(ref, lease, "read", ()) is BY_MAILBOX  # a new generation: reopen
    ask(ref, Open(lease=lease), timeout=5)
    assert fast_use(ref, lease, "read", ()) is not BY_MAILBOX
    ask(ref, Close(lease=lease), timeout=5)
    assert fast_use(ref, lease, "read", ()) is BY_MAILBOX
    ask(ref, Release(lease=lease), timeout=5)
    assert fast_use(ref, lease, "read", ()) is BY_MAILBOX
    with pytest.raises(Exception, match="not held"):
        ask(ref, Use(lease=lease, op="read"), timeout=5)  # and the actor says why


class _Pin(Peripheral):
    """A peripheral with its own methods (perform not overridden): a GPIO with ``read``
    only, and a method named as no GPIO operation."""

    def read(self) -> bool:
        return True

    def transfer(self, data: bytes) -> bytes:  # an SPI operation: not a GPIO's
        return data


def test_operations_are_the_kinds_methods_found_once_or_perform_when_overridden() -> None:
    spec = DeviceSpec(name="PIN0", kind=DeviceKind.GPIO, policy=SharingPolicy.SINGLE)
    pin = _Pin(spec)
    ops = pin.operations()
    assert set(ops) == {"read"}  # no write method; transfer is not a GPIO operation
    assert ops["read"]() is True
    recorder = _Recorder()
    try:
        through = recorder.operations()
        assert set(through) == {"read", "write"}  # every GPIO operation, via perform
        assert through["write"](True).wait(timeout=5) is True
        assert recorder.performed_by == [threading.current_thread().name]
    finally:
        recorder.io.shutdown()


def test_the_fast_lane_keeps_an_exclusive_operation_alone_on_its_device() -> None:
    ref = OperationLimiterActor.start(events=EventBus(), check_interval=None)
    try:
        lane = fast_lane(ref)
        assert lane is not None
        alone = lane.admit_here(next_op_id(), Ids.PIN0, Priority.NORMAL, "exec", True, None, "",
                                then_ask=False)  # fmt: skip
        assert alone is not None
        assert lane.admit_here(next_op_id(), Ids.PIN0, Priority.NORMAL, "read", False, None, "",
                               then_ask=False) is None  # fmt: skip
        lane.finish_now(alone.op_id)
        shared = lane.admit_here(next_op_id(), Ids.PIN0, Priority.NORMAL, "read", False, None,
                                 "", then_ask=False)  # fmt: skip
        assert shared is not None
        assert lane.admit_here(next_op_id(), Ids.PIN0, Priority.NORMAL, "exec", True, None, "",
                               then_ask=False) is None  # fmt: skip
        lane.finish_now(shared.op_id)
        stats = ask(ref, GetLimiterStatistics(), timeout=5)
        assert (stats.active, stats.waiting, stats.admitted) == (0, 0, 2)
    finally:
        ref.stop()


def test_an_operation_in_the_callers_thread_sees_the_callers_deadline(device: Any) -> None:
    # fast_use hands the caller's deadline to the peripheral (op_timeout); elsewhere it
    # gets the driver's own bound, and the caller's turn is put back after the call.
    ref, peripheral = device
    lease = ask(ref, Acquire(owner="t"), timeout=5)
    ask(ref, Open(lease=lease), timeout=5)
    fast_use(ref, lease, "read", (), deadline=time.monotonic() + 30).wait(timeout=5)
    fast_use(ref, lease, "read", (), run_here=False, deadline=time.monotonic() + 0.5)
    fast_use(ref, lease, "read", ()).wait(timeout=5)
    long, short, default = peripheral.timeouts
    assert 25 < long <= 30 and 0 < short <= 0.5 and default == 2.0
    assert TURN.deadline is None and TURN.here is False
