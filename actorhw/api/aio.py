"""asyncio facade over `Runtime`, for services.

Every call is a coroutine with a deadline; the blocking Runtime call it wraps runs on
the facade's own worker threads, never on the event loop::

    async with AsyncRuntime.start(boards=["same70-xplained"]) as art:
        Same70 = art.ids("same70-xplained")
        async with art.lease(Same70.LED_GREEN, owner="web") as led:
            await led.use("set", (True,))
        async with art.subscribe() as events:
            event = await events.get(timeout=1.0)

A deadline that passes raises [`TimedOutError`][actorhw.core.errors.TimedOutError]; a call after
[`AsyncRuntime.stop()`][actorhw.api.aio.AsyncRuntime.stop] raises
[`RuntimeStoppedError`][actorhw.core.errors.RuntimeStoppedError].
See docs/service.md for the guide.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import functools
import itertools
import threading
from collections.abc import Awaitable, Callable, Generator, Iterable, Mapping, Sequence
from pathlib import Path
from types import TracebackType
from typing import Any, Final, ParamSpec, Self, TypeVar

from actorhw.api.handles import Board
from actorhw.api.runtime import BoardSpec, Runtime
from actorhw.core.errors import (
    ActorHwError,
    InvalidArgumentError,
    RuntimeStoppedError,
    TimedOutError,
)
from actorhw.core.events import Overflow, Subscription
from actorhw.core.ids import DeviceId
from actorhw.core.messages import BoardStatus, DeviceInfo, Lease
from actorhw.tree.asks import DEFAULT_ASK_TIMEOUT
from actorhw.tree.supervisor import STOP_TIMEOUT

__all__ = ["AWAIT_GRACE", "AsyncLease", "AsyncRuntime", "AsyncSubscription"]

P = ParamSpec("P")
T = TypeVar("T")

#: Seconds an await waits beyond the deadline of the blocking call it wraps: that call
#: times out first and raises its own precise error; the grace only catches a worker
#: pool that could not start the call at all.
AWAIT_GRACE: Final = 1.0

#: Worker threads of one AsyncRuntime: calls beyond this many queue for a free worker.
DEFAULT_WORKERS: Final = 16

#: Slice of the event pump's waits, so closing a subscription ends its thread promptly.
_PUMP_SLICE: Final = 0.1

_pump_ids = itertools.count(1)

#: What the pump puts last on the loop's queue: the subscription ended.
_END: Final = object()


def _timeout(value: float, name: str = "timeout") -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not value > 0:
        raise InvalidArgumentError(
            f"{name} must be a positive number of seconds, not {value!r}", argument=name
        )
    return float(value)


class AsyncRuntime:
    """Awaitable calls on a Runtime. Build it with `start()`, or wrap a Runtime.

    Args:
        runtime: the Runtime to drive; `stop()` stops it.
        workers: worker threads for the blocking calls.
        timeout: the default deadline of control calls, in seconds.
    """

    def __init__(
        self,
        runtime: Runtime,
        *,
        workers: int = DEFAULT_WORKERS,
        timeout: float = DEFAULT_ASK_TIMEOUT,
    ) -> None:
        if not isinstance(runtime, Runtime):
            raise InvalidArgumentError(
                f"expected a Runtime, not {type(runtime).__name__}", argument="runtime"
            )
        self.runtime = runtime
        self.timeout = _timeout(timeout)
        self._pool = concurrent.futures.ThreadPoolExecutor(
            max_workers=workers, thread_name_prefix="actorhw-aio"
        )
        self._subscriptions: set[AsyncSubscription] = set()
        self._stopped = False

    @classmethod
    def start(
        cls,
        boards: Iterable[str | BoardSpec] = (),
        *,
        boards_dirs: Sequence[Path | str] = (),
        drivers_dirs: Sequence[Path | str] = (),
        timeout: float = 30.0,
        workers: int = DEFAULT_WORKERS,
    ) -> _Starting:
        """Start a Runtime off the loop and bring ``boards`` up (see
        [`Runtime.start()`][actorhw.api.runtime.Runtime.start]).

        Await it (``art = await AsyncRuntime.start(...)``) or use it as an async context
        manager that stops the runtime on exit (``async with AsyncRuntime.start(...)``).
        """
        boards = list(boards)
        _timeout(timeout)

        async def make() -> AsyncRuntime:
            loop = asyncio.get_running_loop()
            # A throwaway thread, not the pool: the pool belongs to the runtime to come.
            future = loop.run_in_executor(
                None,
                functools.partial(
                    Runtime.start,
                    boards,
                    boards_dirs=boards_dirs,
                    drivers_dirs=drivers_dirs,
                    timeout=timeout,
                ),
            )
            try:
                runtime = await asyncio.wait_for(asyncio.shield(future), timeout + AWAIT_GRACE)
            except BaseException as e:
                # Cancelled or overran: whatever comes up later is stopped, not leaked.
                future.add_done_callback(_stop_abandoned)
                if isinstance(e, TimeoutError):
                    raise TimedOutError(
                        f"Runtime.start: not up within {timeout:.3g} s",
                        operation="start",
                        timeout=timeout,
                    ) from None
                raise
            return cls(runtime, workers=workers)

        return _Starting(make())

    # --- running blocking calls off the loop -------------------------------------------

    def _submit(
        self, what: str, func: Callable[P, T], *args: P.args, **kwargs: P.kwargs
    ) -> asyncio.Future[T]:
        if self._stopped:
            raise RuntimeStoppedError(f"{what}: the runtime is stopped")
        try:
            return asyncio.wrap_future(self._pool.submit(func, *args, **kwargs))
        except RuntimeError as e:  # the pool was shut down under us
            raise RuntimeStoppedError(f"{what}: the runtime is stopped") from e

    @staticmethod
    async def _wait(what: str, deadline: float, future: Awaitable[T]) -> T:
        try:
            async with asyncio.timeout(deadline + AWAIT_GRACE):
                return await future
        except TimeoutError:
            raise TimedOutError(
                f"{what}: no answer within {deadline + AWAIT_GRACE:.3g} s "
                "(all workers busy, or a call overran its deadline)",
                operation=what,
                timeout=deadline,
            ) from None

    async def _call(
        self, what: str, deadline: float, func: Callable[P, T], *args: P.args, **kwargs: P.kwargs
    ) -> T:
        """Run ``func`` on a worker; wait at most ``deadline`` + AWAIT_GRACE seconds."""
        return await self._wait(what, deadline, self._submit(what, func, *args, **kwargs))

    # --- lifecycle ----------------------------------------------------------------------

    @property
    def running(self) -> bool:
        """Whether the runtime is up and this facade not stopped."""
        return not self._stopped and self.runtime.running

    def on_stop(self, callback: Callable[[], None]) -> Callable[[], None]:
        """Run ``callback`` (a plain function, on a worker) when the runtime stops, before
        any actor stops: teardown hooks go here. Returns a function that unregisters it."""
        return self.runtime.on_stop(callback)

    async def stop(self, *, timeout: float = STOP_TIMEOUT) -> None:
        """Close every subscription, run the stop callbacks, stop every actor; closes
        and releases every device. Safe to call twice."""
        if self._stopped:
            return
        for sub in list(self._subscriptions):
            await sub.aclose()
        try:
            await self._call("stop", _timeout(timeout), self.runtime.stop, timeout=timeout)
        finally:
            self._stopped = True
            self._pool.shutdown(wait=False, cancel_futures=True)

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.stop()

    # --- boards and ids -----------------------------------------------------------------

    async def ids(self, board: str, *, timeout: float | None = None) -> type[DeviceId]:
        """The id enum of the running board ``board`` (see
        [`Runtime.ids()`][actorhw.api.runtime.Runtime.ids])."""
        t = self._t(timeout)
        return await self._call("ids", t, self.runtime.ids, board)

    async def device_id(self, key: str, *, timeout: float | None = None) -> DeviceId:
        """The id of ``"<board>.<NAME>"`` (see
        [`Runtime.device_id()`][actorhw.api.runtime.Runtime.device_id])."""
        t = self._t(timeout)
        return await self._call("device_id", t, self.runtime.device_id, key, timeout=t)

    async def boards(self, *, timeout: float | None = None) -> list[BoardStatus]:
        """The status of every running board."""
        t = self._t(timeout)
        return await self._call("boards", t, self.runtime.boards, timeout=t)

    async def devices(
        self, board: str | None = None, *, timeout: float | None = None
    ) -> list[DeviceInfo]:
        """Every device (of ``board``) with id, kind, state, policy and owners."""
        t = self._t(timeout)
        return await self._call("devices", t, self.runtime.devices, board, timeout=t)

    async def info(self, device: DeviceId, *, timeout: float | None = None) -> DeviceInfo:
        """The device's state, policy and owners now."""
        t = self._t(timeout)
        return await self._call("info", t, self.runtime.info, device, timeout=t)

    # --- ownership and use -----------------------------------------------------------

    async def acquire(self, device: DeviceId, *, owner: str, timeout: float | None = None) -> Lease:
        """Become an owner of ``device`` (device_or_resource_busy if SINGLE and held)."""
        t = self._t(timeout)
        return await self._call("acquire", t, self.runtime.acquire, device, owner=owner, timeout=t)

    async def release(self, lease: Lease, *, timeout: float | None = None) -> int:
        """End ``lease``; returns the device's owners_count after it."""
        t = self._t(timeout)
        return await self._call("release", t, self.runtime.release, lease, timeout=t)

    async def open(self, lease: Lease, *, timeout: float | None = None) -> DeviceInfo:
        """Open the device for ``lease``."""
        t = self._t(timeout)
        return await self._call("open", t, self.runtime.open, lease, timeout=t)

    async def close(self, lease: Lease, *, timeout: float | None = None) -> DeviceInfo:
        """Close the device for ``lease``; it stays acquired."""
        t = self._t(timeout)
        return await self._call("close", t, self.runtime.close, lease, timeout=t)

    async def use(
        self, lease: Lease, op: str, args: tuple[Any, ...] = (), *, timeout: float | None = None
    ) -> Any:
        """Perform ``op`` on the leased device, as
        [`Runtime.use()`][actorhw.api.runtime.Runtime.use] does."""
        t = self._t(timeout)
        return await self._call(f"use {op}", t, self.runtime.use, lease, op, args, timeout=t)

    def lease(self, device: DeviceId, *, owner: str, timeout: float | None = None) -> AsyncLease:
        """Acquire and open ``device`` in ``async with``; closed and released on exit,
        also on an exception or a cancellation."""
        return AsyncLease(self, device, owner=owner, timeout=self._t(timeout))

    async def exec(
        self,
        target: DeviceId | Lease,
        code: str,
        *,
        owner: str = "actorhw-aio",
        timeout: float = 10.0,
    ) -> str:
        """Run MicroPython ``code`` on a BOARD device and return what it printed.

        ``target`` is a lease you hold on a BOARD device, or a BOARD device's id: then
        the device is leased for ``owner`` (BOARD is SHARED) for the call only.

        Raises:
            DeviceExceptionError: the code raised on the board (its traceback attached).
            TimedOutError: it did not finish within ``timeout`` s (the board is
                interrupted).
            WrongKindError: ``target`` is not a BOARD device.
            UnsupportedOperationError: the board does not run code (a simulated one).
        """
        if not isinstance(code, str):
            raise InvalidArgumentError("code must be a str", argument="code")
        t = _timeout(timeout)
        ask = self.timeout
        if isinstance(target, Lease):
            return await self._call(
                "exec", t + 2.0, self.runtime.use, target, "exec", (code, t), timeout=t + 2.0
            )
        if not isinstance(target, DeviceId):
            raise InvalidArgumentError(
                f"exec needs a DeviceId or a Lease, not {type(target).__name__}",
                argument="target",
            )

        def run() -> str:
            with self.runtime.lease(Board, target, owner=owner, timeout=ask) as board:
                return board.exec(code, timeout=t)

        # lookup, acquire, open, the exec (+2 s of I/O slack), close, release
        return await self._call("exec", 5 * ask + t + 2.0, run)

    # --- events -------------------------------------------------------------------------

    def subscribe(
        self, *, maxsize: int = 4096, overflow: Overflow = Overflow.DROP_OLDEST
    ) -> AsyncSubscription:
        """Events from now on (StateChanged, BoardEvent, ...), awaitable and iterable.

        ``maxsize`` and ``overflow`` bound the queue as
        [`Runtime.subscribe()`][actorhw.api.runtime.Runtime.subscribe] does:
        a consumer that falls behind loses events by that policy, never blocks actors.
        """
        if self._stopped:
            raise RuntimeStoppedError("subscribe: the runtime is stopped")
        sub = AsyncSubscription(
            self.runtime.subscribe(maxsize=maxsize, overflow=overflow), on_close=self._forget
        )
        self._subscriptions.add(sub)
        return sub

    def stream(
        self, board: str, *, maxsize: int = 4096, overflow: Overflow = Overflow.DROP_OLDEST
    ) -> AsyncSubscription:
        """``board``'s stream data (StreamData, see
        [`Runtime.stream()`][actorhw.api.runtime.Runtime.stream]) from now on;
        start and stop the stream with `command()`."""
        if self._stopped:
            raise RuntimeStoppedError("stream: the runtime is stopped")
        sub = AsyncSubscription(
            self.runtime.stream(board, maxsize=maxsize, overflow=overflow), on_close=self._forget
        )
        self._subscriptions.add(sub)
        return sub

    async def command(
        self,
        board: str,
        command: str,
        args: Mapping[str, Any] | None = None,
        *,
        timeout: float = 30.0,
    ) -> dict[str, Any]:
        """Run a driver command on ``board`` (``start`` and ``stop`` of its stream, ...):
        the DeviceDriverManager's ``execute_command``, answered as a dict with ``status``."""
        t = _timeout(timeout)
        rt = self.runtime

        def run() -> dict[str, Any]:
            driver = rt.board_status(board, timeout=self.timeout).driver
            return rt.manager.execute_command(driver, command, board, args, timeout=t)

        return await self._call(f"command {command}", self.timeout + t + 1.0, run)

    def _forget(self, sub: AsyncSubscription) -> None:
        self._subscriptions.discard(sub)

    def _t(self, timeout: float | None) -> float:
        return self.timeout if timeout is None else _timeout(timeout)


