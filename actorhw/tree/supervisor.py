"""SupervisorActor: the root of the tree; starts, watches, restarts and stops children.

Children are the core services (the registry first; other services after it) and one
actor per board.  Each has a stable name (``registry``, ``board:<instance>``) that
callers resolve with :class:`~actorhw.messages.Resolve`; a restart gives the name a new
actor, never a new name.  Strategies: rest_for_one for the core services (a service
restarts with every service started after it, and boards re-register with a new
registry); one_for_one for boards, whose leases carry over the restart.  Restart
intensity at the root guards the core services: at most ``ROOT_INTENSITY`` restarts of
them in ``ROOT_WINDOW`` s, beyond which the supervisor gives up and stops the tree (a
``root_gave_up`` event says so).  Each board has its own intensity (the boards'
RecoveryPolicy): a board actor that crashes past it is **quarantined** on its own, no
actor started, its status posted as quarantined and its leases kept, until an operator's
reset (:class:`~actorhw.messages.ReviveBoard`); the other boards work on.
"""

from __future__ import annotations

import time
from typing import Any

import attrs
import pykka

from actorhw.core.errors import (
    ActorDeadError,
    DeviceUnavailableError,
    InvalidArgumentError,
    NoSuchBoardError,
)
from actorhw.core.events import EventBus
from actorhw.core.lifecycle import DeviceState
from actorhw.core.log import logger
from actorhw.core.messages import (
    BoardEvent,
    ChildCrashed,
    DeviceSnapshot,
    GetTree,
    PrepareStop,
    Release,
    Reregister,
    Resolve,
    Revive,
    ReviveBoard,
    StartBoard,
    Tree,
    Unregister,
)
from actorhw.core.recovery import RecoveryPolicy, RestartTracker
from actorhw.drivers.definitions import BoardCatalog
from actorhw.drivers.plugins import DriverCatalog
from actorhw.tree.asks import stop_all, tell_if_alive
from actorhw.tree.board import BoardActor
from actorhw.tree.device_supervision import release_from
from actorhw.tree.dispatch import DispatchActor
from actorhw.tree.limiter import OperationLimiterActor
from actorhw.tree.monitor import ResourceMonitorActor
from actorhw.tree.registry import RegistryActor
from actorhw.tree.status_book import StatusBook
from actorhw.tree.supervision import ChildSpec, CrashWatcher, Restart, report_to

#: Seconds a child may take to stop before the supervisor stops waiting for it.
STOP_TIMEOUT = 5.0
#: Restarts allowed at the root within ROOT_WINDOW s; one more and the tree stops.
ROOT_INTENSITY = 3
ROOT_WINDOW = 60.0
#: Seconds a restarted board may take to come back up before recovery takes over.
REVIVE_TIMEOUT = 30.0


