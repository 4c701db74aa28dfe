"""StatusBook: every board's latest status, readable at once while its actor works.

A board's actor runs its driver's blocking hooks (a command, a connect, a recovery step)
in its own mailbox, so a status question sent there would wait for the wire.  Instead
the actor posts its :class:`~actorhw.messages.BoardStatus` here whenever it changes
(before the blocking work starts: ACTIVE is visible while a command runs), and callers
read it without a message.  Only a board's actor, or its supervisor while the actor is
down, posts a board's status; anyone may read it or wait for a status to come.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

from actorhw.core.lifecycle import DeviceState
from actorhw.core.messages import BoardStatus


class StatusBook:
    """The latest status of each board, by instance name."""

    def __init__(self) -> None:
        self._changed = threading.Condition()
        self._statuses: dict[str, BoardStatus] = {}

    def post(self, status: BoardStatus) -> None:
        """Record ``status`` as its board's latest; wakes whoever waits on the board."""
        with self._changed:
            if self._statuses.get(status.board) != status:
                self._statuses[status.board] = status
                self._changed.notify_all()

    def get(self, board: str) -> BoardStatus | None:
        """The board's latest status (None: its actor has not posted one yet)."""
        with self._changed:
            return self._statuses.get(board)

    def wait_for(
        self, board: str, predicate: Callable[[BoardStatus], bool], *, timeout: float
    ) -> BoardStatus | None:
        """The board's first status (the present one included) that ``predicate``
        accepts, within ``timeout`` s; None if none came (see :meth:`get` for the last)."""
        deadline = time.monotonic() + timeout
        with self._changed:
            while True:
                status = self._statuses.get(board)
                if status is not None and predicate(status):
                    return status
                left = deadline - time.monotonic()
                if left <= 0:
                    return None
                self._changed.wait(left)


class PostsStatus:
    """A board actor's part that posts its status to the book as it changes (a mixin):
    assigning ``_state`` or ``_reason`` posts at once, so status questions answer also
    while a blocking driver hook runs."""

    _book: StatusBook | None = None
    _posting = False  # on once the status can be built

    def _status(self) -> BoardStatus:
        raise NotImplementedError

    @property
    def _state(self) -> DeviceState:
        return self._state_now

    @_state.setter
    def _state(self, state: DeviceState) -> None:
        self._state_now = state
        self._post()

    @property
    def _reason(self) -> str:
        return self._reason_now

    @_reason.setter
    def _reason(self, reason: str) -> None:
        self._reason_now = reason
        self._post()

    def _set_status(self, state: DeviceState, reason: str) -> None:
        """State and reason at once: one post, never a state with the old reason."""
        self._state_now, self._reason_now = state, reason
        self._post()

    def _post(self) -> None:
        if self._book is not None and self._posting:
            self._book.post(self._status())
