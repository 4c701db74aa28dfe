"""Runtime: starts and stops the actor tree; the typed facade callers hold.

    with Runtime.start(boards=["same70-xplained"]) as rt:
        Same70 = rt.ids("same70-xplained")
        with rt.lease(Uart, Same70.UART0, owner="module-a") as uart:
            uart.write(b"hello")

Any thread may call any method of a Runtime; see docs/thread-safety.md.
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any, TypeVar, overload

import attrs

from actorhw.api.handles import HANDLES, Handle
from actorhw.api.limiter import OperationLimiter
from actorhw.api.manager import DeviceDriverManager
from actorhw.api.monitor import ResourceMonitor
from actorhw.api.sessions import Session, next_session_name, quota_fields
from actorhw.core.errors import (
    ActorDeadError,
    ActorHwError,
    BoardsNotConnectedError,
    DeviceExceptionError,
    DeviceUnavailableError,
    InvalidArgumentError,
    NoSuchBoardError,
    NoSuchDeviceError,
    RuntimeStoppedError,
    TimedOutError,
    WrongKindError,
)
from actorhw.core.events import EventBus, Overflow, Subscription
from actorhw.core.ids import DeviceId
from actorhw.core.lifecycle import DeviceState
from actorhw.core.log import logger
from actorhw.core.messages import (
    Acquire,
    BoardStatus,
    BringUp,
    Close,
    ConnectScript,
    Crash,
    DeviceInfo,
    GetBoardStatus,
    GetInfo,
    GetTree,
    InjectFault,
    Lease,
    ListDevices,
    Lookup,
    Open,
    OpenSession,
    Priority,
    RegistryEntry,
    Release,
    Request,
    ResetBoard,
    Resolve,
    ResourceKind,
    ReviveBoard,
    StartBoard,
    Use,
)
from actorhw.core.recovery import RecoveryPolicy
from actorhw.drivers.board_driver import PendingIO
from actorhw.drivers.definitions import BoardCatalog
from actorhw.drivers.plugins import DriverCatalog
from actorhw.drivers.streams import StreamHub
from actorhw.tree.asks import DEFAULT_ASK_TIMEOUT, ActorRef, ask, ask_later, by_urn
from actorhw.tree.device import published_info
from actorhw.tree.scheduler import join_retired_workers
from actorhw.tree.status_book import StatusBook
from actorhw.tree.supervisor import STOP_TIMEOUT, SupervisorActor

H = TypeVar("H", bound=Handle)
R = TypeVar("R")
#: Pause before a release asks again for a board whose actor is restarting, s.
_RETRY_S = 0.02


@attrs.frozen
class BoardSpec:
    """One board to bring up: a definition, the instance's name (default: the same), and
    where it is attached.

    ``port`` is a device path, a pyserial URL, ``serial:NUMBER``, ``VID:PID``,
    ``location:LOC`` or ``auto`` (docs/boards.md); ``options`` override the
    definition's ``[board.options]`` for this instance (``power_hook``, ``baudrate``...).
    """

    definition: str
    name: str | None = None
    port: str | None = None
    options: Mapping[str, Any] = attrs.field(factory=dict)

    def instance_options(self) -> dict[str, Any]:
        """The options this instance's driver gets over the definition's."""
        extra = dict(self.options)
        if self.port is not None:
            extra["port"] = self.port
        return extra


class Runtime:
    """The facade of a running actor tree. Build it with `start()`."""

    def __init__(
        self,
        *,
        catalog: BoardCatalog,
        drivers: DriverCatalog,
        recovery: RecoveryPolicy | None = None,
    ) -> None:
        self.catalog = catalog
        self.drivers = drivers
        self.events = EventBus()
        self._statuses = StatusBook()
        self._supervisor: ActorRef[Any] | None = SupervisorActor.start(
            boards=catalog,
            drivers=drivers,
            events=self.events,
            recovery=recovery,
            statuses=self._statuses,
        )
        tree = ask(self._supervisor, GetTree(), timeout=DEFAULT_ASK_TIMEOUT)
        self._registry = self._by_urn(tree.registry_urn)
        self._core: dict[str, ActorRef[Any]] = {
            "monitor": self._by_urn(tree.monitor_urn),
            "limiter": self._by_urn(tree.limiter_urn),
        }
        self._boards: dict[str, ActorRef[Any] | None] = {}
        # id -> (entry, ref): a cache of registry answers, refreshed when a ref dies.
        self._routes: dict[DeviceId, tuple[RegistryEntry, ActorRef[Any]]] = {}
        self._stop_lock = threading.Lock()
        self._stopped = threading.Event()
        self._stop_callbacks: list[Callable[[], None]] = []
        self._manager: DeviceDriverManager | None = None

    @classmethod
    def start(
        cls,
        boards: Iterable[str | BoardSpec] = (),
        *,
        boards_dirs: Sequence[Path | str] = (),
        drivers_dirs: Sequence[Path | str] = (),
        timeout: float = 30.0,
        recovery: RecoveryPolicy | None = None,
    ) -> Runtime:
        """Start the tree and bring ``boards`` up to CONNECTED, all at once.

        Args:
            boards: board definition names, or BoardSpecs to name instances. A name
                given twice gets instances ``name``, ``name-2``, ...
            boards_dirs: extra folders of board files.
            drivers_dirs: extra folders of drv_*.py driver plugins.
            timeout: seconds the whole bring-up may take.
            recovery: restart intensity and backoff of every board (defaults: 5
                restarts in 30 s, 0.5 s to 30 s by x2 with 20% jitter).
        """
        rt = cls(
            catalog=BoardCatalog.discover(boards_dirs),
            drivers=DriverCatalog.discover(drivers_dirs),
            recovery=recovery,
        )
        try:
            rt.add_boards(boards, timeout=timeout)
        except BaseException:
            rt.stop()
            raise
        return rt

    def add_boards(
        self, boards: Iterable[str | BoardSpec], *, timeout: float = 30.0
    ) -> list[BoardStatus]:
        """Start more boards and bring them up in parallel; returns their status.

        Raises:
            BoardsNotConnectedError: several boards did not come up; it names each with
                its error (one failing board raises its own error).
        """
        specs = [BoardSpec(b) if isinstance(b, str) else b for b in boards]
        for spec in specs:
            if not isinstance(spec, BoardSpec):
                raise InvalidArgumentError(
                    f"a board is a name or a BoardSpec, not {spec!r}", argument="boards"
                )
        names: list[str] = []
        taken = set(self._boards)
        suffix: dict[str, int] = {}  # the next suffix to try per definition: linear in all
        for spec in specs:
            name = spec.name or spec.definition
            while spec.name is None and name in taken:
                n = suffix[spec.definition] = suffix.get(spec.definition, 1) + 1
                name = f"{spec.definition}-{n}"
            names.append(name)
            taken.add(name)
        started = []
        for spec, name in zip(specs, names, strict=True):
            urn = ask(
                self._sup(),
                StartBoard(
                    board=name,
                    definition=spec.definition,
                    options=spec.instance_options(),
                    timeout=timeout,
                ),
                timeout=max(DEFAULT_ASK_TIMEOUT, timeout),
            )
            # None: it crashed already as it started; its successor is resolved by name.
            self._boards[name] = by_urn(urn)
            started.append(self._boards[name])
        pending = [
            None if ref is None else ask_later(ref, BringUp(timeout=timeout)) for ref in started
        ]
        deadline = time.monotonic() + timeout + 1.0
        statuses: list[BoardStatus] = []
        failures: dict[str, ActorHwError] = {}
        for name, future in zip(names, pending, strict=True):
            left = max(0.0, deadline - time.monotonic())
            try:
                try:
                    if future is None:
                        raise ActorDeadError(f"board {name} crashed as it started", actor=name)
                    statuses.append(future.wait(timeout=left))
                except ActorDeadError:
                    # The board's actor crashed as it started; its successor comes up itself.
                    statuses.append(self.wait_for_board(name, DeviceState.CONNECTED, timeout=left))
            except ActorHwError as e:
                failures[name] = e
        if len(failures) == 1:
            raise next(iter(failures.values()))
        if failures:
            raise BoardsNotConnectedError(failures)
        return statuses

    # --- lifecycle of the runtime -----------------------------------------------------

    def on_stop(self, callback: Callable[[], None]) -> Callable[[], None]:
        """Call ``callback`` when the runtime stops, before any actor stops (device
        classes run their teardowns there). Returns a function that unregisters it."""
        self._stop_callbacks.append(callback)

        def unregister() -> None:
            with contextlib.suppress(ValueError):
                self._stop_callbacks.remove(callback)

        return unregister

    def stop(self, *, timeout: float = STOP_TIMEOUT) -> None:
        """Stop every actor; devices are closed and released. Safe to call twice.

        Stop callbacks run first, newest first; their errors are logged, not raised.
        """
        for callback in reversed(list(self._stop_callbacks)):
            try:
                callback()
            except Exception as e:
                logger.opt(exception=e).error("stop callback {} failed: {}", callback, e)
        with self._stop_lock:
            sup, self._supervisor = self._supervisor, None
        self._stopped.set()
        if sup is not None and sup.is_alive():
            deadline = time.monotonic() + timeout
            sup.stop(block=True, timeout=timeout)
            # The device actors' shared workers retire with the last actor; wait for them
            # so a stopped runtime leaves no thread behind.
            join_retired_workers(timeout=max(0.0, deadline - time.monotonic()))

    def __enter__(self) -> Runtime:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def monitor(self) -> ResourceMonitor:
        """Board resources, history, thresholds, allocations (docs/resources.md)."""
        return ResourceMonitor(self._core_ref("monitor"))

    @property
    def limiter(self) -> OperationLimiter:
        """Admits every device operation: limits, priorities, preemption, timeouts."""
        return OperationLimiter(self._core_ref("limiter"))

    def _core_ref(self, name: str) -> ActorRef[Any]:
        """A core service's actor now: after a restart, its successor by stable name."""
        ref = self._core[name] = self._live(name, self._core[name])
        return ref

    @property
    def running(self) -> bool:
        """Whether the tree is up."""
        return self._supervisor is not None and self._supervisor.is_alive()

    # --- boards and ids -----------------------------------------------------------------

    def ids(self, board: str) -> type[DeviceId]:
        """The id enum of the running board instance ``board``."""
        return self.catalog.get(self.board_status(board).definition).ids(board)

    def device_id(self, key: str, *, timeout: float = DEFAULT_ASK_TIMEOUT) -> DeviceId:
        """The id of ``"<board>.<NAME>"``, as `DeviceId.key` prints it.

        Raises:
            InvalidArgumentError: ``key`` is not ``"<board>.<NAME>"``.
            NoSuchBoardError: no running board of that name.
            NoSuchDeviceError: the board has no such device (lists its ids).
        """
        if not isinstance(key, str) or "." not in key:
            raise InvalidArgumentError(
                f"a device key is '<board>.<NAME>', not {key!r}", argument="device"
            )
        board, _, name = key.rpartition(".")
        status = self.board_status(board, timeout=timeout)
        ids = self.catalog.get(status.definition).ids(board)
        member = ids.__members__.get(name)
        if member is None:
            raise NoSuchDeviceError(
                f"{board} has no device {name!r}", device=key, valid_ids=list(ids.__members__)
            )
        return member

    def boards(self, *, timeout: float = DEFAULT_ASK_TIMEOUT) -> list[BoardStatus]:
        """The status of every running board."""
        return [self.board_status(name, timeout=timeout) for name in self._boards]

    def board_status(self, board: str, *, timeout: float = DEFAULT_ASK_TIMEOUT) -> BoardStatus:
        """The status of one running board, at once: also while its driver works (a
        command, a recovery step), whose board then says ACTIVE or where it is."""
        self._sup()  # a stopped runtime says so
        self._known(board)
        status = self._statuses.get(board)
        if status is None:  # its actor has not posted one yet
            status = ask(self._board_ref(board), GetBoardStatus(), timeout=timeout)
        return status

    def inject_fault(
        self, board: str, fault: str, *, timeout: float = DEFAULT_ASK_TIMEOUT
    ) -> str | None:
        """Make ``board`` fail as hardware does; for tests, drills and scenarios.

        ``fault`` is ``unplug`` (the link vanishes), ``hang`` (the firmware stops
        answering until a power cycle), ``power_cycle`` (the board restarts and loses
        its state) or ``memory_error`` (code on the board allocates past its heap;
        returns the MemoryError line the board printed).
        """
        result: str | None = ask(self._board_ref(board), InjectFault(fault=fault), timeout=timeout)
        return result

    def inject_crash(
        self, target: str | DeviceId, *, reason: str = "injected", timeout: float = 1.0
    ) -> None:
        """Crash an actor as a bug would (fault injection): the board ``target`` names,
        the device actor of a device id, or ``"registry"``. Its supervisor restarts it."""
        if isinstance(target, DeviceId):
            ref = self._route(target, timeout=timeout)[1]
        elif target == "registry":
            ref = self._registry_ref()
        else:
            ref = self._board_ref(target)
        ref.tell(Crash(reason=reason))

    def wait_for_board(
        self, board: str, state: DeviceState, *, timeout: float, restarts: int = 0
    ) -> BoardStatus:
        """Wait until ``board`` is in ``state`` (having recovered at least ``restarts``
        times); its status then.

        Raises:
            TimedOutError: not there within ``timeout`` s (says where it is).
        """
        deadline = time.monotonic() + timeout

        def there(s: BoardStatus) -> bool:
            return s.state is state and s.restarts >= restarts

        # One round trip through the board's mailbox first: what was sent to it before
        # (a device's fault report, say) counts; then its posted status, at once.
        with contextlib.suppress(TimedOutError, ActorDeadError):
            synced = ask(self._board_ref(board), GetBoardStatus(), timeout=timeout)
            if there(synced):
                return synced
        left = max(0.0, deadline - time.monotonic())
        found = self._statuses.wait_for(board, there, timeout=left)
        if found is not None:
            return found
        status = self._statuses.get(board)
        wanted = f"{state.name} with {restarts}+ restarts" if restarts else state.name
        where = (
            "starting"
            if status is None
            else f"{status.state.name} after {status.restarts} restarts: {status.reason}"
        )
        raise TimedOutError(
            f"board {board} not {wanted} within {timeout:g} s; it is {where}",
            board=board,
            timeout=timeout,
        )

    def set_connect_script(
        self,
        board: str,
        key: str,
        codes: Sequence[str],
        *,
        timeout: float,
        ask_timeout: float = DEFAULT_ASK_TIMEOUT,
    ) -> None:
        """Have ``board`` run ``codes`` after every (re)connect, before it is CONNECTED.

        Belay-style device classes register their definitions and setups this way.
        Empty ``codes`` removes the script of ``key``.
        """
        message = ConnectScript(key=key, codes=tuple(codes), timeout=timeout)
        ask(self._board_ref(board), message, timeout=ask_timeout)

    def reset_board(self, board: str, *, timeout: float = 30.0) -> BoardStatus:
        """An operator's reset: forget restart history and retry a quarantined board (or
        its quarantined devices); also a board whose actor the supervisor quarantined."""
        try:
            ref = self._board_ref(board)
        except DeviceUnavailableError as e:
            if not _quarantined(e):
                raise
            urn = ask(self._sup(), ReviveBoard(board=board), timeout=DEFAULT_ASK_TIMEOUT)
            ref = self._boards[board] = self._by_urn(urn)
        return ask(ref, ResetBoard(timeout=timeout), timeout=timeout + 1)

    def _known(self, board: str) -> None:
        if board not in self._boards:
            raise NoSuchBoardError(
                f"no running board {board!r}; running: {', '.join(self._boards) or 'none'}",
                board=board,
            )

    def _board_ref(self, board: str) -> ActorRef[Any]:
        """The board's actor now: a crashed one's successor is found by its stable name."""
        self._known(board)
        ref = self._boards[board] = self._live(f"board:{board}", self._boards[board])
        return ref

    # --- typed lookup -----------------------------------------------------------------

    @overload
    def get(self, kind: type[H], device: DeviceId, *, timeout: float = ...) -> H: ...
    @overload
    def get(self, kind: DeviceId, device: None = None, *, timeout: float = ...) -> Handle: ...

    def get(self, kind: Any, device: Any = None, *, timeout: float = DEFAULT_ASK_TIMEOUT) -> Handle:
        """A handle of ``device``, not yet acquired; its kind is checked.

        ``get(Uart, ids.UART0)`` returns a Uart (WrongKindError if UART0 is not a UART);
        ``get(ids.UART0)`` returns the handle class of the device's kind.
        """
        if device is None:
            kind, device = None, kind
        entry, _ref = self._route(device, timeout=timeout)
        handle_class = HANDLES[entry.kind]
        if kind is not None:
            if not (isinstance(kind, type) and issubclass(kind, Handle)):
                raise InvalidArgumentError(
                    f"kind must be a handle class such as Uart, not {kind!r}", argument="kind"
                )
            if kind.kind is not entry.kind:
                raise WrongKindError(
                    f"{device.key} is a {entry.kind.value} device, not {kind.kind.value} "
                    f"(use {handle_class.__name__})",
                    device=device.key,
                    expected=kind.kind.value,
                    actual=entry.kind.value,
                )
            handle_class = kind
        handle: Handle = handle_class(self, device, timeout=timeout)
        return handle

    @overload
    def lease(self, kind: type[H], device: DeviceId, *, owner: str, timeout: float = ...) -> H: ...
    @overload
    def lease(
        self, kind: DeviceId, device: None = None, *, owner: str, timeout: float = ...
    ) -> Handle: ...

    def lease(
        self, kind: Any, device: Any = None, *, owner: str, timeout: float = DEFAULT_ASK_TIMEOUT
    ) -> Handle:
        """Acquire and open a device; use the handle as a context manager.

        On leaving the ``with`` block (also on an exception) the device is closed and
        released.
        """
        handle: Handle = self.get(kind, device, timeout=timeout)
        handle.acquire(owner)
        try:
            handle.open()
        except BaseException:
            handle.release()
            raise
        return handle

    # --- ownership and use, by id and lease ---------------------------------------------

    def acquire(
        self, device: DeviceId, *, owner: str, timeout: float = DEFAULT_ASK_TIMEOUT
    ) -> Lease:
        """Become an owner of ``device``; returns the lease."""
        return self._ask(device, Acquire(owner=owner), timeout)

    def release(self, lease: Lease, *, timeout: float = DEFAULT_ASK_TIMEOUT) -> int:
        """End ``lease``; returns the device's owners_count after it.

        A release is never lost to a crash: while the device's actor restarts (or stays
        down, quarantined) the board applies it to the leases its successor starts with.
        """
        device = _lease(lease).device
        deadline = time.monotonic() + timeout
        try:
            return self._ask(device, Release(lease=lease), timeout)
        except (DeviceUnavailableError, ActorDeadError, NoSuchDeviceError) as e:
            if not self._restarting(e, device):
                raise
        return self._release_through_board(lease, deadline)

    def _restarting(self, error: ActorHwError, device: DeviceId) -> bool:
        """Whether ``error`` means the device's actor (or its board's) is down now."""
        if isinstance(error, DeviceUnavailableError):
            return getattr(error, "state", None) == "RESTARTING"
        return type(device).board in self._boards

    def _release_through_board(self, lease: Lease, deadline: float) -> int:
        """Hand the release to the device's board, which applies it when it can."""
        board = type(lease.device).board
        while True:
            left = max(0.0, deadline - time.monotonic())
            try:
                try:
                    target = self._board_ref(board)
                except DeviceUnavailableError as e:
                    if not _quarantined(e):
                        raise
                    target = self._sup()  # it keeps a quarantined board's leases
                # The board answers at once, or with a future if it waits for a crash.
                answer: int | concurrent.futures.Future[int] = ask(
                    target, Release(lease=lease), timeout=left
                )
                if isinstance(answer, concurrent.futures.Future):
                    try:
                        answer = answer.result(timeout=max(0.0, deadline - time.monotonic()))
                    except concurrent.futures.TimeoutError:
                        raise TimedOutError(
                            f"release of {lease.device.key} ({lease.owner}): its actor is "
                            f"restarting; the release is applied when it is back",
                            device=lease.device.key,
                            timeout=left,
                        ) from None
                return answer
            except ActorDeadError:  # the board's actor restarts: its successor, by name
                if time.monotonic() >= deadline:
                    raise
                self._stopped.wait(_RETRY_S)

    def open(self, lease: Lease, *, timeout: float = DEFAULT_ASK_TIMEOUT) -> DeviceInfo:
        """Open the device for ``lease``."""
        return self._ask(_lease(lease).device, Open(lease=lease), timeout)

    def close(self, lease: Lease, *, timeout: float = DEFAULT_ASK_TIMEOUT) -> DeviceInfo:
        """Close the device for ``lease``."""
        return self._ask(_lease(lease).device, Close(lease=lease), timeout)

    def use(
        self,
        lease: Lease,
        op: str,
        args: tuple[Any, ...] = (),
        *,
        timeout: float = DEFAULT_ASK_TIMEOUT,
        priority: Priority = Priority.NORMAL,
        wait: bool = True,
        exclusive: bool = False,
    ) -> Any:
        """Perform ``op`` on the leased device; waits for board I/O up to ``timeout``.

        The operation passes the limiter first (``rt.limiter``): it waits for a slot up
        to ``timeout`` (or is refused at once with ``wait=False``), runs alone on the
        device if ``exclusive``, and a Low one may be preempted (PreemptedError).
        """
        device = _lease(lease).device
        deadline = time.monotonic() + timeout
        if op == "interrupt":  # a control operation: it must reach a full board at once
            return self._ask(device, Use(lease=lease, op=op, args=args), timeout)
        _entry, ref = self._route(device, timeout=timeout)
        ticket = self.limiter.admit(
            device, priority=priority, what=op, wait=wait, exclusive=exclusive,
            lease=lease, actor_urn=ref.actor_urn, timeout=timeout,
        )  # fmt: skip
        try:
            left = max(0.0, deadline - time.monotonic())
            result = self._ask(device, Use(lease=lease, op=op, args=args), left)
            if isinstance(result, PendingIO):
                left = max(0.0, deadline - time.monotonic())
                try:
                    return ticket.wait(result.future, timeout=left)
                except ActorHwError:
                    if ticket.revoked_error() is not None:
                        self._stop_revoked(lease, result.future)
                    raise
            return result
        except DeviceExceptionError as e:
            revoked = ticket.revoked_error()
            if revoked is not None:
                raise revoked from e
            self.monitor.observe_error(device, e.exc_name, e.message)
            raise
        finally:
            self.limiter.finish(ticket)

    def _stop_revoked(self, lease: Lease, future: concurrent.futures.Future[Any]) -> None:
        """A preempted or timed-out call may have started on the board only after the
        limiter's interrupt: cancel it if it has not started, else interrupt it again
        until it ends (bounded)."""
        deadline = time.monotonic() + DEFAULT_ASK_TIMEOUT
        while not future.cancel() and not future.done() and time.monotonic() < deadline:
            with contextlib.suppress(ActorHwError):
                self._ask(lease.device, Use(lease=lease, op="interrupt"), 1.0)
            concurrent.futures.wait([future], timeout=0.2)

    def session(
        self,
        owner: str,
        *,
        ttl: float | None = None,
        quotas: Mapping[ResourceKind, int] | None = None,
        watch_thread: bool = True,
        timeout: float = DEFAULT_ASK_TIMEOUT,
    ) -> Session:
        """A session for ``owner``: its leases and allocations are released together when
        it ends, when the thread that opened it dies (``watch_thread``), or when it
        misses its heartbeat for ``ttl`` s.  Use it as a context manager."""
        if not isinstance(owner, str) or not owner:
            raise InvalidArgumentError("owner must be a non-empty string", argument="owner")
        if ttl is not None and (not isinstance(ttl, int | float) or ttl <= 0):
            raise InvalidArgumentError(f"ttl must be > 0 seconds, not {ttl!r}", argument="ttl")
        message = OpenSession(
            session=next_session_name(owner),
            owner=owner,
            thread_id=threading.get_ident() if watch_thread else 0,
            ttl=ttl,
            **quota_fields(quotas),
        )
        return Session(self.monitor, self, self.monitor.open_session(message, timeout=timeout))

    def info(self, device: DeviceId, *, timeout: float = DEFAULT_ASK_TIMEOUT) -> DeviceInfo:
        """The device's state, policy and owners now."""
        return self._ask(device, GetInfo(), timeout)

    def devices(
        self, board: str | None = None, *, timeout: float = DEFAULT_ASK_TIMEOUT
    ) -> list[DeviceInfo]:
        """Every device (of ``board``) with id, kind, state, policy and owners."""
        if board is not None:
            self._board_ref(board)
        entries = ask(self._registry_ref(), ListDevices(board=board), timeout=timeout)
        # Each device actor publishes its info as it changes (an immutable DeviceInfo):
        # listing 20,000 devices reads them, rather than 20,000 asks. An actor not
        # running (restarting) is asked, and answers or errors as an ask does.
        found = [published_info(by_urn(e.actor_urn)) for e in entries]
        futures = {
            i: ask_later(self._by_urn(e.actor_urn), GetInfo())
            for i, (e, info) in enumerate(zip(entries, found, strict=True))
            if info is None
        }
        deadline = time.monotonic() + timeout
        for i, future in futures.items():
            found[i] = future.wait(timeout=deadline - time.monotonic())
        return [info for info in found if info is not None]

    def subscribe(
        self, *, maxsize: int = 4096, overflow: Overflow = Overflow.DROP_OLDEST
    ) -> Subscription:
        """Events from now on: StateChanged and the others of actorhw.messages."""
        return self.events.subscribe(maxsize=maxsize, overflow=overflow)

    # --- the device manager and data streams (actorhw.manager, actorhw.streams) ---------

    @property
    def manager(self) -> DeviceDriverManager:
        """The DeviceDriverManager API (scan, initialize, connect, commands, streams) on
        this runtime's actors; see docs/plugins.md."""
        if self._manager is None:
            self._manager = DeviceDriverManager(self)
        return self._manager

    def stream(
        self,
        board: str,
        *,
        maxsize: int = 4096,
        overflow: Overflow = Overflow.DROP_OLDEST,
        block_timeout: float = 1.0,
    ) -> Subscription:
        """A bounded queue of ``board``'s StreamData from now on (see actorhw.streams);
        start the stream with the board's ``start`` command."""
        self._board_ref(board)
        return StreamHub.of(self.events).subscribe(
            board, maxsize=maxsize, overflow=overflow, block_timeout=block_timeout
        )

    def attach_board(self, definition: str, *, name: str | None = None) -> str:
        """Start a board's actor without bringing it up (it stays UNKNOWN, for the
        manager's scan); returns the instance's name."""
        name = name or definition
        if name not in self._boards:
            urn = ask(
                self._sup(),
                StartBoard(board=name, definition=definition),
                timeout=DEFAULT_ASK_TIMEOUT,
            )
            self._boards[name] = self._by_urn(urn)
        return name

    # --- routing ------------------------------------------------------------------------

    def _ask(self, device: DeviceId, message: Request[R], timeout: float) -> R:
        deadline = time.monotonic() + timeout
        _entry, ref = self._route(device, timeout=timeout)
        try:
            return ask(ref, message, timeout=timeout)
        except ActorDeadError:
            # The actor died before it handled the message (a crash it is restarted
            # from): the message did nothing, so it is safe to send it once more.
            self._routes.pop(device, None)
            left = deadline - time.monotonic()
            if left <= 0:
                raise
            _entry, ref = self._route(device, timeout=left)
            return ask(ref, message, timeout=left)

    def _route(self, device: DeviceId, *, timeout: float) -> tuple[RegistryEntry, ActorRef[Any]]:
        route = self._routes.get(device) if isinstance(device, DeviceId) else None
        if route is not None and route[1].is_alive():
            return route
        entry: RegistryEntry = ask(self._registry_ref(), Lookup(device=device), timeout=timeout)
        ref = by_urn(entry.actor_urn)
        if ref is None:
            raise DeviceUnavailableError(
                f"{device.key} is restarting",
                device=device.key,
                state="RESTARTING",
                reason="actor restarting",
                since=time.time(),
            )
        self._routes[device] = (entry, ref)
        return entry, ref

    def _sup(self) -> ActorRef[Any]:
        if self._supervisor is None or not self._supervisor.is_alive():
            raise RuntimeStoppedError("the runtime is stopped")
        return self._supervisor

    def _registry_ref(self) -> ActorRef[Any]:
        """The registry now: after its restart, its successor by the stable name."""
        self._sup()  # a stopped runtime says so, even if the registry's ref looks alive
        self._registry = self._live("registry", self._registry)
        return self._registry

    def _live(self, name: str, ref: ActorRef[Any] | None) -> ActorRef[Any]:
        """``ref`` if its actor runs, else the successor the supervisor knows by ``name``."""
        if ref is not None and ref.is_alive():
            return ref
        return self._by_urn(ask(self._sup(), Resolve(name=name), timeout=DEFAULT_ASK_TIMEOUT))

    @staticmethod
    def _by_urn(urn: str) -> ActorRef[Any]:
        ref = by_urn(urn)
        if ref is None:
            raise ActorDeadError(f"actor {urn} is not running", actor=urn)
        return ref


def _quarantined(error: DeviceUnavailableError) -> bool:
    """Whether ``error`` says the supervisor quarantined the board's actor."""
    return getattr(error, "state", None) == "QUARANTINED"


def _lease(lease: Any) -> Lease:
    if not isinstance(lease, Lease):
        raise InvalidArgumentError(
            f"expected a Lease, not {type(lease).__name__}", argument="lease"
        )
    return lease