class _Starting:
    """What [`AsyncRuntime.start()`][actorhw.api.aio.AsyncRuntime.start] returns: awaitable, or an
    async context manager."""

    def __init__(self, coro: Awaitable[AsyncRuntime]) -> None:
        self._coro = coro
        self._art: AsyncRuntime | None = None

    def __await__(self) -> Generator[Any, None, AsyncRuntime]:
        return self._coro.__await__()

    async def __aenter__(self) -> AsyncRuntime:
        self._art = await self._coro
        return self._art

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._art is not None:
            await self._art.stop()


class AsyncLease:
    """A device acquired and opened for one owner, in ``async with``.

    Attributes:
        device: the device's id.
        owner: who holds it.
        lease: the Lease token while held, else None.
    """

    def __init__(self, art: AsyncRuntime, device: DeviceId, *, owner: str, timeout: float) -> None:
        if not isinstance(device, DeviceId):
            raise InvalidArgumentError(
                f"device must be a DeviceId, not {type(device).__name__}", argument="device"
            )
        if not isinstance(owner, str) or not owner:
            raise InvalidArgumentError("owner must be a non-empty string", argument="owner")
        self._art = art
        self.device = device
        self.owner = owner
        self.timeout = timeout
        self.lease: Lease | None = None

    def __repr__(self) -> str:
        held = f"held by {self.owner!r}" if self.lease else "not held"
        return f"<AsyncLease {self.device.key} {held}>"

    async def __aenter__(self) -> Self:
        rt, device, owner, t = self._art.runtime, self.device, self.owner, self.timeout

        def acquire_and_open() -> Lease:
            lease = rt.acquire(device, owner=owner, timeout=t)
            try:
                rt.open(lease, timeout=t)
            except BaseException:
                rt.release(lease, timeout=t)
                raise
            return lease

        future = self._art._submit("lease", acquire_and_open)
        try:
            self.lease = await self._art._wait("lease", 3 * t, asyncio.shield(future))
        except BaseException:
            # Cancelled or overran: a lease that comes later is given back, not leaked.
            future.add_done_callback(functools.partial(_release_abandoned, rt, t))
            raise
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.release()

    def _held(self) -> Lease:
        if self.lease is None:
            raise RuntimeStoppedError(f"{self.device.key}: this lease was released")
        return self.lease

    async def use(
        self, op: str, args: tuple[Any, ...] = (), *, timeout: float | None = None
    ) -> Any:
        """Perform ``op`` on the device (see
        [`AsyncRuntime.use()`][actorhw.api.aio.AsyncRuntime.use])."""
        return await self._art.use(self._held(), op, args, timeout=timeout or self.timeout)

    async def exec(self, code: str, *, timeout: float = 10.0) -> str:
        """Run ``code`` on this BOARD device (see
        [`AsyncRuntime.exec()`][actorhw.api.aio.AsyncRuntime.exec])."""
        return await self._art.exec(self._held(), code, timeout=timeout)

    async def info(self) -> DeviceInfo:
        """The device's state, policy and owners now."""
        return await self._art.info(self.device, timeout=self.timeout)

    async def release(self) -> int | None:
        """Close (if open) and release; returns the owners left. Safe to call twice.

        A cancelled caller does not undo it: the release finishes on its worker.
        """
        lease, self.lease = self.lease, None
        if lease is None:
            return None
        return await asyncio.shield(self._art.release(lease, timeout=self.timeout))


class AsyncSubscription:
    """An event subscription for asyncio: ``await get(timeout=...)`` or ``async for``.

    A pump thread (started at the first read) moves events from the bounded
    [`Subscription`][actorhw.core.events.Subscription] to the loop one at a time, so the
    subscription's own overflow policy still decides what a slow consumer loses.
    ``async for`` ends when the subscription is closed (also by
    [`AsyncRuntime.stop()`][actorhw.api.aio.AsyncRuntime.stop]); to bound each wait, use `get()`.
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
        t = _timeout(timeout)
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
        t = _timeout(timeout)
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

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()


def _stop_abandoned(future: asyncio.Future[Runtime]) -> None:
    if not future.cancelled() and future.exception() is None:
        # Off the loop: stopping blocks until every actor has stopped.
        threading.Thread(target=future.result().stop, name="actorhw-aio-stop").start()


def _release_abandoned(rt: Runtime, timeout: float, future: asyncio.Future[Lease]) -> None:
    if not future.cancelled() and future.exception() is None:
        lease = future.result()

        def release() -> None:
            with contextlib.suppress(ActorHwError):
                rt.release(lease, timeout=timeout)

        threading.Thread(target=release, name="actorhw-aio-release").start()
