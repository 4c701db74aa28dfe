"""Streams: the sim driver's channels, subscriber overflow policies, start/stop, failures."""

from __future__ import annotations

import math
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any, ClassVar

import pytest

from actorhw import Runtime
from actorhw.api.handles import Led
from actorhw.core.errors import InvalidArgumentError, TimedOutError
from actorhw.core.events import EventBus, Overflow
from actorhw.core.lifecycle import DeviceState
from actorhw.core.messages import StreamAction, StreamData, StreamSource
from actorhw.drivers.streams import StreamControl, StreamHub, StreamWriter

pytestmark = pytest.mark.timeout(30)

BOARD = "same70-xplained"
T = 5.0


@pytest.fixture
def rt() -> Iterator[Runtime]:
    runtime = Runtime.start(boards=[BOARD])
    try:
        yield runtime
    finally:
        runtime.stop()


def start(rt: Runtime, **args: Any) -> dict[str, Any]:
    result = rt.manager.execute_command("sim", "start", device_id=BOARD, args=args)
    assert result["status"] == "success", result
    return result


def stop(rt: Runtime) -> int:
    result = rt.manager.execute_command("sim", "stop", device_id=BOARD)
    assert result["status"] == "success", result
    return int(result["result"]["published"])


def is_data(event: StreamData) -> bool:
    return event.action is StreamAction.DATA


def test_sim_channels_carry_sine_counter_and_noise(rt: Runtime) -> None:
    with rt.stream(BOARD, overflow=Overflow.BLOCK) as sub:
        assert start(rt, period=8, seed=7)["result"] == {"channels": ["sine", "counter", "noise"]}
        first = sub.get(timeout=T)
        assert (first.action, first.source, first.data) == (
            StreamAction.START,
            StreamSource.SERVER,
            ("sine", "counter", "noise"),
        )
        events = sub.until(lambda e: e.channel == f"{BOARD}.noise" and e.seq >= 24, timeout=T)
        published = stop(rt)
    by_channel: dict[str, list[StreamData]] = {}
    for e in events:
        by_channel.setdefault(e.channel.split(".")[1], []).append(e)
    counters = [e.data[0] for e in by_channel["counter"]]
    assert counters == list(range(1, len(counters) + 1))
    sines = [e.data[0] for e in by_channel["sine"]]
    assert sines[:8] == pytest.approx([math.sin(n * 2 * math.pi / 8) for n in range(1, 9)])
    noise = [e.data[0] for e in by_channel["noise"]]
    assert all(0 <= v < 1 for v in noise) and len(set(noise)) == len(noise)
    assert [e.seq for e in events] == list(range(1, len(events) + 1))
    assert {e.stream_type for e in events} == {"sine", "counter", "noise"}
    assert published >= len(events)


def test_stop_publishes_a_stop_notice_and_the_board_is_connected_again(rt: Runtime) -> None:
    with rt.stream(BOARD) as sub:
        start(rt, channels=["counter"])
        sub.wait_for(lambda e: e.seq >= 10, timeout=T)
        assert rt.board_status(BOARD).state is DeviceState.ACTIVE
        published = stop(rt)
        notice = sub.wait_for(lambda e: e.action is StreamAction.STOP, timeout=T)
    assert notice.data == (published,)
    assert rt.board_status(BOARD).state is DeviceState.CONNECTED


def test_the_control_mailbox_answers_while_a_stream_runs(rt: Runtime) -> None:
    ids = rt.ids(BOARD)
    with rt.stream(BOARD) as sub:
        start(rt, channels=["counter"])
        sub.wait_for(lambda e: e.seq >= 1, timeout=T)
        with rt.lease(Led, ids.LED_GREEN, owner="t", timeout=T) as led:
            led.on()
            assert led.is_on()
        echo = rt.manager.execute_command("sim", "echo", device_id=BOARD, args={"x": 1})
        assert echo["result"] == {"x": 1}
        before = sub.wait_for(is_data, timeout=T).seq
        after = sub.wait_for(lambda e: e.seq > before + 100, timeout=T).seq
        stop(rt)
    assert after > before


@pytest.mark.parametrize("overflow", [Overflow.DROP_OLDEST, Overflow.DROP_NEWEST])
def test_a_slow_subscriber_loses_by_its_policy_and_sees_the_count(
    rt: Runtime, overflow: Overflow
) -> None:
    with rt.stream(BOARD, maxsize=16, overflow=overflow) as slow, rt.stream(BOARD) as fast:
        start(rt, channels=["counter"])
        fast.wait_for(lambda e: e.seq >= 2000, timeout=T)
        published = stop(rt)
        fast.wait_for(lambda e: e.action is StreamAction.STOP, timeout=T)
        kept = slow.drain()
    assert len(kept) == 16
    # every message was either kept or dropped, and the count says how many
    assert slow.dropped + len(kept) == published + 2  # + START and STOP notices
    seqs = [e.seq for e in kept if is_data(e)]
    if overflow is Overflow.DROP_OLDEST:
        assert kept[-1].action is StreamAction.STOP and seqs[-1] == published
    else:
        assert kept[0].action is StreamAction.START and seqs[:3] == [1, 2, 3]


