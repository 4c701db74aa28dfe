"""Runtime: starts and stops the actor tree; the typed facade callers hold.

    with Runtime.start(boards=["same70-xplained"]) as rt:
        Same70 = rt.ids("same70-xplained")
        with rt.lease(Uart, Same70.UART0, owner="module-a") as uart:
            uart.write(b"hello")

Any thread may call any method of a Runtime; see docs/thread-safety.md.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any, TypeVar, overload

import attrs
import pykka

from actorhw.asks import DEFAULT_ASK_TIMEOUT, ask
from actorhw.boards import BoardCatalog
from actorhw.driver import PendingIO
from actorhw.errors import (
    ActorDeadError,
    DeviceUnavailableError,
    InvalidArgumentError,
    NoSuchBoardError,
    RuntimeStoppedError,
    WrongKindError,
)
from actorhw.events import EventBus, Overflow, Subscription
from actorhw.handles import HANDLES, Handle
from actorhw.ids import DeviceId
from actorhw.log import logger
from actorhw.messages import (
    Acquire,
    BoardStatus,
    BringUp,
    Close,
    DeviceInfo,
    GetBoardStatus,
    GetInfo,
    GetTree,
    InjectFault,
    Lease,
    ListDevices,
    Lookup,
    Open,
    RegistryEntry,
    Release,
    ResetBoard,
    StartBoard,
    Use,
)
from actorhw.plugins import DriverCatalog
from actorhw.supervisor import STOP_TIMEOUT, SupervisorActor

H = TypeVar("H", bound=Handle)


@attrs.frozen
class BoardSpec:
    """One board to bring up: a definition, and the instance's name (default: the same)."""

    definition: str
    name: str | None = None


