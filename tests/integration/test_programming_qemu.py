"""Device programming on the real micro:bit firmware in QEMU.

Every behaviour is observed on the board itself, through a second lease of the shared
BOARD device (the "observer"): setups set board globals, the cached task counts its
runs in a board global, exclusive calls leave start/end marks in a board list, the
background loop ticks a board counter, the teardown writes a global and a file.
"""

from __future__ import annotations

import ast
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest

from actorhw import Board, DeviceId, Runtime
from actorhw.core.errors import DeviceExceptionError, ResultParseError, TimedOutError
from actorhw.core.messages import BoardEvent
from actorhw.links import qemu_available
from actorhw.programming import MicroPythonDevice, background, setup, task, teardown

pytestmark = [pytest.mark.qemu, pytest.mark.timeout(60)]

BOARD = "microbit-qemu"
WAIT = 20.0


class Probe(MicroPythonDevice):
    """Small on purpose: the firmware has about 10 KB of heap."""

    @setup(priority=2)
    def second(self):
        order.append(2)

    @setup(priority=1)
    def first(self):
        global order, hits, marks, ticks
        order = [1]
        hits = 0
        marks = []
        ticks = 0

    @task(cache_ms=60_000)
    def cached(self) -> int:
        global hits
        hits += 1
        return hits

    @task(exclusive=True)
    def excl(self, who: str, n: int) -> int:
        marks.append(who + "<")
        x = 0
        for i in range(n):
            x += i
        marks.append(who + ">")
        return x

    @task
    def tick(self) -> int:
        global ticks
        ticks += 1
        return ticks

    @task(timeout_ms=500)
    def spin(self) -> None:
        while True:
            pass

    @task
    def weird(self):
        return object()

    @task
    def div(self, a, b):
        return a / b

    @teardown
    def bye(self):
        global td
        td = "done"
        with open("td.txt", "w") as f:
            f.write("bye")


class Marks(MicroPythonDevice):
    """Only what the exclusivity test needs: Probe's many definitions, a file-writing
    teardown and a growing list leave the 10 KB heap too fragmented to parse reliably."""

    @setup
    def init(self):
        global marks
        marks = []

    @task(exclusive=True)
    def excl(self, who: str, n: int) -> int:
        marks.append(who + "<")
        x = 0
        for i in range(n):
            x += i
        marks.append(who + ">")
        return x


class Watcher(Probe):
    @background(interval_ms=20)
    def watch(self) -> None:
        self.tick()


@pytest.fixture
def rt() -> Iterator[Runtime]:
    reason = qemu_available()
    if reason is not None:
        pytest.fail(f"QEMU micro:bit is required for this test: {reason}", pytrace=False)
    runtime = Runtime.start(boards=[BOARD], timeout=30.0)
    try:
        yield runtime
    finally:
        runtime.stop()


@pytest.fixture
def ids(rt: Runtime) -> type[DeviceId]:
    return rt.ids(BOARD)


@pytest.fixture
def observer(rt: Runtime, ids: Any) -> Iterator[Board]:
    """A second lease of the (shared) BOARD, to look at the board independently."""
    with rt.lease(Board, ids.BOARD, owner="observer") as board:
        yield board


def _recovered(event: object) -> bool:
    return isinstance(event, BoardEvent) and event.what == "recovered"


def on_board(observer: Board, expression: str) -> Any:
    return ast.literal_eval(observer.exec(f"print(repr({expression}))", timeout=5.0).strip())


def test_setups_run_on_the_board_lowest_priority_first(
    rt: Runtime, ids: Any, observer: Board
) -> None:
    with Probe(rt, ids.BOARD, owner="lab") as dev:
        assert on_board(observer, "order") == [1, 2]
        assert dev.syncs == 1


def test_cached_task_does_not_run_again_within_cache_ms(
    rt: Runtime, ids: Any, observer: Board
) -> None:
    with Probe(rt, ids.BOARD, owner="lab") as dev:
        assert dev.cached() == 1
        assert dev.cached() == 1
        assert on_board(observer, "hits") == 1  # the board-side counter did not move
        dev.clear_cache()
        assert dev.cached() == 2
        assert on_board(observer, "hits") == 2


def test_definitions_are_sent_once_per_connection(rt: Runtime, ids: Any, observer: Board) -> None:
    with Probe(rt, ids.BOARD, owner="lab") as dev:
        for n in range(1, 6):
            assert dev.tick() == n
        assert dev.syncs == 1
        # A soft reboot the runtime cannot see: every board global is gone.
        observer.exec(
            "for k in list(globals()):\n if k != '__name__':\n  del globals()[k]",
            timeout=5.0,
        )
        assert on_board(observer, "globals().get('ticks')") is None
        assert dev.tick() == 1  # definitions re-sent and setups re-run, then retried once
        assert dev.syncs == 2
        assert on_board(observer, "order") == [1, 2]


def test_exclusive_calls_do_not_interleave(rt: Runtime, ids: Any, observer: Board) -> None:
    with Marks(rt, ids.BOARD, owner="lab") as dev:
        errors: list[BaseException] = []

        def work(who: str) -> None:
            try:
                for _ in range(5):
                    dev.excl(who, 300)
            except BaseException as e:
                errors.append(e)

        threads = [threading.Thread(target=work, args=(w,)) for w in "ab"]
        for t in threads:
            t.start()
        for t in threads:
            t.join(WAIT)
        assert errors == []
        marks = on_board(observer, "marks")
        assert len(marks) == 20
        for i in range(0, 20, 2):
            assert marks[i][1] == "<"
            assert marks[i + 1] == marks[i][0] + ">"
        assert {m[0] for m in marks} == {"a", "b"}


