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
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import attrs

from actorhw.api.manager import DeviceDriverManager
from actorhw.api.runtime_boards import RuntimeBoards
from actorhw.api.runtime_devices import RuntimeDevices
from actorhw.core.collector import BULK_DEVICES, collector_paused
from actorhw.core.errors import (
    ActorDeadError,
    ActorHwError,
    BoardsNotConnectedError,
    InvalidArgumentError,
)
from actorhw.core.events import EventBus, Overflow, Subscription
from actorhw.core.ids import DeviceId
from actorhw.core.lifecycle import DeviceState
from actorhw.core.log import logger
from actorhw.core.messages import (
    BoardStatus,
    BringUp,
    GetTree,
    PrepareStop,
    RegistryEntry,
    StartBoard,
)
from actorhw.core.recovery import RecoveryPolicy
from actorhw.drivers.definitions import BoardCatalog
from actorhw.drivers.plugins import DriverCatalog
from actorhw.tree.asks import DEFAULT_ASK_TIMEOUT, ActorRef, ask, ask_later, by_urn
from actorhw.tree.scheduler import join_retired_workers
from actorhw.tree.status_book import StatusBook
from actorhw.tree.supervisor import STOP_TIMEOUT, SupervisorActor


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


class Runtime(RuntimeBoards, RuntimeDevices):
    """The facade of a running actor tree. Build it with `start()`."""

    def __init__(
        self,
        *,
        catalog: BoardCatalog,
        drivers: DriverCatalog,
        recovery: RecoveryPolicy | None = None,
        timeout: float = DEFAULT_ASK_TIMEOUT,
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
        tree = ask(self._supervisor, GetTree(), timeout=max(DEFAULT_ASK_TIMEOUT, timeout))
        self._registry = self._by_urn(tree.registry_urn)
        self._core: dict[str, ActorRef[Any]] = {
            "monitor": self._by_urn(tree.monitor_urn),
            "limiter": self._by_urn(tree.limiter_urn),
        }
        self._boards: dict[str, ActorRef[Any] | None] = {}
        # id -> (entry, ref): a cache of registry answers, refreshed when a ref dies.
        self._routes: dict[DeviceId, ActorRef[Any]] = {}
        self._entries: dict[DeviceId, RegistryEntry] = {}
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
            timeout=timeout,
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

        From 1,000 devices at once, Python's cyclic garbage collector is paused until
        they are up (``actorhw.core.collector``: it would rescan them again and again
        as they pile up, and find nothing to free); it runs as usual after.

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
        devices = 0
        for spec in specs:  # refused before any board starts, as the supervisor would
            definition = self.catalog.get(spec.definition)
            self.drivers.for_board(definition)
            devices += len(definition.devices)
        # Thousands of devices are built at once: the collector would rescan them all
        # again and again as they pile up, and find nothing to free (see core.collector).
        with collector_paused(devices >= BULK_DEVICES):
            return self._start_boards(specs, names, timeout=timeout)

    def _start_boards(
        self, specs: list[BoardSpec], names: list[str], *, timeout: float
    ) -> list[BoardStatus]:
        # Every StartBoard is sent at once and the answers collected after: the
        # supervisor starts board after board without a round trip to this thread each.
        sup = self._sup()
        starting = [
            ask_later(
                sup,
                StartBoard(
                    board=name,
                    definition=spec.definition,
                    options=spec.instance_options(),
                    timeout=timeout,
                ),
            )
            for spec, name in zip(specs, names, strict=True)
        ]
        deadline = time.monotonic() + max(DEFAULT_ASK_TIMEOUT, timeout)
        started = []
        refused: ActorHwError | None = None
        for name, answer in zip(names, starting, strict=True):
            try:
                urn = answer.wait(timeout=max(0.0, deadline - time.monotonic()))
            except ActorHwError as e:
                refused = refused or e
                continue
            # None: it crashed already as it started; its successor is resolved by name.
            self._boards[name] = by_urn(urn)
            started.append((name, self._boards[name]))
        if refused is not None:
            raise refused
        names = [name for name, _ref in started]
        pending = [
            None if ref is None else ask_later(ref, BringUp(timeout=timeout)) for _n, ref in started
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
            # The supervisor gives its children the caller's deadline, not its default.
            with contextlib.suppress(ActorHwError):
                ask(sup, PrepareStop(timeout=timeout), timeout=timeout)
            sup.stop(block=True, timeout=max(0.0, deadline - time.monotonic()))
            # The device actors' shared workers retire with the last actor; wait for them
            # so a stopped runtime leaves no thread behind.
            join_retired_workers(timeout=max(0.0, deadline - time.monotonic()))

    def __enter__(self) -> Runtime:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def running(self) -> bool:
        """Whether the tree is up."""
        return self._supervisor is not None and self._supervisor.is_alive()

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
