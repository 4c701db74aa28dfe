"""actorhw.aio: awaitable Runtime calls for services, on the simulated boards."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import pytest

from actorhw import DeviceState, Runtime, StateChanged
from actorhw.api.aio import AWAIT_GRACE, AsyncRuntime
from actorhw.core.errors import (
    DeviceBusyError,
    InvalidArgumentError,
    NoSuchBoardError,
    NoSuchDeviceError,
    RuntimeStoppedError,
    TimedOutError,
    UnsupportedOperationError,
    WrongKindError,
)
from actorhw.core.events import Overflow
from actorhw.core.ids import DeviceId
from actorhw.core.messages import DeviceInfo, Lease, StreamAction

pytestmark = pytest.mark.timeout(30)

T = TypeVar("T")
BOARDS = ["same70-xplained", "microbit"]


def run(main: Callable[[], Awaitable[T]]) -> T:
    """Run ``main`` on a fresh loop, with an overall deadline."""

    async def bounded() -> T:
        return await asyncio.wait_for(main(), 20)

    return asyncio.run(bounded())


def is_state(device: DeviceId, to: DeviceState) -> Callable[[Any], bool]:
    return lambda e: isinstance(e, StateChanged) and e.device is device and e.to_state is to


def test_lease_use_and_events_then_stop_releases_everything() -> None:
    async def main() -> None:
        async with AsyncRuntime.start(boards=BOARDS, timeout=10) as art:
            same70 = await art.ids("same70-xplained")
            async with art.subscribe() as events:
                async with art.lease(same70.LED_GREEN, owner="web") as led:
                    assert await led.use("toggle") is True
                    opened = await events.wait_for(
                        is_state(same70.LED_GREEN, DeviceState.ACTIVE), timeout=5
                    )
                    assert opened.reason == "opened by web"
                    info = await led.info()
                    assert info.owners == ("web",)
                    assert info.state is DeviceState.ACTIVE
                await events.wait_for(is_state(same70.LED_GREEN, DeviceState.CONNECTED), timeout=5)
                after = await art.info(same70.LED_GREEN)
                assert after.owners_count == 0
            devices = await art.devices("same70-xplained")
            assert {d.device for d in devices} == set(same70)
            assert all(isinstance(d, DeviceInfo) for d in devices)
            rt = art.runtime
        assert not rt.running
        assert not art.running

    run(main)


def test_explicit_calls_by_lease() -> None:
    async def main() -> None:
        art = await AsyncRuntime.start(boards=BOARDS, timeout=10)
        try:
            same70 = await art.ids("same70-xplained")
            lease = await art.acquire(same70.UART0, owner="a")
            assert isinstance(lease, Lease)
            opened = await art.open(lease)
            assert opened.state is DeviceState.ACTIVE
            assert await art.use(lease, "write", (b"ping",)) == 4
            assert await art.use(lease, "read", (4,)) == b"ping"
            closed = await art.close(lease)
            assert closed.state is DeviceState.CONNECTED
            assert await art.release(lease) == 0
            statuses = await art.boards()
            assert sorted(s.board for s in statuses) == sorted(BOARDS)
            assert await art.device_id("same70-xplained.UART0") is same70.UART0
        finally:
            await art.stop()

    run(main)


def test_typed_errors_cross_the_await() -> None:
    async def main() -> None:
        async with AsyncRuntime.start(boards=BOARDS, timeout=10) as art:
            same70 = await art.ids("same70-xplained")
            microbit = await art.ids("microbit")
            async with art.lease(same70.UART0, owner="first"):
                with pytest.raises(DeviceBusyError) as busy:
                    async with art.lease(same70.UART0, owner="second"):
                        pytest.fail("a SINGLE device leased twice")
                assert list(busy.value.owners) == ["first"]
            with pytest.raises(UnsupportedOperationError, match="does not run code"):
                await art.exec(microbit.BOARD, "print(1)")
            with pytest.raises(WrongKindError):
                await art.exec(same70.UART0, "print(1)")
            with pytest.raises(NoSuchDeviceError, match="UART0"):
                await art.device_id("same70-xplained.NOPE")
            with pytest.raises(InvalidArgumentError, match="timeout"):
                await art.info(same70.UART0, timeout=0)
            with pytest.raises(InvalidArgumentError, match="code"):
                await art.exec(microbit.BOARD, b"print(1)")  # type: ignore[arg-type]
            # the refused lease left nothing behind
            assert (await art.info(microbit.BOARD)).owners_count == 0
            assert (await art.info(same70.UART0)).owners_count == 0
        with pytest.raises(RuntimeStoppedError):
            await art.info(same70.UART0)
        with pytest.raises(RuntimeStoppedError):
            art.subscribe()

    run(main)


def test_info_of_an_idle_device_is_answered_in_the_loops_thread() -> None:
    async def main() -> None:
        async with AsyncRuntime.start(boards=BOARDS, timeout=10) as art:
            same70 = await art.ids("same70-xplained")
            first = await art.info(same70.UART0)  # the route is found on a worker
            workers: list[str] = []
            submit = art.workers.submit

            def counted(what: str, *args: Any, **kwargs: Any) -> Any:
                workers.append(what)
                return submit(what, *args, **kwargs)

            art.workers.submit = counted  # type: ignore[method-assign]
            async with art.lease(same70.UART0, owner="reader"):
                workers.clear()
                held = await art.info(same70.UART0)
                assert held.owners == ("reader",) and held.state is DeviceState.ACTIVE
                assert workers == []  # no hand-off: the idle actor answered on the loop
            assert (await art.info(same70.UART0)) == first
            assert workers == ["release"]  # the lease's, not info's

    run(main)


class CountingRuntime(Runtime):
    """A Runtime whose info() is its own: the facade must call it, never around it."""

    infos = 0

    def info(self, device: DeviceId, *, timeout: float = 5.0) -> DeviceInfo:
        type(self).infos += 1
        return super().info(device, timeout=timeout)


def test_a_runtime_subclass_s_own_info_is_called() -> None:
    async def main() -> None:
        rt = CountingRuntime.start(boards=BOARDS, timeout=10)
        async with AsyncRuntime(rt, timeout=5) as art:
            same70 = await art.ids("same70-xplained")
            for _ in range(3):
                await art.info(same70.UART0)
            assert CountingRuntime.infos == 3

    run(main)


class GatedRuntime(Runtime):
    """A Runtime whose info() and open() wait for a gate: a stand-in for a slow board."""

    gate = threading.Event()
    entered = threading.Event()

    def info(self, device: DeviceId, *, timeout: float = 5.0) -> DeviceInfo:
        self.entered.set()
        self.gate.wait(timeout=10)
        return super().info(device, timeout=timeout)

    def open(self, lease: Lease, *, timeout: float = 5.0) -> DeviceInfo:
        self.entered.set()
        self.gate.wait(timeout=10)
        return super().open(lease, timeout=timeout)


@pytest.fixture
def gated() -> GatedRuntime:
    GatedRuntime.gate = threading.Event()
    GatedRuntime.entered = threading.Event()
    return GatedRuntime.start(boards=BOARDS, timeout=10)  # type: ignore[return-value]


def test_every_await_has_a_deadline_and_the_loop_stays_free(gated: GatedRuntime) -> None:
    async def main() -> None:
        art = AsyncRuntime(gated, timeout=0.2)
        try:
            same70 = await art.ids("same70-xplained")
            ticks = 0

            async def ticker() -> None:
                nonlocal ticks
                while True:
                    ticks += 1
                    await asyncio.sleep(0.01)

            tick_task = asyncio.create_task(ticker())
            loop = asyncio.get_running_loop()
            started = loop.time()
            with pytest.raises(TimedOutError) as timed_out:
                await art.info(same70.UART0)
            waited = loop.time() - started
            tick_task.cancel()
            assert timed_out.value.operation == "info"
            assert 0.2 <= waited < 0.2 + AWAIT_GRACE + 1.0
            assert ticks >= 5, "the event loop was blocked during the call"
        finally:
            gated.gate.set()
            await art.stop()

    run(main)


def test_cancelled_lease_entry_gives_the_lease_back(gated: GatedRuntime) -> None:
    async def main() -> None:
        art = AsyncRuntime(gated)
        try:
            same70 = await art.ids("same70-xplained")
            async with art.subscribe() as events:

                async def hold() -> None:
                    async with art.lease(same70.UART0, owner="impatient"):
                        pytest.fail("the lease should not be entered")

                task = asyncio.create_task(hold())
                loop = asyncio.get_running_loop()
                assert await loop.run_in_executor(None, gated.entered.wait, 5)
                task.cancel()
                with pytest.raises(asyncio.CancelledError):
                    await task
                gated.gate.set()  # the open completes after the caller left
                await events.wait_for(is_state(same70.UART0, DeviceState.ACTIVE), timeout=5)
                await events.wait_for(is_state(same70.UART0, DeviceState.CONNECTED), timeout=5)
            info = await art.info(same70.UART0)
            assert info.owners_count == 0
        finally:
            gated.gate.set()
            await art.stop()

    run(main)


def test_stop_runs_callbacks_off_the_loop() -> None:
    async def main() -> None:
        art = await AsyncRuntime.start(boards=BOARDS, timeout=10)
        loop = asyncio.get_running_loop()
        called = asyncio.Event()
        go_on = threading.Event()
        seen: list[bool] = []

        def teardown() -> None:
            loop.call_soon_threadsafe(called.set)
            # Only a free loop can set go_on: this proves stop() did not block it.
            seen.append(go_on.wait(timeout=5))
            seen.append(threading.current_thread() is not threading.main_thread())

        art.on_stop(teardown)
        stopping = asyncio.create_task(art.stop())
        await asyncio.wait_for(called.wait(), 5)
        go_on.set()
        await stopping
        assert seen == [True, True]
        await art.stop()  # twice is fine

    run(main)


def test_subscription_iterates_until_closed_and_counts_drops() -> None:
    async def main() -> None:
        async with AsyncRuntime.start(boards=BOARDS, timeout=10) as art:
            same70 = await art.ids("same70-xplained")
            events = art.subscribe()
            got: list[Any] = []
            first = asyncio.Event()

            async def consume() -> None:
                async for event in events:
                    got.append(event)
                    first.set()

            consumer = asyncio.create_task(consume())
            async with art.lease(same70.LED_GREEN, owner="x"):
                await asyncio.wait_for(first.wait(), 5)
            await events.aclose()
            await asyncio.wait_for(consumer, 5)  # async for ended on close
            assert any(is_state(same70.LED_GREEN, DeviceState.ACTIVE)(e) for e in got)
            assert events.closed

            tiny = art.subscribe(maxsize=1, overflow=Overflow.DROP_NEWEST)
            async with art.lease(same70.LED_GREEN, owner="y"):
                pass  # ACTIVE then CONNECTED: two events into a queue of one
            # nobody read yet, so the pump had not started: the second was dropped
            assert tiny.dropped >= 1
            await tiny.get(timeout=5)
            with pytest.raises(TimedOutError):
                await tiny.get(timeout=0.05)
            # stop() closes subscriptions still open
        assert tiny.closed

    run(main)


def test_stream_data_and_commands() -> None:
    async def main() -> None:
        async with AsyncRuntime.start(boards=BOARDS, timeout=10) as art:
            async with art.stream("same70-xplained", maxsize=64) as stream:
                started = await art.command(
                    "same70-xplained", "start", {"channels": ["counter"], "interval": 0.001}
                )
                assert started["status"] == "success"
                data = []
                while len(data) < 3:
                    message = await stream.get(timeout=5)
                    if message.action is StreamAction.DATA:
                        data.append(message)
                assert [m.channel for m in data] == ["same70-xplained.counter"] * 3
                stopped = await art.command("same70-xplained", "stop")
                assert stopped["result"]["published"] >= 3
            with pytest.raises(UnsupportedOperationError, match="supported: "):
                await art.command("same70-xplained", "nope")
            with pytest.raises(NoSuchBoardError):
                art.stream("no-such-board")

    run(main)
