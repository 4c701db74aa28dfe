"""Asking an actor with a deadline: the only way actorhw waits on an actor."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterable
from typing import Any

import pykka

from actorhw.errors import ActorDeadError, TimedOutError

#: The deadline of control asks (ownership, status, registry) unless a caller gives one.
DEFAULT_ASK_TIMEOUT = 5.0


def ask(ref: pykka.ActorRef[Any], message: Any, *, timeout: float) -> Any:
    """Send ``message`` to ``ref`` and wait at most ``timeout`` s for the answer.

    Raises:
        TimedOutError: no answer in time (the actor is busy or hung).
        ActorDeadError: the actor is not running, or stopped before answering.
        ActorHwError: whatever typed error the actor answered with.
    """
    try:
        return ref.ask(message, timeout=timeout)
    except pykka.Timeout as e:
        raise TimedOutError(
            f"{type(message).__name__} to {ref.actor_class.__name__}: "
            f"no answer within {timeout:.3g} s",
            operation=type(message).__name__,
            timeout=timeout,
        ) from e
    except pykka.ActorDeadError as e:
        raise ActorDeadError(
            f"{ref.actor_class.__name__} is not running ({e})", actor=ref.actor_urn
        ) from e


def tell_if_alive(ref: pykka.ActorRef[Any], message: Any) -> None:
    """Tell ``message``, unless the actor already stopped (a timer or I/O thread that
    ends after its actor did): then the message has no one left to matter to."""
    with contextlib.suppress(pykka.ActorDeadError):
        ref.tell(message)


def stop_all(refs: Iterable[pykka.ActorRef[Any]], *, timeout: float) -> None:
    """Ask every actor in ``refs`` to stop, all at once, and wait until each has run its
    on_stop (or ``timeout`` s pass in all)."""
    futures = [ref.stop(block=False) for ref in refs]
    deadline = time.monotonic() + timeout
    for future in futures:
        try:
            future.get(timeout=max(0.0, deadline - time.monotonic()))
        except pykka.Timeout:
            continue