def test_background_loop_ticks_on_the_board_until_close(
    rt: Runtime, ids: Any, observer: Board
) -> None:
    dev = Watcher(rt, ids.BOARD, owner="lab")
    try:
        assert dev.wait_background("watch", runs=5, timeout=WAIT)
    finally:
        dev.close()
    status = dev.background_status()["watch"]
    assert not status.alive
    assert not [t for t in threading.enumerate() if t.name.startswith("actorhw-bg-")]
    assert status.errors == 0
    ticks = on_board(observer, "ticks")
    assert ticks == status.runs >= 5  # every run reached the board, none after close
    assert on_board(observer, "ticks") == ticks


def test_background_errors_are_counted_and_the_loop_survives(rt: Runtime, ids: Any) -> None:
    class Failing(Probe):
        @background(interval_ms=10)
        def watch(self) -> None:
            if self.tick() % 2:
                self.div(1, 0)

    with Failing(rt, ids.BOARD, owner="lab") as dev:
        assert dev.wait_background("watch", runs=4, timeout=WAIT)
        status = dev.background_status()["watch"]
        assert status.alive
        assert status.errors >= 2
        assert isinstance(status.last_error, DeviceExceptionError)
        assert status.last_error.exc_name == "ZeroDivisionError"


def test_teardown_runs_on_close(rt: Runtime, ids: Any, observer: Board) -> None:
    with Probe(rt, ids.BOARD, owner="lab"):
        assert on_board(observer, "globals().get('td')") is None
    assert on_board(observer, "td") == "done"
    assert on_board(observer, "open('td.txt').read()") == "bye"


def test_timeout_interrupts_the_board_and_it_is_usable_after(rt: Runtime, ids: Any) -> None:
    with rt.subscribe() as events, Probe(rt, ids.BOARD, owner="lab") as dev:
        assert dev.tick() == 1
        started = time.monotonic()
        with pytest.raises(TimedOutError):
            dev.spin()
        assert time.monotonic() - started < 5.0
        # The board answered Ctrl-C: not a fault, no recovery, the board's state is kept.
        assert dev.tick() == 2
        assert dev.syncs == 1
        assert not [e for e in events.drain() if isinstance(e, BoardEvent)]


def test_unplug_and_recovery_rerun_definitions_and_setups_before_connected(
    rt: Runtime, ids: Any, observer: Board
) -> None:
    with rt.subscribe() as events, Watcher(rt, ids.BOARD, owner="lab") as dev:
        assert dev.wait_background("watch", runs=2, timeout=WAIT)
        rt.inject_fault(BOARD, "unplug")  # QEMU killed: a fresh firmware boots
        events.wait_for(_recovered, timeout=WAIT)
        # The board ran the class's connect script before it was CONNECTED again: the
        # first exec anyone can make on the new firmware already sees the setups' work.
        observer.open()  # its lease predates the reset: reopen, as the error says
        assert on_board(observer, "order") == [1, 2]
        runs = dev.background_status()["watch"].runs
        assert dev.wait_background("watch", runs=runs + 3, timeout=WAIT)
        assert dev.syncs == 1  # the host found its definitions there and sent nothing
        assert dev.exec("print(order)") == "[1, 2]\n"  # the setups ran on the new firmware
        assert dev.tick() >= 2  # at least one loop tick reached the new firmware
        assert dev.background_status()["watch"].alive


def test_a_result_that_is_not_a_literal_raises(rt: Runtime, ids: Any) -> None:
    with Probe(rt, ids.BOARD, owner="lab") as dev:
        with pytest.raises(ResultParseError) as e:
            dev.weird()
        assert "<object>" in e.value.text
        assert dev.tick() == 1


def test_batch_with_one_failing_call(rt: Runtime, ids: Any, observer: Board) -> None:
    with Probe(rt, ids.BOARD, owner="lab") as dev:
        outcomes = dev.batch([(dev.tick, ()), (dev.div, (1, 0)), (dev.div, (1, 4)), (dev.tick, ())])
        assert [o.ok for o in outcomes] == [True, False, True, True]
        assert outcomes[0].result() == 1
        assert outcomes[2].result() == 0.25
        assert outcomes[3].result() == 2
        error = outcomes[1].error
        assert isinstance(error, DeviceExceptionError)
        assert error.exc_name == "ZeroDivisionError"
        with pytest.raises(DeviceExceptionError):
            outcomes[1].result()
        assert on_board(observer, "ticks") == 2


def test_runtime_stop_ends_the_background_loop(rt: Runtime, ids: Any) -> None:
    dev = Watcher(rt, ids.BOARD, owner="lab")
    assert dev.wait_background("watch", runs=2, timeout=WAIT)
    rt.stop()
    try:
        dev.close()  # teardowns ran at stop (runtime hook), or could not run at all
    except Exception as e:
        assert "did not run" in str(e)
    assert not dev.background_status()["watch"].alive
