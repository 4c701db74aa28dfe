"""AsyncSubscription: an event subscription of the asyncio facade, fed by a pump thread."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import threading
from collections.abc import Callable
from typing import Any, Final, Self

from actorhw.api.aio_calls import ClosingOnExit, check_timeout
from actorhw.core.errors import TimedOutError
from actorhw.core.events import Subscription

__all__ = ["AsyncSubscription"]

#: Slice of the event pump's waits, so closing a subscription ends its thread promptly.
_PUMP_SLICE: Final = 0.1

_pump_ids = itertools.count(1)

#: What the pump puts last on the loop's queue: the subscription ended.
_END: Final = object()


class AsyncSubscription(ClosingOnExit):
    """An event subscription for asyncio: ``await get(timeout=...)`` or ``async for``.

    A pump thread (started at the first read) moves events from the bounded
    `Subscription` to the loop one at a time, so the
    subscription's own overflow policy still decides what a slow consumer loses.
    ``async for`` ends when the subscription is closed (also by
    `AsyncRuntime.stop()`); to bound each wait, use `get()`.
    """

    def __init__(
        self,
        subscription: Subscription,
        *,
        on_close: Callable[[AsyncSubscription], None] | None = None,
    ) -> None:
        self.subscription = subscription
        self._on_close = on_close
        self._queue: asyncio.Queue[Any] | None = None
        self._thread: threading.Thread | None = None
        self._closing = threading.Event()
        self._room = threading.Semaphore(1)

    @property
    def dropped(self) -> int:
        """Events this subscriber lost to its overflow policy."""
        return self.subscription.dropped

    @property
    def closed(self) -> bool:
        """Whether `aclose()` was called."""
        return self._closing.is_set()

    def _start(self) -> asyncio.Queue[Any]:
        if self._queue is None:
            loop = asyncio.get_running_loop()
            self._queue = asyncio.Queue()
            self._thread = threading.Thread(
                target=self._pump,
                args=(loop, self._queue),
                name=f"actorhw-aio-events-{next(_pump_ids)}",
                daemon=True,
            )
            self._thread.start()
        return self._queue

    def _pump(self, loop: asyncio.AbstractEventLoop, queue: asyncio.Queue[Any]) -> None:
        sub = self.subscription
        try:
            while not self._closing.is_set() and not loop.is_closed():
                # One event at a time on the loop side: the rest wait in ``sub``,
                # under its overflow policy.
                if not self._room.acquire(timeout=_PUMP_SLICE):
                    continue
                try:
                    event = sub.get(timeout=_PUMP_SLICE)
                except TimedOutError:
                    self._room.release()
                    if sub.closed:
                        break
                    continue
                loop.call_soon_threadsafe(queue.put_nowait, event)
        except RuntimeError:
            return  # the loop closed under us: nobody is left to read
        finally:
            with contextlib.suppress(RuntimeError):
                loop.call_soon_threadsafe(queue.put_nowait, _END)

    async def get(self, *, timeout: float) -> Any:
        """The next event; TimedOutError if none comes within ``timeout`` s, or if the
        subscription is closed."""
        t = check_timeout(timeout)
        if self.closed and (self._queue is None or self._queue.empty()):
            raise TimedOutError("subscription closed", timeout=t)
        queue = self._start()
        try:
            async with asyncio.timeout(t):
                event = await queue.get()
        except TimeoutError:
            raise TimedOutError(f"no event within {t:.3g} s", timeout=t) from None
        if event is _END:
            queue.put_nowait(_END)  # every later get ends too
            raise TimedOutError("subscription closed", timeout=t)
        self._room.release()
        return event

    async def wait_for(self, predicate: Callable[[Any], bool], *, timeout: float) -> Any:
        """The first event that satisfies ``predicate``, skipping others."""
        t = check_timeout(timeout)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + t
        while True:
            remaining = deadline - loop.time()
            if remaining <= 0:
                raise TimedOutError(f"no matching event within {t:.3g} s", timeout=t)
            event = await self.get(timeout=remaining)
            if predicate(event):
                return event

    def __aiter__(self) -> Self:
        return self

    async def __anext__(self) -> Any:
        # Each wait is bounded; the loop goes on until an event comes or we are closed.
        while not self.closed:
            try:
                return await self.get(timeout=1.0)
            except TimedOutError:
                continue
        raise StopAsyncIteration

    async def aclose(self, *, timeout: float = 2.0) -> None:
        """Stop receiving and end the pump thread (within ``timeout`` s). Safe twice."""
        self._closing.set()
        self.subscription.close()
        if self._on_close is not None:
            self._on_close(self)
        thread = self._thread
        if thread is not None and thread.is_alive():
            loop = asyncio.get_running_loop()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(loop.run_in_executor(None, thread.join, timeout), timeout)
