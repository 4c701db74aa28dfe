"""AsyncSubscription: an event subscription of the asyncio facade, woken by publishers."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from typing import Any, Final, Self

from actorhw.api.aio_calls import ClosingOnExit, check_timeout
from actorhw.core.errors import TimedOutError
from actorhw.core.events import Subscription

__all__ = ["AsyncSubscription"]

#: What `Subscription.poll` answers when no event is queued.
_NONE: Final = object()


class AsyncSubscription(ClosingOnExit):
    """An event subscription for asyncio: ``await get(timeout=...)`` or ``async for``.

    Events stay in the bounded `Subscription` until the loop takes them, so the
    subscription's own overflow policy decides what a slow consumer loses.  No thread
    of its own: a reader finds a queued event at once; one that waits is woken by the
    publisher's thread with one ``call_soon_threadsafe`` for however many events come
    before the loop runs it (the subscription's waker does nothing while no reader
    waits).  ``async for`` ends when the subscription is closed (also by
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
        self._closed = False
        self._loop: asyncio.AbstractEventLoop | None = None
        self._waiters: list[asyncio.Future[None]] = []
        self._armed = False  # a reader waits: the next event or the close wakes the loop

    @property
    def dropped(self) -> int:
        """Events this subscriber lost to its overflow policy."""
        return self.subscription.dropped

    @property
    def closed(self) -> bool:
        """Whether `aclose()` was called."""
        return self._closed

    def _wake(self) -> None:
        """The subscription's waker (a publisher's thread): an event came, or the end."""
        if not self._armed:
            return
        self._armed = False
        loop = self._loop
        if loop is not None:
            with contextlib.suppress(RuntimeError):  # the loop closed: nobody waits
                loop.call_soon_threadsafe(self._ready)

    def _ready(self) -> None:
        """In the loop: let every waiting reader look again."""
        waiters, self._waiters = self._waiters, []
        for waiter in waiters:
            if not waiter.done():
                waiter.set_result(None)

    async def get(self, *, timeout: float) -> Any:
        """The next event; TimedOutError if none comes within ``timeout`` s, or if the
        subscription is closed."""
        t = check_timeout(timeout)
        sub = self.subscription
        loop = asyncio.get_running_loop()
        if self._loop is not loop:
            self._loop = loop
            sub.waker = self._wake
        deadline = loop.time() + t
        while True:
            if self._closed:
                raise TimedOutError("subscription closed", timeout=t)
            event = sub.poll(_NONE)
            if event is not _NONE:
                return event
            if sub.closed:
                raise TimedOutError("subscription closed", timeout=t)
            waiter: asyncio.Future[None] = loop.create_future()
            self._waiters.append(waiter)
            self._armed = True
            if sub.queued or sub.closed:  # came before the waker was armed: look again
                self._armed = False
                waiter.cancel()
                self._waiters.remove(waiter)
                continue
            try:
                async with asyncio.timeout_at(deadline):
                    await waiter
            except TimeoutError:
                raise TimedOutError(f"no event within {t:.3g} s", timeout=t) from None
            finally:
                if waiter in self._waiters:
                    self._waiters.remove(waiter)

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
        """Stop receiving; readers waiting now end with TimedOutError. Safe twice.
        (``timeout``: kept for callers; no thread is left to wait for.)"""
        del timeout
        self._closed = True
        self.subscription.close()
        if self._on_close is not None:
            self._on_close(self)
        self._ready()