class Runtime:
    """The facade of a running actor tree. Build it with :meth:`start`."""

    def __init__(self, *, catalog: BoardCatalog, drivers: DriverCatalog) -> None:
        self.catalog = catalog
        self.drivers = drivers
        self.events = EventBus()
        self._supervisor: pykka.ActorRef[Any] | None = SupervisorActor.start(
            boards=catalog, drivers=drivers, events=self.events
        )
        tree = ask(self._supervisor, GetTree(), timeout=DEFAULT_ASK_TIMEOUT)
        self._registry = self._by_urn(tree.registry_urn)
        self._boards: dict[str, pykka.ActorRef[Any]] = {}
        # id -> (entry, ref): a cache of registry answers, refreshed when a ref dies.
        self._routes: dict[DeviceId, tuple[RegistryEntry, pykka.ActorRef[Any]]] = {}
        self._stop_lock = threading.Lock()
        self._stop_callbacks: list[Callable[[], None]] = []

    @classmethod
    def start(
        cls,
        boards: Iterable[str | BoardSpec] = (),
        *,
        boards_dirs: Sequence[Path | str] = (),
        drivers_dirs: Sequence[Path | str] = (),
        timeout: float = 30.0,
    ) -> Runtime:
        """Start the tree and bring ``boards`` up to CONNECTED, all at once.

        Args:
            boards: board definition names, or BoardSpecs to name instances. A name
                given twice gets instances ``name``, ``name-2``, ...
            boards_dirs: extra folders of board files.
            drivers_dirs: extra folders of drv_*.py driver plugins.
            timeout: seconds the whole bring-up may take.
        """
        rt = cls(
            catalog=BoardCatalog.discover(boards_dirs), drivers=DriverCatalog.discover(drivers_dirs)
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
        """Start more boards and bring them up in parallel; returns their status."""
        specs = [BoardSpec(b) if isinstance(b, str) else b for b in boards]
        for spec in specs:
            if not isinstance(spec, BoardSpec):
                raise InvalidArgumentError(
                    f"a board is a name or a BoardSpec, not {spec!r}", argument="boards"
                )
        names: list[str] = []
        for spec in specs:
            name = spec.name or spec.definition
            n = 2
            while spec.name is None and (name in self._boards or name in names):
                name, n = f"{spec.definition}-{n}", n + 1
            names.append(name)
        started = []
        for spec, name in zip(specs, names, strict=True):
            urn = ask(
                self._sup(),
                StartBoard(board=name, definition=spec.definition),
                timeout=DEFAULT_ASK_TIMEOUT,
            )
            self._boards[name] = self._by_urn(urn)
            started.append(self._boards[name])
        pending = [ref.ask(BringUp(timeout=timeout), block=False) for ref in started]
        deadline = time.monotonic() + timeout + 1.0
        return [f.get(timeout=max(0.0, deadline - time.monotonic())) for f in pending]

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
        if sup is not None and sup.is_alive():
            sup.stop(block=True, timeout=timeout)

    def __enter__(self) -> Runtime:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def running(self) -> bool:
        """Whether the tree is up."""
        return self._supervisor is not None and self._supervisor.is_alive()

    # --- boards and ids -----------------------------------------------------------------

    def ids(self, board: str) -> type[DeviceId]:
        """The id enum of the running board instance ``board``."""
        ref = self._board_ref(board)
        status: BoardStatus = ask(ref, GetBoardStatus(), timeout=DEFAULT_ASK_TIMEOUT)
        return self.catalog.get(status.definition).ids(board)

    def boards(self, *, timeout: float = DEFAULT_ASK_TIMEOUT) -> list[BoardStatus]:
        """The status of every running board."""
        return [ask(ref, GetBoardStatus(), timeout=timeout) for ref in self._boards.values()]

    def board_status(self, board: str, *, timeout: float = DEFAULT_ASK_TIMEOUT) -> BoardStatus:
        """The status of one running board."""
        return ask(self._board_ref(board), GetBoardStatus(), timeout=timeout)  # type: ignore[no-any-return]

    def inject_fault(self, board: str, fault: str, *, timeout: float = DEFAULT_ASK_TIMEOUT) -> None:
        """Make ``board`` fail as hardware does (``unplug``); for tests and scenarios."""
        ask(self._board_ref(board), InjectFault(fault=fault), timeout=timeout)

    def reset_board(self, board: str, *, timeout: float = 30.0) -> BoardStatus:
        """An operator's reset: forget restart history and retry (also a quarantined board)."""
        status: BoardStatus = ask(
            self._board_ref(board), ResetBoard(timeout=timeout), timeout=timeout + 1
        )
        return status

    def _board_ref(self, board: str) -> pykka.ActorRef[Any]:
        try:
            return self._boards[board]
        except KeyError:
            raise NoSuchBoardError(
                f"no running board {board!r}; running: {', '.join(self._boards) or 'none'}",
                board=board,
            ) from None

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
        return self._ask(device, Acquire(owner=owner), timeout)  # type: ignore[no-any-return]

    def release(self, lease: Lease, *, timeout: float = DEFAULT_ASK_TIMEOUT) -> int:
        """End ``lease``; returns the device's owners_count after it."""
        return self._ask(_lease(lease).device, Release(lease=lease), timeout)  # type: ignore[no-any-return]

    def open(self, lease: Lease, *, timeout: float = DEFAULT_ASK_TIMEOUT) -> DeviceInfo:
        """Open the device for ``lease``."""
        return self._ask(_lease(lease).device, Open(lease=lease), timeout)  # type: ignore[no-any-return]

    def close(self, lease: Lease, *, timeout: float = DEFAULT_ASK_TIMEOUT) -> DeviceInfo:
        """Close the device for ``lease``."""
        return self._ask(_lease(lease).device, Close(lease=lease), timeout)  # type: ignore[no-any-return]

    def use(
        self,
        lease: Lease,
        op: str,
        args: tuple[Any, ...] = (),
        *,
        timeout: float = DEFAULT_ASK_TIMEOUT,
    ) -> Any:
        """Perform ``op`` on the leased device; waits for board I/O up to ``timeout``."""
        deadline = time.monotonic() + timeout
        result = self._ask(_lease(lease).device, Use(lease=lease, op=op, args=args), timeout)
        if isinstance(result, PendingIO):
            return result.wait(timeout=max(0.0, deadline - time.monotonic()))
        return result

    def info(self, device: DeviceId, *, timeout: float = DEFAULT_ASK_TIMEOUT) -> DeviceInfo:
        """The device's state, policy and owners now."""
        return self._ask(device, GetInfo(), timeout)  # type: ignore[no-any-return]

    def devices(
        self, board: str | None = None, *, timeout: float = DEFAULT_ASK_TIMEOUT
    ) -> list[DeviceInfo]:
        """Every device (of ``board``) with id, kind, state, policy and owners."""
        if board is not None:
            self._board_ref(board)
        entries = ask(self._registry, ListDevices(board=board), timeout=timeout)
        futures = [self._by_urn(e.actor_urn).ask(GetInfo(), block=False) for e in entries]
        deadline = time.monotonic() + timeout
        return [f.get(timeout=max(0.0, deadline - time.monotonic())) for f in futures]

    def subscribe(
        self, *, maxsize: int = 4096, overflow: Overflow = Overflow.DROP_OLDEST
    ) -> Subscription:
        """Events from now on: StateChanged and the others of actorhw.messages."""
        return self.events.subscribe(maxsize=maxsize, overflow=overflow)

    # --- routing ------------------------------------------------------------------------

    def _ask(self, device: DeviceId, message: Any, timeout: float) -> Any:
        _entry, ref = self._route(device, timeout=timeout)
        try:
            return ask(ref, message, timeout=timeout)
        except ActorDeadError:
            self._routes.pop(device, None)
            raise

    def _route(
        self, device: DeviceId, *, timeout: float
    ) -> tuple[RegistryEntry, pykka.ActorRef[Any]]:
        route = self._routes.get(device) if isinstance(device, DeviceId) else None
        if route is not None and route[1].is_alive():
            return route
        entry: RegistryEntry = ask(self._registry_ref(), Lookup(device=device), timeout=timeout)
        ref = pykka.ActorRegistry.get_by_urn(entry.actor_urn)
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

    def _sup(self) -> pykka.ActorRef[Any]:
        if self._supervisor is None or not self._supervisor.is_alive():
            raise RuntimeStoppedError("the runtime is stopped")
        return self._supervisor

    def _registry_ref(self) -> pykka.ActorRef[Any]:
        self._sup()
        return self._registry

    @staticmethod
    def _by_urn(urn: str) -> pykka.ActorRef[Any]:
        ref = pykka.ActorRegistry.get_by_urn(urn)
        if ref is None:
            raise ActorDeadError(f"actor {urn} is not running", actor=urn)
        return ref


def _lease(lease: Any) -> Lease:
    if not isinstance(lease, Lease):
        raise InvalidArgumentError(
            f"expected a Lease, not {type(lease).__name__}", argument="lease"
        )
    return lease
