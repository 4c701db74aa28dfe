"""A subscribable stream of immutable events, with bounded subscriber queues.

Publishing never blocks the publisher unless a subscriber asked for BLOCK, and then only
up to that subscriber's deadline.  A subscriber that falls behind loses events by its
own policy and can see how many (``dropped``).
"""

from __future__ import annotations

import collections
import enum
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from typing import Any

from actorhw.core.errors import TimedOutError


class Overflow(enum.Enum):
    """What a full subscriber queue does with the next event."""

    DROP_OLDEST = "drop_oldest"
    DROP_NEWEST = "drop_newest"
    BLOCK = "block"
    """Block the publisher up to ``block_timeout`` s, then drop the event (counted)."""


class Subscription:
    """One subscriber's bounded queue. Iterate it, or call `get()`."""

    def __init__(
        self, bus: EventBus, *, maxsize: int, overflow: Overflow, block_timeout: float
    ) -> None:
        if maxsize < 1:
            raise ValueError("maxsize must be at least 1")
        self._bus = bus
        self._items: collections.deque[Any] = collections.deque()
        self._cond = threading.Condition()
        self.maxsize = maxsize
        self.overflow = overflow
        self.block_timeout = block_timeout
        self.dropped = 0
        self.delivered = 0
        self.closed = False
        self.waker: Callable[[], None] | None = None
        """Called (in the publisher's thread, outside the queue's lock) after each event
        is queued and when the subscription closes: a reader that does not block in
        `get` (an event loop) is woken by it, then takes events with `poll`."""

    def _offer(self, event: Any) -> None:
        with self._cond:
            queued = self._queue(event)
            waker = self.waker
        if queued and waker is not None:
            waker()

    def _offer_all(self, events: Sequence[Any]) -> None:
        """`_offer` of each of ``events`` in order, under one hold of the lock: a reader
        waiting in `get` is woken once for the batch (if there is room for all of it),
        not once per event."""
        with self._cond:
            items = self._items
            if len(items) + len(events) <= self.maxsize:
                items.extend(events)
                self._cond.notify_all()
                queued = bool(events)
            else:  # the policy decides event by event, as one `_offer` each
                queued = False
                for event in events:
                    queued |= self._queue(event)
            waker = self.waker
        if queued and waker is not None:
            waker()

    def _queue(self, event: Any) -> bool:
        """Queue ``event`` by the overflow policy (the lock held); False if dropped."""
        if len(self._items) >= self.maxsize:
            if self.overflow is Overflow.DROP_NEWEST:
                self.dropped += 1
                return False
            if self.overflow is Overflow.DROP_OLDEST:
                self._items.popleft()
                self.dropped += 1
            elif not self._cond.wait_for(
                lambda: len(self._items) < self.maxsize or self.closed, self.block_timeout
            ):
                self.dropped += 1
                return False
        self._items.append(event)
        self._cond.notify_all()
        return True

    def get(self, *, timeout: float) -> Any:
        """The next event; TimedOutError if none comes within ``timeout`` s."""
        with self._cond:
            if not self._cond.wait_for(lambda: self._items or self.closed, timeout):
                raise TimedOutError(f"no event within {timeout:.3g} s", timeout=timeout)
            if not self._items:
                raise TimedOutError("subscription closed", timeout=timeout)
            self.delivered += 1
            event = self._items.popleft()
            self._cond.notify_all()
            return event

    def get_nowait(self) -> Any | None:
        """The next event if one is queued, else None."""
        return self.poll(None)

    @property
    def queued(self) -> int:
        """Events waiting to be read now."""
        return len(self._items)

    def poll(self, default: Any = None) -> Any:
        """The next event if one is queued, else ``default`` (never waits)."""
        with self._cond:
            if not self._items:
                return default
            self.delivered += 1
            event = self._items.popleft()
            self._cond.notify_all()
            return event

    def drain(self) -> list[Any]:
        """Every queued event, at once."""
        with self._cond:
            items = list(self._items)
            self._items.clear()
            self.delivered += len(items)
            self._cond.notify_all()
            return items

    def wait_for(self, predicate: Callable[[Any], bool], *, timeout: float) -> Any:
        """The first event that satisfies ``predicate``, skipping others."""
        return self.until(predicate, timeout=timeout)[-1]

    def until(self, predicate: Callable[[Any], bool], *, timeout: float) -> list[Any]:
        """Every event up to and including the first that satisfies ``predicate``."""
        deadline = time.monotonic() + timeout
        seen = []
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TimedOutError(f"no matching event within {timeout:.3g} s", timeout=timeout)
            seen.append(self.get(timeout=remaining))
            if predicate(seen[-1]):
                return seen

    def close(self) -> None:
        """Stop receiving; wakes a blocked publisher and a waiting reader."""
        self._bus._unsubscribe(self)
        with self._cond:
            self.closed = True
            self._cond.notify_all()
            waker = self.waker
        if waker is not None:
            waker()

    def __iter__(self) -> Iterator[Any]:
        while True:
            with self._cond:
                self._cond.wait_for(lambda: self._items or self.closed)
                if not self._items:
                    return
            item = self.get_nowait()
            if item is not None:
                yield item

    def __enter__(self) -> Subscription:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class EventBus:
    """Fan-out of events to subscriptions; any thread may publish or subscribe."""

    def __init__(self) -> None:
        self._subscribers: tuple[Subscription, ...] = ()
        self._lock = threading.Lock()  # guards the subscriber list only, never device state

    def publish(self, event: Any) -> None:
        """Offer ``event`` to every subscriber by its overflow policy."""
        for sub in self._subscribers:
            sub._offer(event)

    def publish_all(self, events: Sequence[Any]) -> None:
        """`publish` each of ``events`` in order, handed to each subscriber as one batch:
        a waiting reader wakes once for them, not once each (a stream's burst of
        samples).  Each subscriber's overflow policy applies event by event."""
        if events:
            for sub in self._subscribers:
                sub._offer_all(events)

    def subscribe(
        self,
        *,
        maxsize: int = 4096,
        overflow: Overflow = Overflow.DROP_OLDEST,
        block_timeout: float = 1.0,
    ) -> Subscription:
        """A new subscription that receives every event published from now on."""
        sub = Subscription(self, maxsize=maxsize, overflow=overflow, block_timeout=block_timeout)
        with self._lock:
            self._subscribers = (*self._subscribers, sub)
        return sub

    def _unsubscribe(self, sub: Subscription) -> None:
        with self._lock:
            self._subscribers = tuple(s for s in self._subscribers if s is not sub)
