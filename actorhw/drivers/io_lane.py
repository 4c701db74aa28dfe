"""IOLane: one board's I/O, one exchange at a time, run by its thread or by an idle caller.

Every exchange with a board goes through its lane, strictly one at a time and in the
order submitted.  Work submitted from a device's mailbox or a watch runs on the lane's
own thread and the submitter gets a :class:`PendingIO` to wait on: a mailbox never
waits on the wire.  A caller that would only wait for the answer anyway (an opened
lease's operation in the runtime's fast dispatch, inside :func:`callers_turn`) runs
the work itself when the lane is idle (nothing running, nothing queued): no hop to the
lane's thread and back.  When the lane is busy the caller's work is queued as any other.
"""

from __future__ import annotations

import concurrent.futures
import threading
import time
from collections.abc import Callable
from typing import Any, TypeVar

from actorhw.core.errors import LinkLostError
from actorhw.drivers.board_driver import PendingIO

T = TypeVar("T")
L = TypeVar("L")

__all__ = ["TURN", "CallersTurn", "IOLane", "callers_turn", "in_callers_turn", "op_timeout"]

_monotonic = time.monotonic
_LEAST_S = 0.01
"""The shortest timeout :func:`op_timeout` gives (a deadline already past still gets
one try on the wire, and its TimedOutError)."""


class _Turn(threading.local):
    here = False
    deadline: float | None = None
    """The caller's deadline (``time.monotonic()``) while the runtime's fast dispatch
    performs an operation in the caller's thread; None elsewhere."""


def op_timeout(default: float) -> float:
    """The timeout for one operation's exchange with the board: what is left of the
    caller's deadline when the runtime performs it in the caller's thread (so a caller
    who gave 30 s to a slow board is not cut off at the driver's own bound, and one who
    gave 0.5 s is not held for longer), else ``default``.  Read it where the operation
    is submitted, not inside the work (that may run later, on the lane's thread)."""
    deadline = _turn.deadline
    if deadline is None:
        return default
    left = deadline - _monotonic()
    return left if left > _LEAST_S else _LEAST_S


TURN = _Turn()
"""This thread's turn: ``TURN.here`` is True inside :class:`CallersTurn` (the runtime's
fast dispatch sets and restores it around one call: see :func:`in_callers_turn`)."""
_turn = TURN


class CallersTurn:
    """While entered, a lane's :meth:`IOLane.submit` from this thread runs the work here
    when the lane is idle (its PendingIO comes back done).  Only for a caller that
    waits for the answer itself: never in a mailbox."""

    __slots__ = ("_before",)

    def __enter__(self) -> None:
        self._before = _turn.here
        _turn.here = True

    def __exit__(self, *exc: object) -> None:
        _turn.here = self._before


def callers_turn() -> CallersTurn:
    """A :class:`CallersTurn` for a ``with`` block."""
    return CallersTurn()


def in_callers_turn(work: Callable[..., T], args: tuple[Any, ...]) -> T:
    """``work(*args)`` in this thread's turn (see :class:`CallersTurn`): the one call of
    the runtime's fast dispatch, without a context manager's objects."""
    before = _turn.here
    _turn.here = True
    try:
        return work(*args)
    finally:
        _turn.here = before


class IOLane:
    """One board's serialized I/O: a thread of its own, and callers that may take a turn.

    ``submit(work, link)`` returns a PendingIO of ``work(link)``.  Closed by
    :meth:`shutdown`; a submit after it raises LinkLostError.
    """

    def __init__(self, name: str) -> None:
        self.name = name
        self._running = threading.Lock()  # held while one work item runs, wherever
        self._books = threading.Lock()  # guards _queued and _closed
        self._queued = 0  # submitted to the thread and not started yet
        self._closed = False
        self._items: list[tuple[concurrent.futures.Future[Any], Callable[[Any], Any], Any]] = []
        self._ready = threading.Condition(self._books)
        self._thread = threading.Thread(target=self._serve, name=f"io-{name}", daemon=True)
        self._thread.start()

    @property
    def busy(self) -> bool:
        """Work runs or waits on the lane now."""
        return self._queued > 0 or self._running.locked()

    def submit(self, work: Callable[[L], T], link: L, *, what: str) -> PendingIO:
        """``work(link)`` on the lane; run here if this thread is in its turn and the lane
        is idle, else queued for the lane's thread."""
        if _turn.here and self._running.acquire(blocking=False):
            try:  # this thread's turn, and nothing runs: run it here unless work waits
                if not (self._queued or self._closed):  # (a closed lane fails below)
                    try:
                        return PendingIO.ran(work(link), what=what)
                    except Exception as e:
                        return PendingIO.failed(e, what=what)
            finally:
                self._running.release()
        future: concurrent.futures.Future[T] = concurrent.futures.Future()
        with self._books:
            if self._closed:
                raise LinkLostError(f"{self.name} is not connected", device=self.name)
            self._queued += 1
            self._items.append((future, work, link))
            self._ready.notify()
        return PendingIO(future, what=what)

    def _serve(self) -> None:
        while True:
            with self._books:
                while not self._items and not self._closed:
                    self._ready.wait()
                if not self._items:
                    return
                future, work, link = self._items.pop(0)
            with self._running:
                with self._books:
                    self._queued -= 1
                if not future.set_running_or_notify_cancel():
                    continue
                try:
                    result = work(link)
                except BaseException as e:
                    error: BaseException | None = e
                else:
                    error = None
            # Answered outside the lock: a caller woken by it finds the lane idle.
            if error is None:
                future.set_result(result)
            else:
                future.set_exception(error)
                del error

    def shutdown(self, *, wait: bool = True) -> None:
        """Cancel queued work, let the running item end (close the link first so that a
        read in progress fails), and end the thread."""
        with self._books:
            self._closed = True
            items, self._items = self._items, []
            self._queued -= len(items)
            self._ready.notify_all()
        for future, _work, _link in items:
            future.cancel()
        if wait and threading.current_thread() is not self._thread:
            self._thread.join()
