"""The resource monitor on the simulated board: figures, unknowns, history, trends,
thresholds and the MemoryError event."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest

from actorhw import Runtime
from actorhw.core.errors import ActorHwError, InvalidArgumentError
from actorhw.core.lifecycle import DeviceState
from actorhw.core.messages import (
    ResourceStatusChanged,
    ResourceThresholdExceeded,
)
from actorhw.tree.asks import running_actors
from actorhw.tree.monitor import ResourceMonitorActor

pytestmark = pytest.mark.timeout(20)
WAIT = 5.0


@pytest.fixture
def rt() -> Iterator[Runtime]:
    with Runtime.start(boards=["microbit"]) as rt:
        yield rt


def test_status_comes_from_the_board_and_unknown_stays_none(rt: Runtime) -> None:
    ids = rt.ids("microbit")
    status = rt.monitor.status(ids.BOARD)
    memory = status.memory
    assert memory.total is not None and memory.used is not None and memory.free is not None
    assert memory.used + memory.free == memory.total
    assert memory.largest_free_block is not None and memory.largest_free_block <= memory.free
    # The sim, like the micro:bit, cannot tell its file system's size: unknown, not 0.
    assert status.storage.total is None and status.storage.free is None
    assert status.cpu.usage_percent is None


def test_sampling_leaves_no_owner_and_no_state_behind(rt: Runtime) -> None:
    """Issue 13 item 8: a monitored board is CONNECTED with no phantom owner."""
    ids = rt.ids("microbit")
    with rt.subscribe() as sub:
        rt.monitor.start(ids.BOARD, interval=0.02)
        sub.wait_for(lambda e: isinstance(e, ResourceStatusChanged), timeout=WAIT)
    rt.monitor.status(ids.BOARD)  # and one on demand
    info = rt.info(ids.BOARD)
    assert info.owners == () and info.owners_count == 0
    assert info.state is DeviceState.CONNECTED
    assert rt.board_status("microbit").state is DeviceState.CONNECTED
    rt.monitor.stop(ids.BOARD)


def test_only_boards_are_sampled(rt: Runtime) -> None:
    ids = rt.ids("microbit")
    with pytest.raises(InvalidArgumentError, match="BOARD"):
        rt.monitor.status(ids.PIN0)
    with pytest.raises(InvalidArgumentError, match="interval"):
        rt.monitor.start(ids.BOARD, interval=0)
    with pytest.raises(InvalidArgumentError, match=r"valid: memory\.total"):
        rt.monitor.set_threshold(ids.BOARD, "memory.bogus", 1)


def test_monitoring_fills_a_bounded_history_and_gives_a_trend(rt: Runtime) -> None:
    ids = rt.ids("microbit")
    with rt.subscribe() as sub:
        rt.monitor.start(ids.BOARD, interval=0.02)
        # Wait for samples through the event stream: the first one changes the level.
        sub.wait_for(lambda e: isinstance(e, ResourceStatusChanged), timeout=WAIT)
    for _ in range(200):
        if len(rt.monitor.history(ids.BOARD)) >= 4:
            break
        rt.monitor.status(ids.BOARD)  # each status is a sample too
    rt.monitor.stop(ids.BOARD)
    history = rt.monitor.history(ids.BOARD)
    assert len(history) >= 4
    assert [s.at for s in history] == sorted(s.at for s in history)
    assert rt.monitor.history(ids.BOARD, limit=2) == history[-2:]
    trend = rt.monitor.trend(ids.BOARD, "memory.used", window=3600)
    assert trend.samples == len(history) and trend.last == history[-1].memory.used
    # The sim's heap grows 256 bytes per sample: the rate is positive.
    assert trend.rate_per_s is not None and trend.rate_per_s > 0


def test_threshold_is_edge_triggered_and_changes_the_level(rt: Runtime) -> None:
    ids = rt.ids("microbit")
    first = rt.monitor.status(ids.BOARD)
    assert first.memory.used is not None
    rt.monitor.set_threshold(ids.BOARD, "memory.used", first.memory.used)  # next is above
    with rt.subscribe() as sub:
        second = rt.monitor.status(ids.BOARD)
        third = rt.monitor.status(ids.BOARD)
        events = sub.drain()
    exceeded = [e for e in events if isinstance(e, ResourceThresholdExceeded)]
    assert len(exceeded) == 1, events  # one event per crossing, not per sample
    assert exceeded[0].value == second.memory.used and exceeded[0].threshold == first.memory.used
    assert third.memory.used is not None and third.memory.used > first.memory.used
    (changed,) = [e for e in events if isinstance(e, ResourceStatusChanged)]
    assert changed.to_level == "exceeded" and "memory.used" in changed.reason


def test_a_memory_error_on_the_board_is_a_threshold_event(rt: Runtime) -> None:
    ids = rt.ids("microbit")
    with rt.subscribe() as sub:
        rt.monitor.observe_error(
            ids.BOARD, "MemoryError", "memory allocation failed, allocating 100000 bytes"
        )
        rt.monitor.observe_error(ids.BOARD, "ValueError", "not memory")
        event = sub.wait_for(lambda e: isinstance(e, ResourceThresholdExceeded), timeout=WAIT)
    assert event.metric == "memory.error" and event.value == 100000


def test_an_unplugged_board_is_unreachable(rt: Runtime) -> None:
    ids = rt.ids("microbit")
    rt.monitor.status(ids.BOARD)
    with rt.subscribe() as sub:
        rt.inject_fault("microbit", "unplug")
        with pytest.raises(ActorHwError, match=r"unplugged|unavailable|cannot"):
            rt.monitor.status(ids.BOARD)
        event = sub.wait_for(
            lambda e: isinstance(e, ResourceStatusChanged) and e.to_level == "unreachable",
            timeout=WAIT,
        )
    assert event.device is ids.BOARD


def test_the_ticker_slows_down_again_when_fast_monitoring_stops(rt: Runtime) -> None:
    """A 20 ms watch makes the monitor tick every 5 ms; once it stops, the monitor ticks
    at its base rate again (before: 5 ms for the rest of the runtime's life, a message
    and a session reap each, about 60 ms of CPU per second with nothing monitored)."""
    ids = rt.ids("microbit")
    [actor] = [
        a for r in running_actors() if isinstance(a := r._actor_weakref(), ResourceMonitorActor)
    ]
    base = actor._tick_s
    rt.monitor.start(ids.BOARD, interval=0.4)
    assert actor._tick_s == pytest.approx(0.1)
    rt.monitor.start(ids.BOARD, interval=0.02)
    assert actor._tick_s == pytest.approx(0.005)
    rt.monitor.stop(ids.BOARD)
    assert actor._tick_s == base


def test_start_samples_at_once_and_next_an_interval_later(rt: Runtime) -> None:
    """start() samples the board at once, so its next sample is due an interval later
    (before: due at once, and the next tick sampled the board a second time within a
    tick of the first; 1 Hz monitoring ran about 1.3 samples a second per board over
    3 s windows)."""
    ids = rt.ids("microbit")
    [actor] = [
        a for r in running_actors() if isinstance(a := r._actor_weakref(), ResourceMonitorActor)
    ]
    before = time.monotonic()
    rt.monitor.start(ids.BOARD, interval=1.0)
    assert actor._watches[ids.BOARD].due >= before + 1.0
    rt.monitor.stop(ids.BOARD)
