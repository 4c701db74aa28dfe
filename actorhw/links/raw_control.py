"""The board-control steps of the raw-REPL link: interrupt, soft reset, machine reset.

:class:`BoardControl` is a part of :class:`~actorhw.links.raw_repl.RawReplLink` (a
mixin over :class:`~actorhw.links.raw_protocol.RawReplProtocol`); :class:`CallGuard`
holds the link's lock for one call.

This module imports core and links only.
"""

from __future__ import annotations

import re
import threading
import time
from types import TracebackType
from typing import TYPE_CHECKING, Final

from actorhw.core.errors import DeviceExceptionError, LinkLostError, TimedOutError
from actorhw.links.framing import CTRL_C, CTRL_D, parse_traceback
from actorhw.links.port_io import DeadlinePassed, PortIO
from actorhw.links.raw_protocol import SEARCH_LIMIT

__all__ = ["RESET_ANSWER_S", "BoardControl", "CallGuard"]

_SOFT_REBOOT: Final = b"soft reboot"
_BOOTED: Final = re.compile(rb"MicroPython v?\S+ on |soft reboot|>>> ")
"""What a board prints once it rebooted (its banner, its friendly prompt)."""
RESET_ANSWER_S: Final = 1.0
"""How long after a reset's ``OK`` the link looks for the board's answer (it did not
reset) or its banner (it did); a board silent that long is taken as resetting."""


