"""Cluster: the blocking twin of AsyncCluster, with the Runtime's API shape.

    with Cluster.connect("nats://lab:4222", owner="ci-job-17") as cl:
        with cl.lease(Board, cl.ids("lab-1/microbit-qemu").BOARD) as board:
            board.exec("print(1)")

Its handles are the Runtime's (Uart, Board, ...): they call back into the cluster.  The
asyncio side runs on a private event-loop thread; every call has a deadline.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import threading
from collections.abc import Callable, Coroutine, Sequence
from typing import Any, Self, TypeVar, overload

from actorhw.api.handles import HANDLES, Handle
from actorhw.api.jobs import JobResult, JobRunner
from actorhw.api.steps import Steps
from actorhw.cluster.batch import run_steps, run_steps_blocking
from actorhw.cluster.client import DEFAULT_TIMEOUT, GRACE, AsyncCluster
from actorhw.cluster.config import ClusterConfig
from actorhw.cluster.direct import SLOW, DirectCalls
from actorhw.cluster.reservations import Reservation, waiters
from actorhw.cluster.views import ClusterBoard
from actorhw.core.errors import InvalidArgumentError, TimedOutError, WrongKindError
from actorhw.core.ids import DeviceId
from actorhw.core.lifecycle import DeviceState
from actorhw.core.messages import BoardStatus, DeviceInfo, Lease, Priority
from actorhw.core.messages.cluster import ReservationRequest

H = TypeVar("H", bound=Handle)
T = TypeVar("T")


class Cluster:
    """A blocking connection to a cluster. Build it with :meth:`connect`."""

    def __init__(self, loop: asyncio.AbstractEventLoop, thread: threading.Thread) -> None:
        self._loop = loop
        self._thread = thread
        self._async: AsyncCluster | None = None
        self._direct: DirectCalls | None = None

    @classmethod
    def connect(
        cls,
        url: str | ClusterConfig,
        *,
        owner: str | None = None,
        timeout: float = 10.0,
        **options: Any,
    ) -> Cluster:
        """Connect to the cluster at ``url``; see :meth:`AsyncCluster.connect`."""
        loop = asyncio.new_event_loop()
        thread = threading.Thread(target=loop.run_forever, name="actorhw-cluster", daemon=True)
        thread.start()
        self = cls(loop, thread)
        try:
            self._async = self._run(
                AsyncCluster.connect(url, owner=owner, timeout=timeout, **options), timeout
            )
            self._direct = DirectCalls(self._async, loop)
            self._run(self._direct.start(), timeout)
        except BaseException:
            self._stop_loop()
            raise
        return self

    @property
    def aio(self) -> AsyncCluster:
        """The asyncio cluster underneath (its methods run on this cluster's loop)."""
        if self._async is None:
            raise InvalidArgumentError("this cluster is closed", argument="cluster")
        return self._async

    def _run(self, coro: Coroutine[Any, Any, T], timeout: float) -> T:
        future = asyncio.run_coroutine_threadsafe(coro, self._loop)
        done, _pending = concurrent.futures.wait([future], timeout + GRACE)
        if done:
            return future.result()
        else:
            future.cancel()
            raise TimedOutError(
                f"no answer within {timeout + GRACE:g} s", timeout=timeout
            ) from None

    def _call(self, fn: Callable[[], T]) -> T:
        """Run a quick non-blocking method of the AsyncCluster on its loop."""

        async def call() -> T:
            return fn()

        return self._run(call(), DEFAULT_TIMEOUT)

    def close(self) -> None:
        """Release every lease held and disconnect. Safe to call twice."""
        cl, self._async, direct, self._direct = self._async, None, self._direct, None
        if direct is not None:
            direct.close()
        if cl is not None:
            try:
                self._run(cl.aclose(), 10.0)
            finally:
                self._stop_loop()

    def _stop_loop(self) -> None:
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(5.0)
        if not self._thread.is_alive():
            self._loop.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # --- the Runtime's shape -----------------------------------------------------------------

    @property
    def ttl(self) -> float:
        """The leases' TTL, s."""
        return self.aio.ttl

    def wait_for(self, predicate: Callable[[AsyncCluster], bool], *, timeout: float) -> None:
        """Wait until ``predicate(cluster.aio)`` holds (checked at every heartbeat and
        lease change, on the cluster's loop: keep it quick); TimedOutError if not."""
        cl = self.aio
        self._run(cl.wait_for(lambda: predicate(cl), timeout=timeout), timeout)

    def online(self, host: str) -> bool:
        """Whether ``host`` heartbeats."""
        cl = self.aio
        return self._call(lambda: cl.online(host))

    def boards(self, pattern: str = "*") -> list[ClusterBoard]:
        """Every board of every host (matching ``pattern``), with its host and state."""
        cl = self.aio
        return self._call(lambda: cl.boards(pattern))

    def ids(self, board: str) -> type[DeviceId]:
        """The id enum of ``host/board``."""
        cl = self.aio
        return self._call(lambda: cl.ids(board))

    def device(self, board: str, name: str) -> DeviceId:
        """The id ``name`` of ``board`` (NoSuchDeviceError lists the valid ones)."""
        cl = self.aio
        return self._call(lambda: cl.device(board, name))

    def devices(self, board: str | None = None) -> list[DeviceInfo]:
        """Every device (of ``board``), with state and the cluster's owners."""
        cl = self.aio
        return self._call(lambda: cl.devices(board))

    def acquire(
        self, device: DeviceId, *, owner: str | None = None, timeout: float = DEFAULT_TIMEOUT
    ) -> Lease:
        """Become a holder of ``device`` (device_or_resource_busy if SINGLE and held)."""
        direct = self._direct
        if direct is not None:
            lease = direct.acquire(device, owner=owner, timeout=timeout)
            if lease is not SLOW:
                return lease  # type: ignore[no-any-return]
        return self._run(self.aio.acquire(device, owner=owner, timeout=timeout), timeout)

    def release(self, lease: Lease, *, timeout: float = DEFAULT_TIMEOUT) -> int:
        """End ``lease``; the holders left."""
        direct = self._direct
        if direct is not None:
            left = direct.release(lease, timeout=timeout)
            if left is not SLOW:
                return left  # type: ignore[no-any-return]
        return self._run(self.aio.release(lease, timeout=timeout), timeout)

    def open(self, lease: Lease, *, timeout: float = DEFAULT_TIMEOUT) -> DeviceInfo:
        """Open the device for ``lease``."""
        return self._run(self.aio.open(lease, timeout=timeout), timeout)

    def close_device(self, lease: Lease, *, timeout: float = DEFAULT_TIMEOUT) -> DeviceInfo:
        """Close the device for ``lease`` (``close`` for handles)."""
        return self._run(self.aio.close(lease, timeout=timeout), timeout)

    def info(self, device: DeviceId, *, timeout: float = DEFAULT_TIMEOUT) -> DeviceInfo:
        """The device's state now, asked of its host."""
        return self._run(self.aio.info(device, timeout=timeout), timeout)

    def use(
        self,
        lease: Lease,
        op: str,
        args: tuple[Any, ...] = (),
        *,
        timeout: float = DEFAULT_TIMEOUT,
        priority: Priority = Priority.NORMAL,
        wait: bool = True,
        exclusive: bool = False,
    ) -> Any:
        """Perform ``op`` on the leased device, on its host."""
        direct = self._direct
        if direct is not None:
            value = direct.use(
                lease, op, args, timeout=timeout, priority=priority, wait=wait,
                exclusive=exclusive,
            )  # fmt: skip
            if value is not SLOW:
                return value
        coro = self.aio.use(
            lease, op, args, timeout=timeout, priority=priority, wait=wait, exclusive=exclusive
        )
        return self._run(coro, timeout)

    def board_status(self, board: str, *, timeout: float = DEFAULT_TIMEOUT) -> BoardStatus:
        """The status of ``host/board`` now, asked of its host."""
        return self._run(self.aio.board_status(board, timeout=timeout), timeout)

    def inject_fault(
        self, board: str, fault: str, *, owner: str | None = None, timeout: float = DEFAULT_TIMEOUT
    ) -> str | None:
        """Make ``host/board`` fail as hardware does, on its host (refused with
        device_or_resource_busy while another owner holds one of its devices)."""
        return self._run(self.aio.inject_fault(board, fault, owner=owner, timeout=timeout), timeout)

    def wait_for_board(
        self, board: str, state: DeviceState, *, timeout: float, restarts: int = 0
    ) -> BoardStatus:
        """Wait until ``host/board`` is in ``state`` (recovered ``restarts`` times)."""
        coro = self.aio.wait_for_board(board, state, timeout=timeout, restarts=restarts)
        return self._run(coro, timeout)

    def wait_for_device(
        self, device: DeviceId, state: DeviceState, *, timeout: float
    ) -> DeviceInfo:
        """Wait until ``device`` is in ``state``, on its host; its info then."""
        return self._run(self.aio.wait_for_device(device, state, timeout=timeout), timeout)

    def exec(
        self, board: str, code: str, *, owner: str | None = None, timeout: float = DEFAULT_TIMEOUT
    ) -> str:
        """Run ``code`` on ``host/board`` (lease its BOARD, exec, release)."""
        return self._run(self.aio.exec(board, code, owner=owner, timeout=timeout), timeout + 4)

    @overload
    def get(self, kind: type[H], device: DeviceId, *, timeout: float = ...) -> H: ...
    @overload
    def get(self, kind: DeviceId, device: None = None, *, timeout: float = ...) -> Handle: ...

    def get(self, kind: Any, device: Any = None, *, timeout: float = DEFAULT_TIMEOUT) -> Handle:
        """A handle of ``device``, not yet acquired; its kind is checked."""
        if device is None:
            kind, device = None, kind
        cl = self.aio
        actual = self._call(lambda: cl._where(device))[2].kind
        handle_class = HANDLES[actual]
        if kind is not None:
            if not (isinstance(kind, type) and issubclass(kind, Handle)):
                raise InvalidArgumentError(f"kind must be a handle class, not {kind!r}")
            if kind.kind is not actual:
                raise WrongKindError(
                    f"{device.key} is a {actual.value} device, not {kind.kind.value}",
                    device=device.key, expected=kind.kind.value, actual=actual.value,
                )  # fmt: skip
            handle_class = kind
        return handle_class(_Calls(self), device, timeout=timeout)

    @overload
    def lease(
        self, kind: type[H], device: DeviceId, *, owner: str | None = ..., timeout: float = ...
    ) -> H: ...
    @overload
    def lease(
        self, kind: DeviceId, device: None = None, *, owner: str | None = ..., timeout: float = ...
    ) -> Handle: ...

    def lease(
        self,
        kind: Any,
        device: Any = None,
        *,
        owner: str | None = None,
        timeout: float = DEFAULT_TIMEOUT,
    ) -> Handle:
        """Acquire and open a device; use the handle as a context manager."""
        handle: Handle = self.get(kind, device, timeout=timeout)
        handle.acquire(owner or self.aio._owner(None))
        try:
            handle.open()
        except BaseException:
            handle.release()
            raise
        return handle

    def reserve(
        self,
        pattern: str,
        *,
        count: int = 1,
        wait: float = 60.0,
        priority: int = 0,
        owner: str | None = None,
    ) -> HeldBoards:
        """Wait in the cluster's queue for ``count`` boards matching ``pattern`` (priority
        first, then arrival) and hold every device of them, all at once; a context
        manager that frees them. TimedOutError after ``wait`` s."""
        coro = self.aio.reserve(pattern, count=count, wait=wait, priority=priority, owner=owner)
        return HeldBoards(self, self._run(coro, wait + 5))

    @property
    def waiting(self) -> dict[str, tuple[int, ReservationRequest]]:
        """The reservations queue as this client's watch sees it (read it in
        ``wait_for`` predicates, on the cluster's loop)."""
        return self.aio.waiting

    def waiters(self) -> list[ReservationRequest]:
        """The reservations queue now, first served first."""
        cl = self.aio
        return self._call(lambda: [r for _rev, r in waiters(cl)])

    def run_job(
        self,
        devices: Sequence[DeviceId],
        fn: Callable[[Handle], T],
        *,
        owner: str | None = None,
        limit: int = 4,
        timeout: float = 60.0,
    ) -> JobResult[DeviceId, T]:
        """Run ``fn(handle)`` over ``devices`` on any hosts, each leased and opened;
        at most ``limit`` at once. One device's error never hides the others' results.

        ``fn`` a :class:`~actorhw.api.steps.Steps`: each host runs the steps next to its
        boards, one request per host, every device at once (``limit`` does not apply)."""
        who = owner or self.aio._owner(None)
        if isinstance(fn, Steps):
            result: Any  # T is list[Any]: what Steps returns
            if self._direct is not None and self._direct.blocking:
                result = run_steps_blocking(
                    self, self._direct, devices, fn, owner=who, timeout=timeout, name=who
                )
            else:
                coro = run_steps(self.aio, devices, fn, owner=who, timeout=timeout, name=who)
                result = self._run(coro, timeout)
            done: JobResult[DeviceId, T] = result
            return done

        def on_device(device: DeviceId) -> T:
            with self.lease(device, owner=who, timeout=timeout) as handle:
                return fn(handle)

        with JobRunner(None, workers=limit) as runner:
            job = runner.submit(devices, on_device, name=who, limit=limit)
            try:
                return job.wait(timeout=timeout)
            except TimedOutError:
                job.cancel()
                raise


class _Calls:
    """The DeviceCalls a handle makes, on a Cluster (its ``close`` is the device's)."""

    def __init__(self, cluster: Cluster) -> None:
        self._cl = cluster

    def acquire(self, device: DeviceId, *, owner: str, timeout: float = DEFAULT_TIMEOUT) -> Lease:
        return self._cl.acquire(device, owner=owner, timeout=timeout)

    def open(self, lease: Lease, *, timeout: float = DEFAULT_TIMEOUT) -> DeviceInfo:
        return self._cl.open(lease, timeout=timeout)

    def close(self, lease: Lease, *, timeout: float = DEFAULT_TIMEOUT) -> DeviceInfo:
        return self._cl.close_device(lease, timeout=timeout)

    def release(self, lease: Lease, *, timeout: float = DEFAULT_TIMEOUT) -> int:
        return self._cl.release(lease, timeout=timeout)

    def info(self, device: DeviceId, *, timeout: float = DEFAULT_TIMEOUT) -> DeviceInfo:
        return self._cl.info(device, timeout=timeout)

    def use(
        self,
        lease: Lease,
        op: str,
        args: tuple[Any, ...] = (),
        *,
        timeout: float = DEFAULT_TIMEOUT,
        priority: Priority = Priority.NORMAL,
        wait: bool = True,
        exclusive: bool = False,
    ) -> Any:
        return self._cl.use(
            lease, op, args, timeout=timeout, priority=priority, wait=wait, exclusive=exclusive
        )


class HeldBoards:
    """A granted reservation, held until ``release()`` or the end of its ``with``."""

    def __init__(self, cluster: Cluster, reservation: Reservation) -> None:
        self._cl = cluster
        self._reservation = reservation
        self.boards = reservation.boards
        """The reserved boards (``host/board``)."""
        self.leases = reservation.leases
        """A lease of every device of them."""

    def release(self) -> None:
        """Free every board."""
        self._cl._run(self._reservation.release(), DEFAULT_TIMEOUT)

    def __enter__(self) -> HeldBoards:
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()
