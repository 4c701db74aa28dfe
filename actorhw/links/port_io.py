"""Deadline-bounded reads and writes on one serial port, with a receive buffer.

:class:`PortIO` is the I/O half of the raw-REPL link (the framing half is
:mod:`actorhw.links.framing`): every read and write runs against a ``time.monotonic()``
deadline and raises :class:`DeadlinePassed` when it passes; a port that fails or is
closed from another thread gives :class:`~actorhw.core.errors.LinkLostError`.

This module imports core only.
"""

from __future__ import annotations

import contextlib
import os
import re
import select
import time
from typing import Any, Final, Protocol

import serial

from actorhw.core.errors import LinkLostError, ProtocolError

__all__ = ["DeadlinePassed", "Overflow", "PortIO", "SerialPort"]

POLL_S: Final = 0.05
"""Longest single wait for bytes: a close from another thread is noticed this fast."""


class SerialPort(Protocol):
    """The part of ``serial.SerialBase`` the link uses.

    Any pyserial port (``serial.Serial``, ``serial_for_url("socket://...")``,
    ``loop://``) fits, and so does a small fake in tests.  ``read`` must honour
    ``timeout`` (wait at most that long for the first byte).
    """

    timeout: float | None
    write_timeout: float | None

    @property
    def in_waiting(self) -> int:
        """Number of bytes that can be read at once."""
        ...

    def read(self, size: int = 1) -> bytes:
        """Read up to ``size`` bytes, waiting at most ``timeout`` seconds."""
        ...

    def write(self, data: bytes, /) -> int | None:
        """Write all of ``data``, waiting at most ``write_timeout`` seconds."""
        ...

    def close(self) -> None:
        """Close the port."""
        ...


class DeadlinePassed(Exception):
    """Internal: a deadline passed while waiting on the board."""


class Overflow(Exception):
    """Internal: the board sent more than a read allowed."""


