"""AsyncSubscription without a thread of its own: events wait in the bounded
Subscription until the loop takes them, and a waiting reader is woken by the publisher
with one call_soon_threadsafe per batch."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import pytest

from actorhw.api.aio_events import AsyncSubscription
from actorhw.core.errors import TimedOutError
from actorhw.core.events import EventBus, Overflow

pytestmark = pytest.mark.timeout(30)

T = TypeVar("T")


def run(main: Callable[[], Awaitable[T]]) -> T:
    async def bounded() -> T:
        return await asyncio.wait_for(main(), 20)

    return asyncio.run(bounded())


def _counting(loop: asyncio.AbstractEventLoop) -> list[int]:
    """Count the loop's call_soon_threadsafe calls."""
    calls: list[int] = []
    real = loop.call_soon_threadsafe

    def counted(*args: Any, **kwargs: Any) -> Any:
        calls.append(1)
        return real(*args, **kwargs)

    loop.call_soon_threadsafe = counted  # type: ignore[method-assign]
    return calls


def test_events_queued_while_no_one_waits_cost_no_wake_up_and_no_thread() -> None:
    async def main() -> None:
        bus = EventBus()
        threads = threading.active_count()
        sub = AsyncSubscription(bus.subscribe())
        calls = _counting(asyncio.get_running_loop())
        with pytest.raises(TimedOutError):
            await sub.get(timeout=0.01)  # arms the waker once, then times out
        calls.clear()
        publisher = threading.Thread(target=lambda: [bus.publish(i) for i in range(100)])
        publisher.start()
        publisher.join()
        assert [await sub.get(timeout=1) for _ in range(100)] == list(range(100))
        assert len(calls) <= 1  # at most the one armed by the timed-out get
        assert threading.active_count() == threads
        await sub.aclose()

    run(main)


def test_a_waiting_reader_is_woken_once_for_a_burst() -> None:
    async def main() -> None:
        bus = EventBus()
        sub = AsyncSubscription(bus.subscribe())
        calls = _counting(asyncio.get_running_loop())
        burst = threading.Event()

        def publish() -> None:
            burst.wait(5)
            for i in range(50):
                bus.publish(i)

        publisher = threading.Thread(target=publish)
        publisher.start()
        reader = asyncio.ensure_future(sub.get(timeout=5))
        await asyncio.sleep(0)  # the reader waits now
        burst.set()
        assert await reader == 0
        await asyncio.to_thread(publisher.join, 5)
        calls_then = len(calls)
        assert [await sub.get(timeout=1) for _ in range(49)] == list(range(1, 50))
        assert calls_then <= 2  # the burst's wake-up (+ to_thread's answer), not 50
        await sub.aclose()

    run(main)


def test_concurrent_readers_each_get_an_event_and_close_ends_waiters() -> None:
    async def main() -> None:
        bus = EventBus()
        sub = AsyncSubscription(bus.subscribe())
        readers = [asyncio.ensure_future(sub.get(timeout=5)) for _ in range(2)]
        await asyncio.sleep(0)
        await asyncio.to_thread(lambda: (bus.publish("a"), bus.publish("b")))
        assert sorted(await asyncio.gather(*readers)) == ["a", "b"]
        waiting = asyncio.ensure_future(sub.get(timeout=5))
        await asyncio.sleep(0)
        loop = asyncio.get_running_loop()
        started = loop.time()
        await sub.aclose()
        with pytest.raises(TimedOutError, match="closed"):
            await waiting
        assert loop.time() - started < 1.0
        with pytest.raises(TimedOutError, match="closed"):
            await sub.get(timeout=1)

    run(main)


def test_a_slow_reader_loses_events_by_the_subscription_s_policy_exactly() -> None:
    async def main() -> None:
        bus = EventBus()
        sub = AsyncSubscription(bus.subscribe(maxsize=2, overflow=Overflow.DROP_OLDEST))
        for i in range(5):
            bus.publish(i)
        assert sub.dropped == 3
        assert [await sub.get(timeout=1) for _ in range(2)] == [3, 4]
        await sub.aclose()

    run(main)