def test_a_blocking_subscriber_holds_the_producer_up_to_its_deadline(rt: Runtime) -> None:
    with rt.stream(BOARD, maxsize=4, overflow=Overflow.BLOCK, block_timeout=2.0) as sub:
        start(rt, channels=["counter"])
        got = [sub.get(timeout=T) for _ in range(50)]
        # the producer waited for every free slot: nothing was lost in order
        assert [e.seq for e in got[1:]] == list(range(1, 50))
        assert sub.dropped == 0
        stop(rt)


def test_a_blocked_producer_drops_after_the_deadline_and_counts() -> None:
    bus = EventBus()
    hub_sub = bus.subscribe(maxsize=1, overflow=Overflow.BLOCK, block_timeout=0.05)
    writer = StreamWriter(board="b", bus=bus, stop=threading.Event())
    writer.publish("c", (1,), stream_type="t")
    writer.publish("c", (2,), stream_type="t")  # waits 50 ms, then drops
    assert hub_sub.dropped == 1
    assert hub_sub.get(timeout=T).data == (1,)
    hub_sub.close()


def test_start_refusals_change_nothing(rt: Runtime) -> None:
    manager = rt.manager
    with pytest.raises(InvalidArgumentError, match=r"no stream channel 'cosine'; valid: sine"):
        manager.execute_command("sim", "start", device_id=BOARD, args={"channels": ["cosine"]})
    with pytest.raises(InvalidArgumentError, match="interval must be >= 0"):
        manager.execute_command("sim", "start", device_id=BOARD, args={"interval": -1})
    assert rt.board_status(BOARD).state is DeviceState.CONNECTED
    start(rt, channels=["sine"], interval=0.001)
    with pytest.raises(InvalidArgumentError, match="a stream of sine is running; stop it first"):
        manager.execute_command("sim", "start", device_id=BOARD)
    assert rt.board_status(BOARD).state is DeviceState.ACTIVE
    stop(rt)
    assert stop(rt) == 0  # stopping nothing is harmless


def test_a_failing_loop_ends_with_an_error_notice_and_moves_the_board(rt: Runtime) -> None:
    with rt.stream(BOARD) as sub, rt.subscribe() as events:
        start(rt, channels=["counter"])
        sub.wait_for(lambda e: e.seq >= 5, timeout=T)
        rt.inject_fault(BOARD, "unplug")
        error = sub.wait_for(lambda e: e.action is StreamAction.ERROR, timeout=T)
        assert error.data[0] == "link_lost"
        # a link fault while streaming is a board fault: the board goes down
        events.wait_for(
            lambda e: getattr(e, "to_state", None) is DeviceState.DISCONNECTED, timeout=T
        )


def test_stopping_the_runtime_stops_the_stream(rt: Runtime) -> None:
    with rt.stream(BOARD) as sub:
        start(rt, channels=["counter"])
        sub.wait_for(lambda e: e.seq >= 5, timeout=T)
        rt.stop()  # the no_leaks fixture fails the test if the loop's thread lives on
        assert sub.wait_for(lambda e: e.action is StreamAction.STOP, timeout=T).data[0] >= 5


class _StubbornDriver:
    """A loop that ignores stop: stop must give up at its deadline, not hang."""

    stream_channels: ClassVar[dict[str, str]] = {"x": "never stops"}

    def __init__(self) -> None:
        self.release = threading.Event()
        self.cleaned = False

    def setup_acquisition(self, channels: Any, args: Any, *, timeout: float) -> None:
        pass

    def acquisition_loop(self, stream: StreamWriter) -> None:
        self.release.wait(T)

    def cleanup_acquisition(self) -> None:
        self.cleaned = True


def test_stop_of_a_loop_that_ignores_it_times_out() -> None:
    driver = _StubbornDriver()
    ended: list[Any] = []
    control = StreamControl(board="b", driver=driver, bus=EventBus(), on_end=ended.append)
    control.start({}, timeout=T)
    with pytest.raises(TimedOutError, match=r"did not stop within 0\.05 s"):
        control.stop(timeout=0.05)
    assert control.running and not driver.cleaned
    driver.release.set()
    control.stop(timeout=T)
    assert driver.cleaned and not control.running and ended == []


def test_a_plugin_bug_in_the_loop_is_reported_as_a_driver_error() -> None:
    class Buggy(_StubbornDriver):
        def acquisition_loop(self, stream: StreamWriter) -> None:
            raise KeyError("oops")

    bus = EventBus()
    ended = threading.Event()
    errors: list[Any] = []

    def on_end(error: Any) -> None:
        errors.append(error)
        ended.set()

    with bus.subscribe() as sub:
        control = StreamControl(board="b", driver=Buggy(), bus=bus, on_end=on_end)
        control.start({}, timeout=T)
        assert ended.wait(T)
        notice = sub.wait_for(lambda e: e.action is StreamAction.ERROR, timeout=T)
        control.stop(timeout=T)
    assert errors[0].code == "driver_error" and "KeyError('oops')" in str(errors[0])
    assert notice.data[0] == "driver_error"


def test_hub_is_one_per_runtime_and_refuses_bad_queues(tmp_path: Path) -> None:
    a, b = EventBus(), EventBus()
    assert StreamHub.of(a) is StreamHub.of(a) is not StreamHub.of(b)
    with pytest.raises(InvalidArgumentError, match="maxsize must be an int >= 1"):
        StreamHub.of(a).subscribe("x", maxsize=0)
    with pytest.raises(InvalidArgumentError, match="overflow must be an Overflow"):
        StreamHub.of(a).subscribe("x", overflow="drop")  # type: ignore[arg-type]
