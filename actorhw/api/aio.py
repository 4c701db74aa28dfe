"""asyncio facade over `Runtime`, for services.

Every call is a coroutine with a deadline; the blocking Runtime call it wraps runs on
the facade's own worker threads, never on the event loop::

    async with AsyncRuntime.start(boards=["same70-xplained"]) as art:
        Same70 = art.ids("same70-xplained")
        async with art.lease(Same70.LED_GREEN, owner="web") as led:
            await led.use("set", (True,))
        async with art.subscribe() as events:
            event = await events.get(timeout=1.0)

A deadline that passes raises `TimedOutError`; a call after
`AsyncRuntime.stop()` raises `RuntimeStoppedError`.
See docs/service.md for the guide.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import inspect
import threading
from collections.abc import Awaitable, Callable, Generator, Mapping
from typing import Any, Generic, ParamSpec, Self

from actorhw.api.aio_calls import (
    AWAIT_GRACE,
    DEFAULT_WORKERS,
    ClosingOnExit,
    Twin,
    WorkerPool,
    check_timeout,
    stop_abandoned,
)
from actorhw.api.aio_events import AsyncSubscription
from actorhw.api.handles import Board
from actorhw.api.runtime import Runtime
from actorhw.core.errors import (
    ActorHwError,
    InvalidArgumentError,
    RuntimeStoppedError,
    TimedOutError,
)
from actorhw.core.events import Overflow
from actorhw.core.ids import DeviceId
from actorhw.core.messages import DeviceInfo, Lease, Priority
from actorhw.tree.asks import DEFAULT_ASK_TIMEOUT
from actorhw.tree.supervisor import STOP_TIMEOUT

P = ParamSpec("P")

__all__ = ["AWAIT_GRACE", "AsyncLease", "AsyncRuntime", "AsyncSubscription"]


class _StartTwin(Generic[P]):
    """`AsyncRuntime.start`: `Runtime.start()` run off the loop, same arguments."""

    def __init__(self, start: Callable[P, Runtime]) -> None:
        self._start = start
        self._signature = inspect.signature(start)

    def __get__(self, obj: object, owner: type[AsyncRuntime]) -> Callable[P, _Starting]:
        def start(*args: P.args, **kwargs: P.kwargs) -> _Starting:
            bound = self._signature.bind(*args, **kwargs)
            bound.apply_defaults()
            timeout = check_timeout(bound.arguments["timeout"])
            up = functools.partial(self._start, *args, **kwargs)
            return _Starting(_started(owner, up, timeout))

        start.__doc__ = f"Awaitable `Runtime.start()`. {Runtime.start.__doc__}"
        start.__signature__ = self._signature  # type: ignore[attr-defined]
        return start


async def _started(
    cls: type[AsyncRuntime], start: Callable[[], Runtime], timeout: float
) -> AsyncRuntime:
    loop = asyncio.get_running_loop()
    # A throwaway thread, not the pool: the pool belongs to the runtime to come.
    future = loop.run_in_executor(None, start)
    try:
        runtime = await asyncio.wait_for(asyncio.shield(future), timeout + AWAIT_GRACE)
    except BaseException as e:
        # Cancelled or overran: whatever comes up later is stopped, not leaked.
        future.add_done_callback(stop_abandoned)
        if isinstance(e, TimeoutError):
            raise TimedOutError(
                f"Runtime.start: not up within {timeout:.3g} s", operation="start", timeout=timeout
            ) from None
        raise
    return cls(runtime)


class AsyncRuntime(ClosingOnExit):
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
        self.timeout = check_timeout(timeout)
        self.workers = WorkerPool(workers)
        self._subscriptions: set[AsyncSubscription] = set()

    # --- lifecycle ----------------------------------------------------------------------

    #: Start a Runtime off the loop and bring its boards up, with `Runtime.start()`'s
    #: very arguments (it is called, not copied). Await it (``art = await
    #: AsyncRuntime.start(...)``) or use it as an async context manager that stops the
    #: runtime on exit (``async with AsyncRuntime.start(...) as art``).
    start = _StartTwin(Runtime.start)

    @property
    def running(self) -> bool:
        """Whether the runtime is up and this facade not stopped."""
        return not self.workers.stopped and self.runtime.running

    def on_stop(self, callback: Callable[[], None]) -> Callable[[], None]:
        """Run ``callback`` (a plain function, on a worker) when the runtime stops, before
        any actor stops: teardown hooks go here. Returns a function that unregisters it."""
        return self.runtime.on_stop(callback)

    async def stop(self, *, timeout: float = STOP_TIMEOUT) -> None:
        """Close every subscription, run the stop callbacks, stop every actor; closes
        and releases every device. Safe to call twice."""
        if self.workers.stopped:
            return
        for sub in list(self._subscriptions):
            await sub.aclose()
        try:
            await self.workers.call(
                "stop", check_timeout(timeout), self.runtime.stop, timeout=timeout
            )
        finally:
            self.workers.shutdown()

    async def aclose(self) -> None:
        """`stop()` with its default deadline (what leaving ``async with`` does)."""
        await self.stop()

    # --- boards and ids -----------------------------------------------------------------

    async def ids(self, board: str, *, timeout: float | None = None) -> type[DeviceId]:
        """The id enum of the running board ``board`` (see `Runtime.ids()`)."""
        t = self._t(timeout)
        return await self.workers.call("ids", t, self.runtime.ids, board)

    device_id = Twin(Runtime.device_id)
    add_boards = Twin(Runtime.add_boards, slack=1.0)
    attach_board = Twin(Runtime.attach_board)
    board_status = Twin(Runtime.board_status)
    boards = Twin(Runtime.boards)
    wait_for_board = Twin(Runtime.wait_for_board)
    wait_for_device = Twin(Runtime.wait_for_device)
    reset_board = Twin(Runtime.reset_board, slack=1.0)
    set_connect_script = Twin(Runtime.set_connect_script, deadline="ask_timeout")
    inject_fault = Twin(Runtime.inject_fault)
    inject_crash = Twin(Runtime.inject_crash)
    devices = Twin(Runtime.devices)

    async def info(self, device: DeviceId, *, timeout: float | None = None) -> DeviceInfo:
        """The device's state, policy and owners now (see `Runtime.info()`): answered in
        the loop's thread when the device's actor is idle (a read that never blocks:
        `Runtime.info_now`), else on a worker."""
        t = self._t(timeout)
        rt = self.runtime
        # (A Runtime subclass's own info() is called as it is, on a worker.)
        if type(rt).info is Runtime.info and not self.workers.stopped:
            found = rt.info_now(device)
            if found is not None:
                return found
        return await self.workers.call("info", t, rt.info, device, timeout=t)

    # --- ownership and use -----------------------------------------------------------

    acquire = Twin(Runtime.acquire)
    release = Twin(Runtime.release)
    open = Twin(Runtime.open)
    close = Twin(Runtime.close)

    async def use(
        self,
        lease: Lease,
        op: str,
        args: tuple[Any, ...] = (),
        *,
        timeout: float | None = None,
        priority: Priority = Priority.NORMAL,
        wait: bool = True,
        exclusive: bool = False,
    ) -> Any:
        """Perform ``op`` on the leased device, as `Runtime.use()` does (at the
        limiter's ``priority``; ``wait``: queue when full; ``exclusive``: run alone)."""
        t = self._t(timeout)
        return await self.workers.call(
            f"use {op}", t, self.runtime.use, lease, op, args, timeout=t,
            priority=priority, wait=wait, exclusive=exclusive,
        )  # fmt: skip

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
        t = check_timeout(timeout)
        ask = self.timeout
        if isinstance(target, Lease):
            return await self.workers.call(
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
        return await self.workers.call("exec", 5 * ask + t + 2.0, run)

    # --- events -------------------------------------------------------------------------

    def subscribe(
        self, *, maxsize: int = 4096, overflow: Overflow = Overflow.DROP_OLDEST
    ) -> AsyncSubscription:
        """Events from now on (StateChanged, BoardEvent, ...), awaitable and iterable.

        ``maxsize`` and ``overflow`` bound the queue as `Runtime.subscribe()` does:
        a consumer that falls behind loses events by that policy, never blocks actors.
        """
        if self.workers.stopped:
            raise RuntimeStoppedError("subscribe: the runtime is stopped")
        sub = AsyncSubscription(
            self.runtime.subscribe(maxsize=maxsize, overflow=overflow), on_close=self._forget
        )
        self._subscriptions.add(sub)
        return sub

    def stream(
        self,
        board: str,
        *,
        maxsize: int = 4096,
        overflow: Overflow = Overflow.DROP_OLDEST,
        block_timeout: float = 1.0,
    ) -> AsyncSubscription:
        """``board``'s stream data (StreamData, see `Runtime.stream()`) from now on;
        start and stop the stream with `command()`."""
        if self.workers.stopped:
            raise RuntimeStoppedError("stream: the runtime is stopped")
        stream = self.runtime.stream(
            board, maxsize=maxsize, overflow=overflow, block_timeout=block_timeout
        )
        sub = AsyncSubscription(stream, on_close=self._forget)
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
        t = check_timeout(timeout)
        rt = self.runtime

        def run() -> dict[str, Any]:
            driver = rt.board_status(board, timeout=self.timeout).driver
            return rt.manager.execute_command(driver, command, board, args, timeout=t)

        return await self.workers.call(f"command {command}", self.timeout + t + 1.0, run)

    def _forget(self, sub: AsyncSubscription) -> None:
        self._subscriptions.discard(sub)

    def _t(self, timeout: float | None) -> float:
        return self.timeout if timeout is None else check_timeout(timeout)


class _Starting:
    """What `AsyncRuntime.start()` returns: awaitable, or an async context manager."""

    def __init__(self, coro: Awaitable[AsyncRuntime]) -> None:
        self._coro = coro
        self._art: AsyncRuntime | None = None

    def __await__(self) -> Generator[Any, None, AsyncRuntime]:
        return self._coro.__await__()

    async def __aenter__(self) -> AsyncRuntime:
        self._art = await self._coro
        return self._art

    async def __aexit__(self, *exc_info: object) -> None:
        if self._art is not None:  # it came up: stop it
            await self._art.stop()


class AsyncLease(ClosingOnExit):
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

        future = self._art.workers.submit("lease", acquire_and_open)
        try:
            self.lease = await self._art.workers.wait("lease", 3 * t, asyncio.shield(future))
        except BaseException:
            # Cancelled or overran: a lease that comes later is given back, not leaked.
            future.add_done_callback(functools.partial(_release_abandoned, rt, t))
            raise
        return self

    async def aclose(self) -> None:
        """`release()` (what leaving ``async with`` does)."""
        await self.release()

    def _held(self) -> Lease:
        if self.lease is None:
            raise RuntimeStoppedError(f"{self.device.key}: this lease was released")
        return self.lease

    async def use(
        self, op: str, args: tuple[Any, ...] = (), *, timeout: float | None = None
    ) -> Any:
        """Perform ``op`` on the device (see `AsyncRuntime.use()`)."""
        return await self._art.use(self._held(), op, args, timeout=timeout or self.timeout)

    async def exec(self, code: str, *, timeout: float = 10.0) -> str:
        """Run ``code`` on this BOARD device (see `AsyncRuntime.exec()`)."""
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


def _release_abandoned(rt: Runtime, timeout: float, future: asyncio.Future[Lease]) -> None:
    if not future.cancelled() and future.exception() is None:
        lease = future.result()

        def release() -> None:
            with contextlib.suppress(ActorHwError):
                rt.release(lease, timeout=timeout)

        threading.Thread(target=release, name="actorhw-aio-release").start()
