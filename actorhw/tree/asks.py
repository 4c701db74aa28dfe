"""Asking an actor with a deadline: the only way actorhw waits on an actor.

Layers above tree/ never touch pykka: they hold :data:`ActorRef` values, send with
:func:`ask` or :func:`ask_later` and wait with :meth:`Pending.wait`, which turn every
pykka timeout or dead actor into an actorhw error naming the target.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterable
from typing import Any, Generic, TypeVar

import pykka

from actorhw.core.errors import ActorDeadError, TimedOutError
from actorhw.core.messages.request import Request
from actorhw.tree import urns
from actorhw.tree.scheduler import NOT_HERE, call_here, stop_here

#: An actor's address, as layers above tree/ hold it.
ActorRef = pykka.ActorRef

#: The answer's type of the request asked.
R = TypeVar("R")

#: The deadline of control asks (ownership, status, registry) unless a caller gives one.
DEFAULT_ASK_TIMEOUT = 5.0


def ask(ref: pykka.ActorRef[Any], message: Request[R], *, timeout: float) -> R:
    """Send ``message`` to ``ref`` and wait at most ``timeout`` s for the answer, of the
    type the request names.

    Raises:
        TimedOutError: no answer in time (the actor is busy or hung).
        ActorDeadError: the actor is not running, or stopped before answering.
        ActorHwError: whatever typed error the actor answered with.

    A scheduled actor (a device) that is idle answers in the caller's thread, still one
    message at a time (see :func:`~actorhw.tree.scheduler.call_here`).
    """
    answer = call_here(ref, message)
    if answer is not NOT_HERE:
        return answer  # type: ignore[no-any-return]
    return Pending(ref, message).wait(timeout=timeout)


def _target(ref: pykka.ActorRef[Any]) -> str:
    return str(ref.actor_class.__name__)


class Pending(Generic[R]):
    """An ask sent without waiting; :meth:`wait` collects its answer within a deadline."""

    __slots__ = ("_future", "_message", "_ref")

    def __init__(self, ref: pykka.ActorRef[Any], message: Request[R]) -> None:
        self._ref, self._message = ref, message
        self._future: Any
        try:
            self._future = ref.ask(message, block=False)
        except pykka.ActorDeadError as e:
            self._future = e

    def wait(self, *, timeout: float) -> R:
        """The answer, within ``timeout`` s (errors as :func:`ask` raises them)."""
        name = type(self._message).__name__
        try:
            if isinstance(self._future, pykka.ActorDeadError):
                raise self._future
            answer: R = self._future.get(timeout=max(0.0, timeout))
            return answer
        except pykka.Timeout as e:
            raise TimedOutError(
                f"{name} to {_target(self._ref)}: no answer within {timeout:.3g} s",
                operation=name,
                timeout=timeout,
            ) from e
        except pykka.ActorDeadError as e:
            raise ActorDeadError(
                f"{_target(self._ref)} is not running ({e})", actor=self._ref.actor_urn
            ) from e


class _Raised:
    __slots__ = ("error",)

    def __init__(self, error: Exception) -> None:
        self.error = error


def ask_now(ref: pykka.ActorRef[Any], message: Request[R]) -> R | None:
    """``message``'s answer if ``ref``'s actor is a scheduled one (a device) that is idle:
    handled at once in this thread, one message at a time as any (see
    :func:`~actorhw.tree.scheduler.call_here`); None when it is busy, not scheduled or
    not running, and nothing was sent (then :func:`ask`).  Never waits: for requests
    whose handler never blocks and whose answer is never None, asked from a thread that
    must not block (an event loop's)."""
    answer = call_here(ref, message)
    return None if answer is NOT_HERE else answer


def ask_later(ref: pykka.ActorRef[Any], message: Request[R]) -> Pending[R]:
    """Send ``message`` now; wait for the answer later with ``Pending.wait(timeout=)``."""
    return Pending(ref, message)


def ask_each(refs: Iterable[pykka.ActorRef[Any]], message: Request[Any], *, timeout: float) -> None:
    """Ask every actor of ``refs`` the same ``message`` and wait for all the answers
    within one deadline of ``timeout`` s: each as :func:`ask` would (an idle scheduled
    actor handles it at once in this thread; the others get it in their mailboxes and
    are waited for after), with no Pending for those answered here (a board moves its
    20 devices through three transitions as it comes up; 1,000 boards, 60,000 moves).

    The answers are not kept.  The first error, in the order of ``refs``, is raised
    when its turn to be collected comes; an actor that is not running (or stopped
    before answering) is skipped.
    """
    answers: list[Any] = []
    for ref in refs:
        try:
            answer = call_here(ref, message)
        except Exception as e:
            answer = _Raised(e)
        answers.append(Pending(ref, message) if answer is NOT_HERE else answer)
    deadline = time.monotonic() + timeout
    for answer in answers:
        if type(answer) is Pending:
            try:
                answer.wait(timeout=max(0.0, deadline - time.monotonic()))
            except ActorDeadError:
                continue
        elif type(answer) is _Raised and not isinstance(answer.error, ActorDeadError):
            raise answer.error


def by_urn(urn: str) -> pykka.ActorRef[Any] | None:
    """The running actor of the tree with this urn, or None (O(1): see tree.urns)."""
    return urns.find(urn)


def running_actors() -> list[pykka.ActorRef[Any]]:
    """Every actor running in this process (for leak checks)."""
    return urns.running()


def tell_if_alive(ref: pykka.ActorRef[Any], message: Any) -> None:
    """Tell ``message``, unless the actor already stopped (a timer or I/O thread that
    ends after its actor did): then the message has no one left to matter to."""
    with contextlib.suppress(pykka.ActorDeadError):
        ref.tell(message)


def stop_all(refs: Iterable[pykka.ActorRef[Any]], *, timeout: float) -> None:
    """Ask every actor in ``refs`` to stop, all at once, and wait until each has run its
    on_stop (or ``timeout`` s pass in all).  An idle scheduled actor (a device) stops
    in the caller's thread (see :func:`~actorhw.tree.scheduler.stop_here`)."""
    futures = [ref.stop(block=False) for ref in refs if not stop_here(ref)]
    deadline = time.monotonic() + timeout
    for future in futures:
        try:
            future.get(timeout=max(0.0, deadline - time.monotonic()))
        except pykka.Timeout:
            continue
