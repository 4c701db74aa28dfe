"""A board's I/O lane (issue 14): work runs one item at a time in the order submitted; a
caller in its turn runs its work itself when the lane is idle (no hop to the lane's
thread), and queues behind whatever runs or waits when it is not."""

from __future__ import annotations

import threading
from typing import Any

import pytest

from actorhw.core.errors import LinkLostError, TimedOutError
from actorhw.core.events import EventBus
from actorhw.core.ids import DeviceKind, make_id_enum
from actorhw.core.lifecycle import DeviceState, SharingPolicy, legal_path
from actorhw.core.messages import Acquire, Open, Transition
from actorhw.drivers.board_driver import PendingIO, Peripheral
from actorhw.drivers.definitions import DeviceSpec
from actorhw.drivers.io_lane import IOLane, callers_turn
from actorhw.tree.asks import ask
from actorhw.tree.device import DeviceActor, fast_use

Ids = make_id_enum("LaneIds", "lane", ["BOARD"])


def _where(_link: object) -> str:
    return threading.current_thread().name


@pytest.fixture
def lane() -> Any:
    lane = IOLane("b1")
    yield lane
    lane.shutdown()


def test_submitted_work_runs_on_the_lanes_thread(lane: IOLane) -> None:
    pending = lane.submit(_where, None, what="where")
    assert not pending.ran_here
    assert pending.wait(timeout=5) == "io-b1"


def test_a_caller_in_its_turn_runs_the_work_itself_on_an_idle_lane(lane: IOLane) -> None:
    with callers_turn():
        pending = lane.submit(_where, None, what="where")
    assert pending.ran_here and pending.outcome() == threading.current_thread().name
    assert pending.wait(timeout=0) == threading.current_thread().name
    assert pending.future.result(timeout=0) == threading.current_thread().name  # on demand


def test_an_error_of_work_run_here_is_kept_not_raised_by_submit(lane: IOLane) -> None:
    def fail(_link: object) -> None:
        raise TimedOutError("no answer", timeout=1.0)

    with callers_turn():
        pending = lane.submit(fail, None, what="fail")  # submit itself does not raise
    assert pending.ran_here and isinstance(pending.error, TimedOutError)
    with pytest.raises(TimedOutError):
        pending.outcome()
    with pytest.raises(TimedOutError):
        pending.future.result(timeout=0)


def test_a_busy_lane_queues_the_callers_work_behind_what_was_first(lane: IOLane) -> None:
    started, release = threading.Event(), threading.Event()
    order: list[str] = []

    def slow(_link: object) -> None:
        started.set()
        release.wait(5)
        order.append("first")

    first = lane.submit(slow, None, what="slow")
    assert started.wait(5) and lane.busy
    with callers_turn():
        second = lane.submit(lambda _l: order.append("second"), None, what="second")
    assert not second.ran_here  # queued, not run here ahead of the running item
    release.set()
    first.wait(timeout=5)
    second.wait(timeout=5)
    assert order == ["first", "second"]


def test_queued_work_goes_before_a_later_callers_turn(lane: IOLane) -> None:
    started, release = threading.Event(), threading.Event()
    lane.submit(lambda _l: (started.set(), release.wait(5)), None, what="slow")
    assert started.wait(5)
    queued = lane.submit(_where, None, what="queued")  # waits behind the running item
    release.set()
    with callers_turn():
        mine = lane.submit(_where, None, what="mine")
    # Either it ran here after the queued item finished, or it queued behind it.
    assert queued.wait(timeout=5) == "io-b1"
    assert mine.wait(timeout=5) in ("io-b1", threading.current_thread().name)


def test_shutdown_cancels_queued_work_and_refuses_more(lane: IOLane) -> None:
    started, release = threading.Event(), threading.Event()
    running = lane.submit(lambda _l: (started.set(), release.wait(5)), None, what="slow")
    assert started.wait(5)
    queued = lane.submit(_where, None, what="queued")
    stopper = threading.Thread(target=lane.shutdown)
    stopper.start()
    release.set()
    stopper.join(5)
    assert queued.future.cancelled() and running.future.done()
    with pytest.raises(LinkLostError):
        lane.submit(_where, None, what="late")
    with callers_turn(), pytest.raises(LinkLostError):
        lane.submit(_where, None, what="late")


class _LanePeripheral(Peripheral):
    """A BOARD whose exec goes through an I/O lane, as a MicroPython board's does."""

    callers_may_perform = True

    def __init__(self) -> None:
        spec = DeviceSpec(name="BOARD", kind=DeviceKind.BOARD, policy=SharingPolicy.SINGLE)
        super().__init__(spec)
        self.lane = IOLane("lane")
        self.fail: Exception | None = None

    def exec(self, code: str, timeout: float) -> PendingIO:
        def work(_link: object) -> str:
            if self.fail is not None:
                raise self.fail
            return threading.current_thread().name

        return self.lane.submit(work, None, what="exec")


def test_fast_use_runs_on_the_idle_board_in_the_callers_thread_and_reports_faults() -> None:
    peripheral = _LanePeripheral()
    faults: list[Any] = []
    ref = DeviceActor.start(
        device=Ids.BOARD,
        spec=peripheral.spec,
        peripheral=peripheral,
        events=EventBus(),
        on_fault=lambda device, error: faults.append((device, error)),
    )
    try:
        for to in legal_path(DeviceState.UNKNOWN, DeviceState.CONNECTED):
            ask(ref, Transition(to=to, reason="test"), timeout=5)
        lease = ask(ref, Acquire(owner="t"), timeout=5)
        ask(ref, Open(lease=lease), timeout=5)
        result = fast_use(ref, lease, "exec", ("print(1)", 1.0))
        assert isinstance(result, PendingIO) and result.ran_here
        assert result.outcome() == threading.current_thread().name
        peripheral.fail = TimedOutError("hung", timeout=1.0, resynced=False)
        failed = fast_use(ref, lease, "exec", ("print(1)", 1.0))
        assert isinstance(failed, PendingIO) and isinstance(failed.error, TimedOutError)
        assert faults == [(Ids.BOARD, peripheral.fail)]  # a fault reaches the board
    finally:
        ref.stop(block=True, timeout=5)
        peripheral.lane.shutdown()
