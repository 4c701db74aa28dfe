"""RuntimeRoutes: where a Runtime's calls go. The actor refs it holds, found again by stable
name after a restart, and the retried ask to a device's actor. The base of
`Runtime`; callers use the Runtime.
"""

from __future__ import annotations

import threading
import time
from typing import Any, TypeVar

from actorhw.api.limiter import OperationLimiter
from actorhw.api.monitor import ResourceMonitor
from actorhw.core.errors import (
    ActorDeadError,
    DeviceUnavailableError,
    InvalidArgumentError,
    NoSuchBoardError,
    RuntimeStoppedError,
)
from actorhw.core.events import EventBus
from actorhw.core.ids import DeviceId
from actorhw.core.messages import (
    Lease,
    Lookup,
    RegistryEntry,
    Request,
    Resolve,
)
from actorhw.core.suggest import did_you_mean
from actorhw.drivers.definitions import BoardCatalog
from actorhw.tree.asks import DEFAULT_ASK_TIMEOUT, ActorRef, ask, by_urn
from actorhw.tree.status_book import StatusBook

R = TypeVar("R")


class RuntimeRoutes:
    """A Runtime's actor refs and how calls reach them (the base of `Runtime`)."""

    catalog: BoardCatalog
    events: EventBus
    _stopped: threading.Event
    _supervisor: ActorRef[Any] | None
    _registry: ActorRef[Any]
    _core: dict[str, ActorRef[Any]]
    _boards: dict[str, ActorRef[Any] | None]
    _routes: dict[DeviceId, ActorRef[Any]]
    _entries: dict[DeviceId, RegistryEntry]
    _statuses: StatusBook

    @property
    def monitor(self) -> ResourceMonitor:
        """Board resources, history, thresholds, allocations (docs/resources.md)."""
        return ResourceMonitor(self._core_ref("monitor"))

    @property
    def limiter(self) -> OperationLimiter:
        """Admits every device operation: limits, priorities, preemption, timeouts."""
        return OperationLimiter(self._core_ref("limiter"))

    #: The limiter's facade and its actor, kept while that actor runs (see _limiter_now).
    _limiter_pair: tuple[ActorRef[Any], OperationLimiter] | None = None

    def _limiter_now(self) -> OperationLimiter:
        """`limiter`, without a new facade per call while the limiter's actor runs."""
        pair = self._limiter_pair
        if pair is None or pair[0].actor_stopped.is_set():  # (is_alive, one call less)
            ref = self._core_ref("limiter")
            pair = self._limiter_pair = (ref, OperationLimiter(ref))
        return pair[1]

    def _core_ref(self, name: str) -> ActorRef[Any]:
        """A core service's actor now: after a restart, its successor by stable name."""
        ref = self._core[name] = self._live(name, self._core[name])
        return ref

    def _known(self, board: str) -> None:
        if board not in self._boards:
            raise NoSuchBoardError(
                f"no running board {board!r}{did_you_mean(board, self._boards)}; "
                f"running: {', '.join(self._boards) or 'none'}",
                board=board,
            )

    def _board_ref(self, board: str) -> ActorRef[Any]:
        """The board's actor now: a crashed one's successor is found by its stable name."""
        self._known(board)
        ref = self._boards[board] = self._live(f"board:{board}", self._boards[board])
        return ref

    def _ask(
        self,
        device: DeviceId,
        message: Request[R],
        timeout: float,
        ref: ActorRef[Any] | None = None,
    ) -> R:
        """Ask the device's actor (``ref``, if the caller found its route already)."""
        deadline = time.monotonic() + timeout
        if ref is None:
            ref = self._routes.get(device) if isinstance(device, DeviceId) else None
            if ref is None or ref.actor_stopped.is_set():  # (is_alive, one call less)
                ref = self._route(device, timeout=timeout)[1]
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
        """The device's registry entry and its actor now: the cached route while that
        actor runs, else asked of the registry (and cached).

        The cache keeps the actor's ref alone in `_routes`, the one dict a warm call
        reads (its entry beside, in `_entries`): a call touches the id, a slot of one
        dict and the ref, not a tuple more, so among 2,000 devices (their routes out of
        the CPU's caches) it costs about what it does among 20."""
        ref = self._routes.get(device) if isinstance(device, DeviceId) else None
        if ref is not None and ref.is_alive():
            known = self._entries.get(device)
            if known is not None:
                return known, ref
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
        self._routes[device] = ref
        self._entries[device] = entry
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


def lease_of(lease: Any) -> Lease:
    if not isinstance(lease, Lease):
        raise InvalidArgumentError(
            f"expected a Lease, not {type(lease).__name__}", argument="lease"
        )
    return lease


def quarantined(error: DeviceUnavailableError) -> bool:
    """Whether ``error`` says the supervisor quarantined the board's actor."""
    return error.state == "QUARANTINED"
