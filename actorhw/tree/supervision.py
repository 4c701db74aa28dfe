"""Supervision for pykka actors: crash reports, child specs and restart intensity.

pykka has no supervision.  A :class:`SupervisedActor` reports its own crash to the
parent that started it, whether the exception came from ``on_start`` (where pykka calls
no ``on_failure``) or from a message handled without a reply (a tell).  The parent
restarts the child from its :class:`ChildSpec` under the same stable name, as Erlang/OTP
and Akka supervisors do: one_for_one for devices and boards, rest_for_one for the core
services.  Exceptions in asks go back to the caller and are not crashes.
"""

from __future__ import annotations

import enum
import threading
import traceback
from collections.abc import Callable
from typing import Any

import attrs
import pykka

from actorhw.core.errors import ActorHwError, Field
from actorhw.core.log import logger
from actorhw.core.messages import ChildCrashed, DeviceSnapshot, RegistryEntry
from actorhw.tree.asks import tell_if_alive
from actorhw.tree.dispatch import DispatchActor

#: Called from the crashing actor's thread with (error, snapshot of its state or None).
CrashWatcher = Callable[[BaseException, Any], None]

_pending = threading.local()


class Restart(enum.Enum):
    """When a child is restarted (Erlang/OTP's restart types)."""

    PERMANENT = "permanent"
    """Always: after a crash, and if it stopped by itself."""
    TRANSIENT = "transient"
    """Only after a crash."""
    TEMPORARY = "temporary"
    """Never: a crash is reported and the child stays down."""


@attrs.frozen(kw_only=True)
class ChildSpec:
    """How a supervisor starts, and restarts, one child."""

    name: str
    """The stable name callers resolve; it survives restarts."""
    start: Callable[[CrashWatcher, Any], pykka.ActorRef[Any]]
    """Start the child: (watcher, snapshot from the crashed one or None) -> its ref."""
    restart: Restart = Restart.PERMANENT


def report_to(parent: pykka.ActorRef[Any], name: str) -> CrashWatcher:
    """A watcher that tells ``parent`` a :class:`~actorhw.messages.ChildCrashed` for the
    child ``name``, with the leases and registry entries its snapshot carries."""
    return _ReportTo(parent, name)


class _ReportTo:
    """:func:`report_to`'s watcher: one small object per child, not a closure (a
    function, its cells and their tuple: four objects for the GC, times 20,000)."""

    __slots__ = ("name", "parent")

    def __init__(self, parent: pykka.ActorRef[Any], name: str) -> None:
        self.parent, self.name = parent, name

    def __call__(self, error: BaseException, snapshot: Any) -> None:
        items = snapshot if isinstance(snapshot, tuple) else (snapshot,)
        tell_if_alive(
            self.parent,
            ChildCrashed(
                name=self.name,
                error=f"{type(error).__name__}: {error}",
                snapshots=tuple(i for i in items if isinstance(i, DeviceSnapshot)),
                entries=tuple(i for i in items if isinstance(i, RegistryEntry)),
            ),
        )


class ActorCrashError(ActorHwError):
    """An actor was told to crash (fault injection), or crashed."""

    code = "actor_crashed"
    reason = Field[str]("")
    """Why it was told to crash."""


class SupervisedActor(DispatchActor):
    """An actor whose crashes reach its supervisor.

    Subclasses put their start-up in :meth:`started` (not ``on_start``), their
    clean-up after a crash in :meth:`failed`, and may return their state to carry over
    a restart from :meth:`snapshot`.  Start one with :meth:`start_watched`.
    """

    def __init__(self) -> None:
        super().__init__()
        self._watcher: CrashWatcher | None = getattr(_pending, "watcher", None)
        self._crashed = False

    @classmethod
    def start_watched(
        cls, watcher: CrashWatcher | None, /, *args: Any, **kwargs: Any
    ) -> pykka.ActorRef[Any]:
        """Start the actor with ``watcher`` told of its crash; returns its ref."""
        _pending.watcher = watcher
        try:
            ref: pykka.ActorRef[Any] = cls.start(*args, **kwargs)
            return ref
        finally:
            _pending.watcher = None

    def started(self) -> None:
        """Start-up, in the actor's thread; an exception here is a crash."""

    def failed(self) -> None:
        """Clean-up after a crash (release OS resources, stop children)."""

    def snapshot(self) -> Any:
        """State worth carrying into the restarted actor (None: start afresh)."""
        return None

    def on_start(self) -> None:
        try:
            self.started()
        except Exception as e:
            self._report(e, None)
            self._safe_failed()
            raise

    def on_failure(self, *exc_info: Any) -> None:
        error = exc_info[1] if len(exc_info) > 1 else None
        try:
            state = self.snapshot()
        except Exception as e:  # a snapshot must never hide the crash
            logger.opt(exception=e).warning("{}: snapshot after crash failed", self)
            state = None
        self._report(error if isinstance(error, BaseException) else RuntimeError(str(error)), state)
        self._safe_failed()

    def _safe_failed(self) -> None:
        try:
            self.failed()
        except Exception as e:
            logger.opt(exception=e).error("{}: clean-up after crash failed: {}", self, e)

    def _report(self, error: BaseException, state: Any) -> None:
        if self._crashed:
            return
        self._crashed = True
        logger.bind(actor=str(self)).error(
            "{} crashed: {}", self, "".join(traceback.format_exception_only(error)).strip()
        )
        if self._watcher is not None:
            try:
                self._watcher(error, state)
            except Exception as e:
                logger.opt(exception=e).error("{}: crash watcher failed: {}", self, e)

    def crash(self, reason: str) -> None:
        """Raise as a crashing actor would (for :class:`~actorhw.messages.Crash`)."""
        raise ActorCrashError(f"{self}: told to crash: {reason}", reason=reason)
