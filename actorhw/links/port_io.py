"""Deadline-bounded reads and writes on one serial port, with a receive buffer.

:class:`PortIO` is the I/O half of the raw-REPL link (the framing half is
:mod:`actorhw.links.framing`): every read and write runs against a ``time.monotonic()``
deadline and raises :class:`DeadlinePassed` when it passes; a port that fails or is
closed from another thread gives :class:`~actorhw.core.errors.LinkLostError` naming it
(one function, :meth:`PortIO.failure`, says which error an exception from the port is).
:meth:`PortIO.gone` tells, without a byte on the line, whether the port is still there.

This module imports core only.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import re
import select
import socket
import sys
import termios
import time
from typing import Any, Final, Protocol

import serial

from actorhw.core.errors import LinkLostError, ProtocolError
from actorhw.links.pty_gate import pty_gate

__all__ = ["DeadlinePassed", "Overflow", "PortIO", "SerialPort"]

POLL_S: Final = 0.05
"""Longest single wait for bytes: a close from another thread is noticed this fast."""
READ_SIZE: Final = 65536
"""Most bytes taken from the OS in one read: all that is there, in one go."""
_FIONREAD: Final = getattr(termios, "FIONREAD", 0x541B)
_FOUR_ZEROS: Final = bytes(4)
_BYTEORDER: Final = sys.byteorder
_HANGUP: Final = select.POLLHUP | select.POLLERR | select.POLLNVAL
_ioctl = fcntl.ioctl
_monotonic = time.monotonic
_select = select.select
_os_read = os.read
_os_write = os.write


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
        self._sock: Any = _plain_socket(port)
        self.fd = _posix_fd(port) if self._sock is None else self._sock.fileno()
        """The descriptor of a plain POSIX serial port, or of a ``socket://`` port's socket:
        reads and writes then go straight to select/os.read/os.write (pyserial's per-call
        bookkeeping costs as much as a whole exchange on a fast board, and its socket
        port reads a byte at a time); None for other ports (``rfc2217://``, fakes)."""
        self._gate = pty_gate(self.fd) if self.fd is not None and self._sock is None else None

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

    def failure(self, exc: BaseException, what: str) -> Exception:
        """The error to raise for ``exc``, raised by the port during ``what``.

        Used as ``except Exception as exc: raise io.failure(exc, "read") from exc``, the
        one place that maps the port's errors (no cost until something fails):

        - pyserial's write timeout: :class:`DeadlinePassed` (the caller's deadline);
        - the port failed (``SerialException``, ``OSError``), or anything at all once it
          was closed from another thread (pyserial then trips over its cleared
          descriptor with ``TypeError``, ``ValueError`` or ``AttributeError``): the port
          is marked lost and :class:`~actorhw.core.errors.LinkLostError` names it;
        - anything else is a bug, and is raised again as it is.
        """
        if isinstance(exc, serial.SerialTimeoutException):
            return DeadlinePassed()
        if isinstance(exc, (serial.SerialException, OSError)) or self.closed:
            return self.lose(exc, what)
        raise exc

    def gone(self) -> str | None:
        """Without a byte on the line: why the port is no longer there, or None.

        Cheap enough for a watch that looks several times a second.  A POSIX port (a
        device path) is gone when the kernel reports a hang-up or error on its
        descriptor (a USB board unplugged, the process behind a pty ended) or refuses
        its terminal settings; a pyserial URL port when it is no longer open, its
        socket was closed by the other end, or asking it what is waiting fails.
        """
        if self.closed:
            return f"link to {self.name} is closed"
        if self.lost:
            return f"link to {self.name} was lost"
        fd, sock = self.fd, self._sock
        try:
            if fd is None:
                return _port_gone(self.port, self.name)
            poller = select.poll()
            poller.register(fd, _HANGUP)
            if poller.poll(0):
                return f"{self.name}: the port hung up (unplugged?)"
            if sock is None:
                termios.tcgetattr(fd)  # a tty the kernel hung up refuses this
            elif _select((fd,), (), (), 0)[0] and not sock.recv(1, socket.MSG_PEEK):
                return f"{self.name}: the other end closed the connection"
            return None
        except (OSError, ValueError, termios.error, serial.SerialException) as exc:
            if self.closed:
                return f"link to {self.name} is closed"
            return f"{self.name}: the port failed ({exc})"

    def stale(self) -> bool:
        """True when bytes arrived outside any exchange (the board did something)."""
        return bool(self.rx) or self.in_waiting() > 0

    def in_waiting(self) -> int:
        """How many bytes wait to be read (one ioctl on a device path)."""
        fd = self.fd
        try:
            if fd is not None and not self.closed:
                return int.from_bytes(_ioctl(fd, _FIONREAD, _FOUR_ZEROS), _BYTEORDER)
            return int(self.port.in_waiting)
        except Exception as exc:
            raise self.failure(exc, "in_waiting") from exc

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
        except Exception as exc:
            raise self.failure(exc, "read") from exc

    def read_chunk(self, deadline: float) -> bytes:
        """Wait (at most until ``deadline``) for some bytes and return all that came.

        ``b""`` when none came within :data:`POLL_S` (the caller checks its state and
        calls again).
        """
        wait = deadline - _monotonic()
        if wait <= 0:
            raise DeadlinePassed
        if wait > POLL_S:
            wait = POLL_S
        fd = self.fd
        if fd is None:
            return self._read_port(wait)
        try:
            readable = _select((fd,), (), (), wait)[0]
            if self.closed:
                raise self.lose(RuntimeError("closed by another thread"), "read")
            if not readable:
                return b""
            data = _os_read(fd, READ_SIZE)
        except BlockingIOError:
            return b""
        except LinkLostError:
            raise
        except Exception as exc:
            raise self.failure(exc, "read") from exc
        if not data:  # readable but empty: the other end is gone
            raise self.lose(OSError("the port reports data but has none (unplugged?)"), "read")
        return data

    def read_batch(self, need: int, deadline: float) -> bytes:
        """:meth:`read_chunk` for a caller that knows at least ``need`` more bytes must
        come before it can conclude: on a pseudo-terminal the wait ends only once that
        many are there (the terminal's VMIN), or after :data:`POLL_S` with whatever came.

        A board behind a pty (QEMU, a unix-port MicroPython under socat) sends its
        answer a byte or a few at a time, and each arrival wakes the reader and the
        kernel's workers: on an otherwise idle host that costs more CPU than the
        exchange itself.  Waking once for the whole of what must come keeps the
        deadline, the close check and the bytes exactly as :meth:`read_chunk` does.
        Call :meth:`end_batch` when done (the port's VMIN is put back).
        """
        gate = self._gate
        if gate is not None:
            want = 255 if need > 255 else need if need > 1 else 1
            if want != gate.value:
                if self.closed:  # never change a descriptor number that may have been reused
                    raise self.lose(RuntimeError("closed by another thread"), "read")
                try:
                    if not gate.set(want):  # an inter-byte timer: waits cannot count
                        self._gate = gate = None
                except Exception as exc:
                    raise self.failure(exc, "read") from exc
            if gate is not None and gate.value > 1:
                data = self.read_chunk(deadline)
                return data if data else self._read_ready()
        return self.read_chunk(deadline)

    def end_batch(self) -> None:
        """Put the port's VMIN back as :meth:`read_batch` found it (safe to call always)."""
        gate = self._gate
        if gate is not None and not self.closed:
            with contextlib.suppress(OSError):  # the port is gone: the next call says so
                gate.restore()

    @property
    def batches(self) -> bool:
        """:meth:`read_batch` can wait for a number of bytes (a pseudo-terminal)."""
        return self._gate is not None

    def _read_ready(self) -> bytes:
        """What is there now, without waiting (a batch wait ended before its count)."""
        try:
            return _os_read(self.fd, READ_SIZE)  # type: ignore[arg-type]
        except BlockingIOError:
            return b""
        except Exception as exc:
            raise self.failure(exc, "read") from exc

    def _read_port(self, wait: float) -> bytes:
        port = self.port
        try:
            if port.timeout != wait:
                port.timeout = wait
            # One wait per chunk: all that is there, or the first byte to come (the
            # rest is taken by the next call without waiting).
            data = port.read(port.in_waiting or 1)
        except Exception as exc:
            raise self.failure(exc, "read") from exc
        if self.closed:
            raise self.lose(RuntimeError("closed by another thread"), "read")
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
        """Write all of ``data`` before ``deadline`` (DeadlinePassed if the board stops
        taking it)."""
        if deadline <= _monotonic():
            raise DeadlinePassed
        fd = self.fd
        if fd is None:
            self._write_port(data, deadline)
            return
        if self.closed:  # never write to a descriptor number that may have been reused
            raise self.lose(RuntimeError("closed by another thread"), "write")
        try:
            written = _os_write(fd, data)
        except BlockingIOError:
            written = 0
        except Exception as exc:
            raise self.failure(exc, "write") from exc
        if written < len(data):
            self._write_rest(fd, memoryview(data)[written:], deadline)

    def _write_rest(self, fd: int, view: memoryview, deadline: float) -> None:
        """The OS buffer is full: wait until it takes more, to the deadline."""
        while view:
            remaining = deadline - _monotonic()
            if remaining <= 0:
                raise DeadlinePassed
            try:
                _select((), (fd,), (), min(remaining, POLL_S))
                if self.closed:
                    raise self.lose(RuntimeError("closed by another thread"), "write")
                view = view[_os_write(fd, view) :]
            except BlockingIOError:
                pass
            except LinkLostError:
                raise
            except Exception as exc:
                raise self.failure(exc, "write") from exc

    def _write_port(self, data: bytes, deadline: float) -> None:
        port = self.port
        remaining = deadline - _monotonic()
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
        except Exception as exc:
            raise self.failure(exc, "write") from exc

    def pause(self, seconds: float, deadline: float) -> None:
        """Pacing between chunks (the only sleep in the link), bounded by the deadline."""
        remaining = deadline - _monotonic()
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


def _plain_socket(port: Any) -> Any:
    """The socket of an open ``socket://`` port (pyserial's own class), else None."""
    try:
        from serial.urlhandler.protocol_socket import Serial as SocketSerial
    except ImportError:
        return None
    if type(port) is not SocketSerial or not port.is_open:
        return None
    return port._socket


def _port_gone(port: Any, name: str) -> str | None:
    """:meth:`PortIO.gone` for a port without a descriptor of its own (``rfc2217://``,
    a fake): closed, or failing to say what is waiting."""
    if getattr(port, "is_open", True) is False:
        return f"{name}: the port is closed"
    int(port.in_waiting)
    return None
