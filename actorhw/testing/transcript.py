"""A test's board transcript: code sent, output, errors and state changes, in order.

The plugin keeps one per test and board and attaches it to the test's report when the
test fails (a section ``actorhw transcript: BOARD``), as pytest-embedded attaches a
device's log.
"""

from __future__ import annotations

import threading
import time
from typing import Any

import attrs

from actorhw.api.handles import Board, Handle
from actorhw.core.errors import ActorHwError, DeviceExceptionError
from actorhw.core.events import Subscription
from actorhw.core.ids import DeviceId
from actorhw.core.messages import BoardEvent, StateChanged


@attrs.frozen
class Entry:
    """One line of a transcript."""

    at: float
    """Wall-clock time (seconds since the epoch)."""
    kind: str
    """``exec`` (code sent), ``output``, ``error``, ``state`` or ``board`` (an event)."""
    text: str
    who: str = ""
    """The owner that sent the code, or the device that changed state."""


class Transcript:
    """What happened on one board during one test; any thread may add to it."""

    def __init__(self, board: str, *, owner: str = "") -> None:
        self.board = board
        self.owner = owner
        """The test's own owner name: its entries are shown without it."""
        self.started = time.time()
        self._entries: list[Entry] = []
        self._lock = threading.Lock()
        self._events: Subscription | None = None

    def follow(self, events: Subscription) -> None:
        """Take this board's state changes from ``events`` (read at each ``flush``)."""
        self._events = events

    def flush(self) -> None:
        """Record the events that arrived since the last flush."""
        if self._events is not None:
            for event in self._events.drain():
                self.observe(event)

    def close(self) -> None:
        """Record the last events and stop following them."""
        self.flush()
        if self._events is not None:
            self._events.close()
            self._events = None

    def add(self, kind: str, text: str, *, who: str = "", at: float | None = None) -> None:
        """Record one entry (now, unless ``at`` says when)."""
        with self._lock:
            self._entries.append(Entry(time.time() if at is None else at, kind, text, who))

    def observe(self, event: Any) -> None:
        """Record ``event`` if it is a state change or a board event of this board."""
        if isinstance(event, StateChanged) and type(event.device).board == self.board:
            text = f"{event.from_state.name} -> {event.to_state.name} ({event.reason})"
            self.add("state", text, who=event.device.name, at=event.at)
        elif isinstance(event, BoardEvent) and event.board == self.board:
            self.add("board", f"{event.what}: {event.reason}", at=event.at)

    @property
    def entries(self) -> list[Entry]:
        """The entries so far, in time order."""
        with self._lock:
            return sorted(self._entries, key=lambda e: e.at)

    def render(self) -> str:
        """The transcript as text: one block per entry, times relative to the start."""
        lines = []
        for entry in self.entries:
            who = f" [{entry.who}]" if entry.who and entry.who != self.owner else ""
            head = f"{entry.at - self.started:+8.3f}s {entry.kind:<6}{who}"
            body = entry.text.rstrip("\n").splitlines() or [""]
            marker = {"exec": ">>> ", "output": "", "error": "!! "}.get(entry.kind, "")
            lines.append(f"{head} {marker}{body[0]}")
            pad = " " * (len(head) + 1) + ("... " if entry.kind == "exec" else "")
            lines += [pad + line for line in body[1:]]
        return "\n".join(lines) if lines else "(nothing happened on the board)"


class RecordingBoard(Board):
    """A Board handle that records what it sends and gets back in a Transcript.

    The ``board`` fixture yields one, leased and opened.  Beside ``exec`` it tells which
    board it is: ``name`` (the instance), ``ids`` (its device id enum) and ``runtime``.
    """

    def __init__(
        self, runtime: Any, device: DeviceId, *, timeout: float, transcript: Transcript
    ) -> None:
        super().__init__(runtime, device, timeout=timeout)
        self.transcript = transcript
        self.runtime = runtime
        self.name = type(device).board
        self.ids: type[DeviceId] = type(device)

    def exec(
        self, code: str, *, timeout: float = 10.0, priority: Any = None, exclusive: bool = False
    ) -> str:
        """Run ``code`` on the board and return what it printed (recorded)."""
        who = self.lease.owner if self.lease is not None else ""
        self.transcript.add("exec", code if isinstance(code, str) else repr(code), who=who)
        try:
            out = super().exec(code, timeout=timeout, priority=priority, exclusive=exclusive)
        except DeviceExceptionError as e:
            text = e.traceback_text or str(e)
            self.transcript.add("error", text, who=who)
            raise
        except ActorHwError as e:
            self.transcript.add("error", str(e), who=who)
            raise
        if out:
            self.transcript.add("output", out, who=who)
        return out


class RecordingRuntime:
    """A Runtime seen through a transcript: its Board leases record their execs.

    Device classes (actorhw.programming) lease their board through the runtime they are
    given; the ``actorhw_device`` factory hands them this so their traffic is in the
    test's transcript.  Everything else goes to the runtime unchanged.
    """

    def __init__(self, runtime: Any, transcript: Transcript) -> None:
        self._runtime = runtime
        self._transcript = transcript

    def lease(self, kind: Any, device: Any = None, *, owner: str, timeout: float = 10.0) -> Handle:
        """Like Runtime.lease; a Board lease records into the transcript."""
        if kind is Board and isinstance(device, DeviceId):
            self._runtime.get(Board, device, timeout=timeout)  # checks the kind
            handle = RecordingBoard(
                self._runtime, device, timeout=timeout, transcript=self._transcript
            )
            return handle.take(owner)
        result: Handle = self._runtime.lease(kind, device, owner=owner, timeout=timeout)
        return result

    def __getattr__(self, name: str) -> Any:
        return getattr(self._runtime, name)