class SupervisorActor(DispatchActor):
    """The root of the tree."""

    label = "supervisor"

    def __init__(
        self,
        *,
        boards: BoardCatalog,
        drivers: DriverCatalog,
        events: EventBus,
        intensity: RecoveryPolicy | None = None,
        recovery: RecoveryPolicy | None = None,
        statuses: StatusBook | None = None,
    ) -> None:
        super().__init__()
        self._statuses = statuses
        self._catalog = boards
        self._drivers = drivers
        self._events = events
        self._recovery = recovery
        self._tracker = RestartTracker(
            intensity or RecoveryPolicy(max_restarts=ROOT_INTENSITY, window=ROOT_WINDOW)
        )
        # The core services, in start order (rest_for_one): the registry first; more
        # services (the operation limiter, the resource monitor) are appended after it.
        self._core: list[ChildSpec] = [
            ChildSpec(
                name="registry", start=lambda w, s: RegistryActor.start_watched(w, entries=s or ())
            ),
            # Resources (issue 5); not SupervisedActors yet, so a crash is not reported.
            ChildSpec(
                name="limiter", start=lambda _w, _s: OperationLimiterActor.start(events=events)
            ),
            ChildSpec(
                name="monitor",
                start=lambda _w, _s: ResourceMonitorActor.start(
                    events=events, registry=self._refs["registry"]
                ),
            ),
        ]
        self._boards: dict[str, ChildSpec] = {}
        self._refs: dict[str, pykka.ActorRef[Any]] = {}
        self._stop_timeout = STOP_TIMEOUT  # the runtime's stop deadline (PrepareStop)
        self._restarts: dict[str, int] = {}
        self._board_trackers: dict[str, RestartTracker] = {}
        # Boards quarantined here: why, and the leases their next actor starts with.
        self._quarantined: dict[str, tuple[str, tuple[DeviceSnapshot, ...]]] = {}
        self.handle(
            {
                StartBoard: self._start_board,
                GetTree: self._tree,
                Resolve: self._resolve,
                ChildCrashed: self._child_crashed,
                ReviveBoard: self._revive_board,
                Release: self._release,
                PrepareStop: self._prepare_stop,
            }
        )

    # --- start and stop --------------------------------------------------------------

    def add_core(self, spec: ChildSpec) -> None:
        """Add a core service after the registry (call before the tree serves callers)."""
        self._core.append(spec)
        self._start(spec, None)

    def on_start(self) -> None:
        for spec in self._core:
            self._start(spec, None)

    def on_stop(self) -> None:
        self._stop_children()

    def on_failure(self, *_exc_info: object) -> None:
        self._stop_children()

    def _prepare_stop(self, message: PrepareStop) -> None:
        self._stop_timeout = max(STOP_TIMEOUT, message.timeout)

    def _stop_children(self) -> None:
        deadline = time.monotonic() + self._stop_timeout
        boards = reversed([self._refs[f"board:{b}"] for b in self._boards])
        stop_all(boards, timeout=self._stop_timeout)
        left = max(STOP_TIMEOUT, deadline - time.monotonic())
        stop_all(reversed([self._refs[s.name] for s in self._core]), timeout=left)

    def _start(self, spec: ChildSpec, snapshot: Any) -> pykka.ActorRef[Any]:
        ref = spec.start(report_to(self.actor_ref, spec.name), snapshot)
        self._refs[spec.name] = ref
        return ref

    # --- boards ----------------------------------------------------------------------

    def _start_board(self, message: StartBoard) -> str:
        if message.board in self._boards:
            raise InvalidArgumentError(
                f"a board named {message.board!r} is already running",
                argument="board",
                value=message.board,
            )
        definition = self._catalog.get(message.definition)
        driver = self._drivers.for_board(definition)
        ids = definition.ids(message.board)

        def start(watcher: CrashWatcher, snapshot: Any) -> pykka.ActorRef[Any]:
            restore: tuple[DeviceSnapshot, ...] = snapshot if isinstance(snapshot, tuple) else ()
            return BoardActor.start_watched(
                watcher,
                name=message.board,
                definition=definition,
                ids=ids,
                driver_class=driver,
                registry=self._refs["registry"],
                events=self._events,
                policy=self._recovery,
                restore=restore,
                statuses=self._statuses,
                options=dict(message.options),
                ask_timeout=message.timeout,
            )

        spec = ChildSpec(name=f"board:{message.board}", start=start)
        self._boards[message.board] = spec
        return str(self._start(spec, None).actor_urn)

    # --- crashes and restarts --------------------------------------------------------

    def _child_crashed(self, message: ChildCrashed) -> None:
        spec = self._spec(message.name)
        if spec is None:
            return
        self._publish(message.name, "actor_crashed", message.error)
        if spec.restart is Restart.TEMPORARY:
            return
        if spec in self._core:
            if self._tracker.exhausted():
                self._give_up(message)
                return
            self._tracker.record()
            self._rest_for_one(spec, message)
        else:
            board = message.name.removeprefix("board:")
            tracker = self._board_trackers.setdefault(
                board, RestartTracker(self._recovery or RecoveryPolicy())
            )
            if tracker.exhausted():
                self._quarantine(board, message)
                return
            tracker.record()
            ref = self._start(spec, message.snapshots)
            ref.tell(Revive(timeout=REVIVE_TIMEOUT))
        self._restarts[message.name] = self._restarts.get(message.name, 0) + 1
        self._publish(message.name, "actor_restarted", message.error)

    def _give_up(self, message: ChildCrashed) -> None:
        reason = (
            f"{self._tracker.policy.max_restarts} restarts in "
            f"{self._tracker.policy.window:g} s of the core services at the root; the "
            f"last: {message.name} "
            f"crashed with {message.error}; stopping the tree"
        )
        logger.critical("supervisor gives up: {}", reason)
        self._stop_children()  # before the event: whoever hears it finds all stopped
        self._publish(message.name, "root_gave_up", reason)
        self.actor_ref.stop(block=False)

    # --- quarantined boards ------------------------------------------------------------

    def _quarantine(self, board: str, message: ChildCrashed) -> None:
        """A board actor past its intensity: left down, on its own; the tree goes on."""
        p = self._board_trackers[board].policy
        reason = (
            f"board {board} quarantined: its actor had {p.max_restarts} restarts in "
            f"{p.window:g} s and crashed again ({message.error}); "
            f"rt.reset_board({board!r}) retries it"
        )
        self._quarantined[board] = (reason, message.snapshots)
        tell_if_alive(self._refs["registry"], Unregister(board=board))  # no actor serves it
        last = self._statuses.get(board) if self._statuses is not None else None
        if last is not None and self._statuses is not None:
            self._statuses.post(
                attrs.evolve(last, state=DeviceState.DISCONNECTED, reason=reason, quarantined=True)
            )
        logger.error("{}", reason)
        self._publish(f"board:{board}", "quarantined", reason)

    def _revive_board(self, message: ReviveBoard) -> str:
        """An operator's reset of a quarantined board: its actor starts again (it comes
        up on the ResetBoard the caller sends it next), with a fresh restart budget."""
        board = message.board
        if board not in self._boards:
            raise NoSuchBoardError(f"no running board {board!r}", board=board)
        if board in self._quarantined:
            _reason, snapshots = self._quarantined.pop(board)
            self._board_trackers.pop(board, None)
            self._start(self._boards[board], snapshots)
            self._publish(f"board:{board}", "actor_restarted", "revived by an operator's reset")
        return str(self._refs[f"board:{board}"].actor_urn)

    def _release(self, message: Release) -> int:
        """A release of a lease on a quarantined board: kept for its next actor no more."""
        board = type(message.lease.device).board
        if board not in self._quarantined:
            raise ActorDeadError(f"board {board} is not quarantined: release through it")
        reason, snapshots = self._quarantined[board]
        name = message.lease.device.name
        snapshot = next((s for s in snapshots if s.name == name), None)
        kept, left = release_from(snapshot, message.lease)
        others = tuple(s for s in snapshots if s.name != name)
        self._quarantined[board] = (reason, others if kept is None else (*others, kept))
        return left

    def _rest_for_one(self, failed: ChildSpec, message: ChildCrashed) -> None:
        """Restart ``failed`` and every core service started after it, in order."""
        later = self._core[self._core.index(failed) :]
        stop_all(
            reversed([self._refs[s.name] for s in later[1:] if s.name in self._refs]),
            timeout=STOP_TIMEOUT,
        )
        for spec in later:
            self._start(spec, message.entries if spec is failed else None)
        registry = self._refs["registry"]
        for name in self._boards:
            board = self._refs.get(f"board:{name}")
            if board is not None and board.is_alive():
                board.tell(Reregister(registry_urn=registry.actor_urn))

    def _spec(self, name: str) -> ChildSpec | None:
        for spec in self._core:
            if spec.name == name:
                return spec
        return self._boards.get(name.removeprefix("board:"))

    def _publish(self, name: str, what: str, reason: str) -> None:
        self._events.publish(
            BoardEvent(
                board=name.removeprefix("board:"),
                what=what,
                reason=reason,
                attempt=self._restarts.get(name, 0) + 1,
                at=time.time(),
            )
        )

    # --- questions -------------------------------------------------------------------

    def _resolve(self, message: Resolve) -> str:
        board = message.name.removeprefix("board:")
        if message.name.startswith("board:") and board in self._quarantined:
            reason = self._quarantined[board][0]
            raise DeviceUnavailableError(
                reason, device=board, state="QUARANTINED", reason=reason, since=time.time()
            )
        ref = self._refs.get(message.name)
        if ref is None:
            if message.name.startswith("board:"):
                board = message.name.removeprefix("board:")
                raise NoSuchBoardError(
                    f"no running board {board!r}; running: {', '.join(self._boards) or 'none'}",
                    board=board,
                )
            raise InvalidArgumentError(
                f"no child named {message.name!r}", argument="name", value=message.name
            )
        return str(ref.actor_urn)

    def _tree(self, _message: GetTree) -> Tree:
        return Tree(
            registry_urn=self._refs["registry"].actor_urn,
            boards=tuple((n, self._refs[f"board:{n}"].actor_urn) for n in self._boards),
            monitor_urn=self._refs["monitor"].actor_urn,
            limiter_urn=self._refs["limiter"].actor_urn,
        )
