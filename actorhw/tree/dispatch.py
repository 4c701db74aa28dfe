"""DispatchActor: the one base that answers a message with the handler for its type.

Every actor of the tree keeps a table from message type to handler and answers an
unknown type with :class:`~actorhw.errors.UnsupportedOperationError`; this base holds
that table and the ``on_receive`` that reads it, so no actor writes the dispatch again.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import pykka

from actorhw.core.errors import UnsupportedOperationError

#: A message handler: the message in, the answer (or None for a tell) out.
Handler = Callable[[Any], Any]


class DispatchActor(pykka.ThreadingActor):
    """An actor whose messages go to the handler its table names for their type.

    Subclasses call :meth:`handle` in ``__init__`` with ``{MessageType: handler}`` and
    set :attr:`label` to name themselves in the error for a message they do not take.
    """

    #: How the actor names itself in errors ("registry", "board b1", "b1.uart0").
    label: str = "actor"

    def __init__(self) -> None:
        super().__init__()
        self._handlers: dict[type, Handler] = {}

    def handle(self, handlers: Mapping[type, Handler]) -> None:
        """Add ``handlers`` to the table (a later entry for a type replaces the earlier)."""
        self._handlers.update(handlers)

    def on_receive(self, message: Any) -> Any:
        handler = self._handlers.get(type(message))
        if handler is None:
            raise UnsupportedOperationError(
                f"{self.label}: unexpected message {type(message).__name__}", actor=self.label
            )
        return handler(message)
