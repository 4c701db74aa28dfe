"""SupervisorActor: owns the actor tree and starts, watches and stops its children.

It starts the registry first and the board actors after it, and stops them in reverse
order.  Children are named to callers by URN through the registry, never by reference.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pykka

from actorhw.asks import stop_all
from actorhw.board import BoardActor
from actorhw.boards import BoardCatalog
from actorhw.errors import InvalidArgumentError, UnsupportedOperationError
from actorhw.events import EventBus
from actorhw.messages import GetTree, StartBoard, Tree
from actorhw.plugins import DriverCatalog
from actorhw.registry import RegistryActor

#: Seconds a child may take to stop before the supervisor stops waiting for it.
STOP_TIMEOUT = 5.0


class SupervisorActor(pykka.ThreadingActor):
    """The root of the tree."""

    def __init__(self, *, boards: BoardCatalog, drivers: DriverCatalog, events: EventBus) -> None:
        super().__init__()
        self._catalog = boards
        self._drivers = drivers
        self._events = events
        self._registry: pykka.ActorRef[Any] | None = None
        self._boards: dict[str, pykka.ActorRef[Any]] = {}
        self._handlers: dict[type, Callable[[Any], Any]] = {
            StartBoard: self._start_board,
            GetTree: self._tree,
        }

    def on_start(self) -> None:
        self._registry = RegistryActor.start()

    def on_stop(self) -> None:
        self._stop_children()

    def on_failure(self, *_exc_info: object) -> None:
        self._stop_children()

    def _stop_children(self) -> None:
        stop_all(reversed(self._boards.values()), timeout=STOP_TIMEOUT)
        if self._registry is not None:
            stop_all([self._registry], timeout=STOP_TIMEOUT)

    def on_receive(self, message: Any) -> Any:
        handler = self._handlers.get(type(message))
        if handler is None:
            raise UnsupportedOperationError(
                f"supervisor: unexpected message {type(message).__name__}"
            )
        return handler(message)

    def _start_board(self, message: StartBoard) -> str:
        if message.board in self._boards:
            raise InvalidArgumentError(
                f"a board named {message.board!r} is already running", board=message.board
            )
        definition = self._catalog.get(message.definition)
        driver = self._drivers.get(definition.driver)
        ids = definition.ids(message.board)
        assert self._registry is not None
        ref = BoardActor.start(
            name=message.board,
            definition=definition,
            ids=ids,
            driver_class=driver,
            registry=self._registry,
            events=self._events,
        )
        self._boards[message.board] = ref
        return str(ref.actor_urn)

    def _tree(self, _message: GetTree) -> Tree:
        assert self._registry is not None
        return Tree(
            registry_urn=self._registry.actor_urn,
            boards=tuple((n, r.actor_urn) for n, r in self._boards.items()),
        )