class BoardControl:
    """Interrupt and resets: the steps that stop or restart what the board runs."""

    if TYPE_CHECKING:
        name: str
        interrupted: bool
        _io: PortIO
        _in_raw: bool
        _lock: threading.Lock

        def close(self) -> None: ...
        def _enter_raw(self, deadline: float) -> None: ...

    def interrupt(self, *, timeout: float) -> None:
        """Send Ctrl-C to stop the code that runs on the board.

        Safe from another thread while :meth:`exec` runs: it then only writes Ctrl-C,
        and that ``exec`` returns the ``KeyboardInterrupt`` traceback in ``stderr`` (if
        a tty dropped the trailer queued behind the Ctrl-C, the answer ends at its plain
        end; the next call re-enters the raw REPL to be in step again).  When
        no call runs it also brings the board back to the raw-REPL prompt.

        Raises:
            TimedOutError: the board did not answer (``resynced`` is False).
            LinkLostError: the port closed or vanished.
        """
        deadline = time.monotonic() + timeout
        if self._lock.locked():
            self._io.check_usable()
            self.interrupted = True
            self._io.write(CTRL_C, deadline)
            return
        with CallGuard(self, deadline, timeout):
            self._io.write(CTRL_C, deadline)
            try:
                self._enter_raw(deadline)
            except DeadlinePassed as exc:
                raise TimedOutError(
                    f"{self.name} did not answer after Ctrl-C within {timeout:g} s",
                    device=self.name,
                    timeout=timeout,
                    resynced=False,
                ) from exc

    def soft_reset(self, *, timeout: float) -> None:
        """Soft-reboot the board (Ctrl-D at the empty raw prompt) and re-enter the raw REPL.

        The board's Python state is cleared.  On firmware whose soft reset ends the
        board (the unix port exits) this ends in LinkLostError: a power cycle is needed.

        Raises:
            TimedOutError: the board did not reboot or answer in time.
            RawReplError: the raw REPL could not be entered before the reset.
            LinkLostError: the port closed or vanished.
        """
        deadline = time.monotonic() + timeout
        with CallGuard(self, deadline, timeout):
            io = self._io
            try:
                if not self._in_raw or io.stale():
                    self._enter_raw(deadline)
                self._in_raw = False
                io.write(CTRL_D, deadline)
                io.read_until(_SOFT_REBOOT, deadline, limit=SEARCH_LIMIT, keep=False)
                self._enter_raw(deadline)
            except DeadlinePassed as exc:
                raise TimedOutError(
                    f"{self.name} did not come back from a soft reset within {timeout:g} s",
                    device=self.name,
                    timeout=timeout,
                    resynced=False,
                ) from exc

    def send_reset(self, code: str, *, timeout: float) -> None:
        """Send code that resets the board (``machine.reset()``) and see that it did.

        After the board's ``OK`` a board that resets stops answering the exec: its port
        vanishes (USB), or it prints its boot banner; one that cannot (no
        ``machine.reset`` on this firmware, say) answers with a traceback instead.  The
        link is closed once the board reset (it reboots; a USB board re-enumerates), so
        the caller opens a new link.

        Raises:
            DeviceExceptionError: the board answered instead of resetting (the code
                raised, or returned): it did not reset; the link stays open, in step.
            TimedOutError: the board did not take the code within ``timeout``.
            LinkLostError: the port closed or vanished before the code was taken.
        """
        deadline = time.monotonic() + timeout
        with CallGuard(self, deadline, timeout):
            io = self._io
            reset = True
            try:
                if not self._in_raw or io.stale():
                    self._enter_raw(deadline)
                self._in_raw = False
                io.write(code.encode() + CTRL_D, deadline)
                io.read_until(b"OK", deadline, limit=SEARCH_LIMIT)
                answer = self._reset_answer(min(deadline, time.monotonic() + RESET_ANSWER_S))
                if answer is not None:
                    reset = False
                    self._in_raw = True  # the answer was read to its end: in step
                    self._not_reset(answer)
            except DeadlinePassed as exc:
                raise TimedOutError(
                    f"{self.name} did not take the reset within {timeout:g} s",
                    device=self.name,
                    timeout=timeout,
                    resynced=False,
                ) from exc
            finally:
                if reset:
                    self.close()

    def _reset_answer(self, deadline: float) -> bytes | None:
        """After a reset's ``OK``: the exec's answer (``stdout \x04 stderr``) if the
        board gave one, or None once it shows it reset (its banner, its port gone) or
        says nothing until ``deadline``."""
        io = self._io
        while True:
            first = io.rx.find(CTRL_D)
            end = io.rx.find(b"\x04>", first + 1) if first >= 0 else -1
            if end >= 0:
                answer = bytes(io.rx[:end])
                del io.rx[: end + 2]
                return answer
            if _BOOTED.search(io.rx) is not None or len(io.rx) > SEARCH_LIMIT:
                return None
            try:
                io.rx += io.read_chunk(deadline)
            except (DeadlinePassed, LinkLostError):
                return None

    def _not_reset(self, answer: bytes) -> None:
        stdout, _, stderr = answer.partition(CTRL_D)
        text = stderr.decode("utf-8", "replace").replace("\r\n", "\n")
        exc_name, message = parse_traceback(text) if text.strip() else ("", "")
        why = f"{exc_name}: {message}" if exc_name else "the code returned"
        raise DeviceExceptionError(
            f"{self.name} did not reset ({why})",
            exc_name=exc_name or "NotReset",
            exc_message=message,
            traceback_text=text,
            stdout=stdout.decode("utf-8", "replace"),
            device=self.name,
        )


class CallGuard:
    """Holds the link's lock for one call and checks the link is usable."""

    __slots__ = ("_deadline", "_link", "_timeout")

    def __init__(self, link: BoardControl, deadline: float, timeout: float) -> None:
        self._link = link
        self._deadline = deadline
        self._timeout = timeout

    def __enter__(self) -> None:
        link = self._link
        link._io.check_usable()
        if not link._lock.acquire(timeout=max(0.0, self._deadline - time.monotonic())):
            raise TimedOutError(
                f"link to {link.name} stayed busy with another call for {self._timeout:g} s",
                device=link.name,
                timeout=self._timeout,
                busy=True,
                resynced=True,
            )
        try:
            link._io.check_usable()
        except BaseException:
            link._lock.release()
            raise

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._link._lock.release()