class PortIO:
    """One port, its receive buffer, and the deadline-bounded primitives on it."""

    def __init__(self, port: SerialPort, name: str) -> None:
        self.port = port
        self.name = name
        self.rx = bytearray()
        self.closed = False
        self.lost = False
        self._fd = _posix_fd(port)
        """A plain POSIX serial port's descriptor: reads and writes then go straight to
        select/os.read/os.write (pyserial's per-call bookkeeping costs as much as a
        whole exchange on a fast board); None for URLs and other port objects."""

    # --- state ---------------------------------------------------------------------------

    def close(self) -> None:
        """Close the port; a read on another thread then ends with LinkLostError."""
        if self.closed:
            return
        self.closed = True
        cancel = getattr(self.port, "cancel_read", None)
        if callable(cancel):
            with contextlib.suppress(Exception):  # wake a reader blocked in select()
                cancel()
        with contextlib.suppress(Exception):  # the port may already be gone
            self.port.close()

    def check_usable(self) -> None:
        """Raise LinkLostError when the port was closed or lost."""
        if self.closed:
            raise LinkLostError(f"link to {self.name} is closed", device=self.name)
        if self.lost:
            raise LinkLostError(f"link to {self.name} was lost", device=self.name)

    def lose(self, exc: BaseException, what: str) -> LinkLostError:
        """Mark the port lost; the error to raise."""
        self.lost = True
        state = "closed" if self.closed else "lost"
        return LinkLostError(f"link to {self.name} {state} ({what}: {exc})", device=self.name)

    def stale(self) -> bool:
        """True when bytes arrived outside any exchange (the board did something)."""
        return bool(self.rx) or self.in_waiting() > 0

    def in_waiting(self) -> int:
        try:
            return int(self.port.in_waiting)
        except (serial.SerialException, OSError) as exc:
            raise self.lose(exc, "in_waiting") from exc
        except (TypeError, ValueError, AttributeError) as exc:
            if self.closed:
                raise self.lose(exc, "in_waiting") from exc
            raise

    # --- reads ---------------------------------------------------------------------------

    def drain(self, limit: int) -> None:
        """Drop what was received so far (at most about ``limit`` bytes), without waiting."""
        self.rx.clear()
        dropped = 0
        while dropped < limit:
            waiting = self.in_waiting()
            if waiting <= 0:
                return
            dropped += len(self.read_now(waiting))

    def read_now(self, size: int) -> bytes:
        port = self.port
        try:
            if port.timeout != 0:
                port.timeout = 0
            return port.read(size)
        except (serial.SerialException, OSError) as exc:
            raise self.lose(exc, "read") from exc
        except (TypeError, ValueError, AttributeError) as exc:
            if self.closed:
                raise self.lose(exc, "read") from exc
            raise

    def read_chunk(self, deadline: float) -> bytes:
        """Wait (at most until ``deadline``) for some bytes and return all that came."""
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise DeadlinePassed
        wait = POLL_S if remaining > POLL_S else remaining
        if self._fd is not None:
            return self._read_fd(self._fd, wait)
        port = self.port
        try:
            if port.timeout != wait:
                port.timeout = wait
            # One wait per chunk: all that is there, or the first byte to come (the
            # rest is taken by the next call without waiting).
            data = port.read(port.in_waiting or 1)
        except (serial.SerialException, OSError) as exc:
            raise self.lose(exc, "read") from exc
        except (TypeError, ValueError, AttributeError) as exc:
            if self.closed:
                raise self.lose(exc, "read") from exc
            raise
        if self.closed:
            raise self.lose(RuntimeError("closed by another thread"), "read")
        return data

    def _read_fd(self, fd: int, wait: float) -> bytes:
        try:
            ready, _, _ = select.select([fd], [], [], wait)
            if self.closed:
                raise self.lose(RuntimeError("closed by another thread"), "read")
            if not ready:
                return b""
            data = os.read(fd, 65536)
        except BlockingIOError:
            return b""
        except (OSError, ValueError) as exc:
            raise self.lose(exc, "read") from exc
        if not data:  # readable but empty: the other end is gone
            raise self.lose(OSError("the port reports data but has none (unplugged?)"), "read")
        return data

    def read_until(self, term: bytes, deadline: float, *, limit: int, keep: bool = True) -> bytes:
        """Return the bytes before ``term`` and consume through it.

        Args:
            term: the terminator.
            deadline: ``time.monotonic()`` value to give up at.
            limit: most bytes allowed before ``term`` when ``keep``; beyond it Overflow.
            keep: when False the skipped bytes are not kept (bounded memory while
                searching a stream of garbage for a marker) and ``b""`` is returned.
        """
        rx = self.rx
        start = 0
        while True:
            index = rx.find(term, start)
            if index >= 0:
                if keep and index > limit:
                    raise Overflow
                out = bytes(rx[:index]) if keep else b""
                del rx[: index + len(term)]
                return out
            if keep:
                if len(rx) > limit:
                    raise Overflow
                start = max(0, len(rx) - len(term) + 1)
            else:
                tail = len(term) - 1
                if len(rx) > tail:
                    del rx[: len(rx) - tail]
            rx += self.read_chunk(deadline)

    def skip_until(
        self, patterns: tuple[re.Pattern[bytes], ...], deadline: float, keep: int
    ) -> int:
        """Skip bytes until one of ``patterns`` matched and was consumed; its index.

        Memory stays bounded: only a tail of ``keep`` bytes (at least the longest match)
        is kept while searching.
        """
        rx = self.rx
        while True:
            best: tuple[int, int, int] | None = None
            for n, pattern in enumerate(patterns):
                match = pattern.search(rx)
                if match is not None and (best is None or match.start() < best[0]):
                    best = (match.start(), match.end(), n)
            if best is not None:
                del rx[: best[1]]
                return best[2]
            if len(rx) > keep:
                del rx[: len(rx) - keep]
            rx += self.read_chunk(deadline)

    def take(self, size: int, deadline: float) -> bytes:
        """Exactly ``size`` bytes from the stream."""
        rx = self.rx
        while len(rx) < size:
            rx += self.read_chunk(deadline)
        out = bytes(rx[:size])
        del rx[:size]
        return out

    def expect(self, expected: bytes, deadline: float) -> None:
        """The next bytes must be ``expected``; ProtocolError if they are not."""
        got = self.take(len(expected), deadline)
        if got != expected:
            context = bytes(self.rx[:40])
            raise ProtocolError(
                f"{self.name} sent {got + context!r} where {expected!r} was expected",
                device=self.name,
                expected=expected.decode("latin-1"),
            )

    # --- writes --------------------------------------------------------------------------

    def write(self, data: bytes, deadline: float) -> None:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise DeadlinePassed
        if self._fd is not None:
            self._write_fd(self._fd, data, deadline)
            return
        port = self.port
        try:
            current = port.write_timeout
            # Setting it reconfigures the port (termios calls: tens of microseconds, the
            # cost of a whole exchange on a pty), so it is kept while it stays within a
            # factor of 4 of what is left: calls with the same timeout never pay it, and
            # a write (which blocks only when the board stops reading) still ends near
            # its deadline.
            if current is None or current > 4 * remaining or current < remaining / 4:
                port.write_timeout = remaining
            port.write(data)
        except serial.SerialTimeoutException as exc:
            raise DeadlinePassed from exc
        except (serial.SerialException, OSError) as exc:
            raise self.lose(exc, "write") from exc
        except (TypeError, ValueError, AttributeError) as exc:
            if self.closed:
                raise self.lose(exc, "write") from exc
            raise

    def _write_fd(self, fd: int, data: bytes, deadline: float) -> None:
        view = memoryview(data)
        while view:
            if self.closed:
                raise self.lose(RuntimeError("closed by another thread"), "write")
            try:
                view = view[os.write(fd, view) :]
            except BlockingIOError:
                pass  # the OS buffer is full: wait below until it takes more
            except (OSError, ValueError) as exc:
                raise self.lose(exc, "write") from exc
            if view:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise DeadlinePassed
                try:
                    select.select([], [fd], [], min(remaining, POLL_S))
                except (OSError, ValueError) as exc:
                    raise self.lose(exc, "write") from exc

    def pause(self, seconds: float, deadline: float) -> None:
        """Pacing between chunks (the only sleep in the link), bounded by the deadline."""
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise DeadlinePassed
        time.sleep(min(seconds, remaining))


def _posix_fd(port: Any) -> int | None:
    """The descriptor of a plain ``serial.Serial`` on POSIX (not a subclass, not a URL)."""
    try:
        from serial.serialposix import Serial as PosixSerial
    except ImportError:  # not POSIX
        return None
    if type(port) is not PosixSerial or not port.is_open:
        return None
    fd = port.fd
    return fd if isinstance(fd, int) else None
