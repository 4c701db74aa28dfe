"""The board actor's watch over a board nobody uses (a part of BoardActor, a mixin).

A fault is otherwise seen only when a call meets it; an unplugged or hung board that
nobody uses would stay CONNECTED for good.  So a CONNECTED board is watched:

- every ``watch_every`` s (0.25) the driver's :meth:`~actorhw.driver.BoardDriver.check`
  says, without I/O, whether the link is still there (a closed port, an exited
  process): a closed port is noticed well within 1 s;
- every ``probe_every`` s (3; configurable in the RecoveryPolicy, 0 turns it off) the
  driver's :meth:`~actorhw.driver.BoardDriver.probe` makes one cheap round trip when its
  I/O is idle, off the mailbox; a board that does not answer it, Ctrl-C included, is
  hung, and is recovered before a user's call meets the hang.

Either is a fault, handled as a device's fault report is.  A thread of the board's
tells the actor when to look; the looking happens in the board's mailbox.
"""

from __future__ import annotations

import threading
import time
from typing import TYPE_CHECKING, Any

import attrs

from actorhw.core.errors import ActorHwError
from actorhw.core.lifecycle import DeviceState
from actorhw.drivers.board_driver import BoardDriver
from actorhw.tree.asks import tell_if_alive
from actorhw.tree.device import is_fault

if TYPE_CHECKING:
    from collections.abc import Callable

    import pykka

    from actorhw.core.recovery import RecoveryPolicy

S = DeviceState
#: Seconds the board waits for its watch thread to end when it stops.
_JOIN_TIMEOUT = 5.0


@attrs.frozen
class _Look:
    """The watch thread's note to the board: look at the link now."""


@attrs.frozen
class _Probed:
    """A probe ended, with this error (None: the board answered)."""

    error: BaseException | None


class BoardWatch:
    """Notices an unplugged or hung board while nobody uses it."""

    if TYPE_CHECKING:
        _name: str
        _driver: BoardDriver | None
        _state: DeviceState
        _stopping: bool
        _policy: RecoveryPolicy
        _log: Any
        actor_ref: pykka.ActorRef[Any]

        def _fault(self, reason: str, *, hung: bool) -> None: ...

    def _watch_handlers(self) -> dict[type, Callable[[Any], Any]]:
        """Set up the watch (started later by :meth:`_start_watch`); its messages."""
        self._watch_stop = threading.Event()
        self._look_sent = threading.Event()  # one look in the mailbox at a time
        self._watch_thread: threading.Thread | None = None
        self._probing = False
        self._last_probe = time.monotonic()
        return {_Look: self._look, _Probed: self._probed}

    def _start_watch(self) -> None:
        every = self._policy.watch_every
        if every <= 0 or not _watchable(self._driver):
            return
        me = self.actor_ref

        def watching() -> None:
            while not self._watch_stop.wait(every):
                if not self._look_sent.is_set():
                    self._look_sent.set()
                    tell_if_alive(me, _Look())

        self._watch_thread = threading.Thread(
            target=watching, name=f"watch-{self._name}", daemon=True
        )
        self._watch_thread.start()

    def _stop_watch(self) -> None:
        self._watch_stop.set()
        watch_thread = self._watch_thread
        if watch_thread is not None and watch_thread is not threading.current_thread():
            watch_thread.join(_JOIN_TIMEOUT)

    def _look(self, _message: _Look) -> None:
        self._look_sent.clear()
        driver = self._driver
        if driver is None or self._stopping or self._state not in (S.CONNECTED, S.ACTIVE):
            return
        gone = driver.check()
        if gone is not None:
            self._log.warning("watch: {}", gone)
            self._fault(gone, hung=False)
            return
        every, now = self._policy.probe_every, time.monotonic()
        if every <= 0 or self._probing or now - self._last_probe < every:
            return
        self._last_probe = now
        try:
            pending = driver.probe(timeout=self._policy.probe_timeout)
        except ActorHwError as e:
            self._probed(_Probed(error=e))
            return
        if pending is None:  # busy: its own traffic shows whether it answers
            return
        self._probing = True
        me = self.actor_ref
        pending.future.add_done_callback(
            lambda f: tell_if_alive(me, _Probed(error=None if f.cancelled() else f.exception()))
        )

    def _probed(self, message: _Probed) -> None:
        self._probing = False
        self._last_probe = time.monotonic()
        error = message.error
        if isinstance(error, ActorHwError) and is_fault(error):
            self._log.warning("idle probe: {}", error)
            self._fault(f"idle probe: {error}", hung=error.code == "timed_out")


def _watchable(driver: BoardDriver | None) -> bool:
    """Whether the driver has anything to watch: a thread per board that wakes four
    times a second to learn nothing (the simulated driver, whose check and probe are
    the base's) costs 1,000 threads and 4,000 wake-ups a second on 1,000 boards."""
    if driver is None:
        return False
    kind = type(driver)
    return kind.check is not BoardDriver.check or kind.probe is not BoardDriver.probe
