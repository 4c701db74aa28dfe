"""DispatchActor: the one base that answers a message with the handler for its type.

Every actor of the tree keeps a table from message type to handler and answers an
unknown type with `UnsupportedOperationError`; this base holds
that table and the ``on_receive`` that reads it, so no actor writes the dispatch again.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, ClassVar

import pykka

from actorhw.core.errors import UnsupportedOperationError
from actorhw.tree import urns

#: A message handler: the message in, the answer (or None for a tell) out.
Handler = Callable[[Any], Any]


#: The table of an actor whose class names its handlers (`methods`): shared, never written.
_NO_HANDLERS: dict[type, Handler] = {}


class DispatchActor(pykka.ThreadingActor):
    """An actor whose messages go to the handler its table names for their type.

    Subclasses call `handle()` in ``__init__`` with ``{MessageType: handler}`` and
    set `label` to name themselves in the error for a message they do not take.
    An actor class with many instances (20,000 devices) may instead name its handlers
    once for the class in `methods`, ``{MessageType: function(self, message)}``,
    so that no instance carries a table of bound methods.
    """

    #: How the actor names itself in errors ("registry", "board b1", "b1.uart0").
    label: str = "actor"

    #: Handlers of the class: message type -> function(actor, message).
    methods: ClassVar[Mapping[type, Callable[[Any, Any], Any]]] = {}

    def __init__(self) -> None:
        self._init_pykka()
        self._handlers: dict[type, Handler] = _NO_HANDLERS  # a table of its own at handle()
        urns.remember(self.actor_ref)  # found by URN in O(1), not by pykka's scan

    def _init_pykka(self) -> None:
        """pykka's own Actor.__init__ (a scheduled actor makes a slimmer one)."""
        super().__init__()

    def handle(self, handlers: Mapping[type, Handler]) -> None:
        """Add ``handlers`` to the table (a later entry for a type replaces the earlier)."""
        if self._handlers is _NO_HANDLERS:
            self._handlers = {}
        self._handlers.update(handlers)

    def _handle_receive(self, message: Any) -> Any:
        # A message of a type in the tables goes straight to its handler; pykka's own
        # checks (stop, proxy calls) only for the rest: 60,000 transitions at start.
        kind = type(message)
        handler = self._handlers.get(kind)
        if handler is not None:
            return handler(message)
        method = self.methods.get(kind)
        if method is not None:
            return method(self, message)
        return super()._handle_receive(message)

    def on_receive(self, message: Any) -> Any:
        handler = self._handlers.get(type(message))
        if handler is not None:
            return handler(message)
        method = self.methods.get(type(message))
        if method is not None:
            return method(self, message)
        raise UnsupportedOperationError(
            f"{self.label}: unexpected message {type(message).__name__}", actor=self.label
        )
