"""MicroPython raw-REPL transport over any pyserial port.

The raw REPL is the machine interface of MicroPython: ``Ctrl-A`` enters it, the host
sends source code followed by ``Ctrl-D`` and the board answers::

    OK<stdout>\\x04<stderr>\\x04>

:class:`RawReplLink` keeps one serial handle open for its whole life, enters the raw REPL
once and then runs many ``exec`` calls back to back, which is what makes a call cost a
fraction of a millisecond on a pty.  Every read runs against a ``time.monotonic()``
deadline, so no call blocks forever whatever the board does: a board that stops answering
gives :class:`~actorhw.errors.TimedOutError`, a port that vanishes gives
:class:`~actorhw.errors.LinkLostError`, and bytes that break the framing give
:class:`~actorhw.errors.ProtocolError`.

Threading: a link is meant to be driven by one I/O thread at a time.  Calls from several
threads are serialised by an internal lock (a call waits for the lock no longer than its
own timeout), and :meth:`RawReplLink.interrupt` may be called from any thread while an
``exec`` runs: it then only writes ``Ctrl-C``.  :meth:`RawReplLink.close` may also be
called from another thread: the running call ends with ``LinkLostError``.

This module knows nothing of actors.
"""

from __future__ import annotations

import contextlib
import random
import re
import threading
import time
from types import TracebackType
from typing import Final, Protocol, Self

import attrs
import serial

from actorhw.core.errors import (
    DeviceExceptionError,
    InvalidArgumentError,
    LinkLostError,
    ProtocolError,
    RawReplError,
    TimedOutError,
)

__all__ = [
    "DEFAULT_MAX_OUTPUT",
    "RAW_REPL_BANNER",
    "ExecResult",
    "RawReplLink",
    "SerialPort",
    "bytes_literal",
    "parse_traceback",
]

CTRL_A: Final = b"\x01"
CTRL_B: Final = b"\x02"
CTRL_C: Final = b"\x03"
CTRL_D: Final = b"\x04"
RAW_PASTE_REQUEST: Final = b"\x05A\x01"

RAW_REPL_BANNER: Final = b"raw REPL; CTRL-B to exit\r\n>"
"""What the board prints when it enters (or re-enters) the raw REPL."""

DEFAULT_MAX_OUTPUT: Final = 1024 * 1024
"""Default cap, in bytes, on the stdout + stderr of one ``exec``."""

_SOFT_REBOOT: Final = b"soft reboot\r\n"
_STAGED_NAME: Final = b"_actorhw_src"
_STAGE_PREFIX: Final = _STAGED_NAME + b"="
_STAGE_SUFFIX: Final = b"\nprint(len(%s),sum(%s))" % (_STAGED_NAME, _STAGED_NAME)
_RUN_STAGED: Final = b"try:\n exec(%s)\nfinally:\n del %s" % (_STAGED_NAME, _STAGED_NAME)
_SYNC_ATTEMPTS: Final = 3
_INTERRUPTED_FRAME_END: Final = b"KeyboardInterrupt: \r\n\x04>"
_VERIFY_ATTEMPTS: Final = 6
_RETRY_CHUNK: Final = 32
_RETRY_PAUSE_S: Final = 0.001
_RETRY_MAX_PAUSE_S: Final = 0.008
_UNSAFE_IN_LITERAL: Final = re.compile(rb"[^\x20-\x26\x28-\x5b\x5d-\x7e]")
_ESCAPES: Final = [b"\\n" if i == 10 else b"\\x%02x" % i for i in range(256)]
_CONTROL_BYTES: Final = re.compile(rb"[\x01-\x05]")
_EXC_LINE: Final = re.compile(r"^([A-Za-z_][A-Za-z0-9_.]*)(?::\s?(.*))?$")
_POLL_S: Final = 0.05
_FIRST_POLL_S: Final = 0.05
_MAX_POLL_INTERVAL_S: Final = 0.4
_BANNER_SEARCH_LIMIT: Final = 64 * 1024


class SerialPort(Protocol):
    """The part of ``serial.SerialBase`` that :class:`RawReplLink` uses.

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


@attrs.frozen(slots=True)
class ExecResult:
    """What one raw-REPL ``exec`` printed.

    Attributes:
        stdout: bytes the code printed (line endings as the board sent them).
        stderr: the board's traceback if the code raised, else ``b""``.
    """

    stdout: bytes
    stderr: bytes

    @property
    def ok(self) -> bool:
        """True when the code raised nothing (stderr is empty)."""
        return not self.stderr


def parse_traceback(text: str) -> tuple[str, str]:
    """Split a MicroPython traceback into the exception name and its message.

    The exception is named on the last non-empty line, e.g.
    ``ZeroDivisionError: division by zero`` or ``KeyboardInterrupt: ``.

    Args:
        text: the board's stderr, decoded.

    Returns:
        ``(exc_name, message)``; ``exc_name`` is ``"UnknownError"`` when the last line
        does not start with an exception name.
    """
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    if not lines:
        return "UnknownError", ""
    last = lines[-1]
    match = _EXC_LINE.match(last)
    if match is None:
        return "UnknownError", last
    return match.group(1), (match.group(2) or "").strip()


def bytes_literal(data: bytes) -> bytes:
    """A MicroPython bytes literal for ``data`` whose only quotes are its delimiters.

    Quotes and backslashes are written as ``\\x27`` and ``\\x5c`` (never ``\\'``), so
    losing any single byte on the way can never end the literal early and turn the
    rest into code: it changes the literal's length or sum, or breaks the syntax.

    Args:
        data: any bytes.

    Returns:
        ``b'...'`` as ASCII bytes.
    """
    return b"b'" + _UNSAFE_IN_LITERAL.sub(_escape_byte, data) + b"'"


def _escape_byte(match: re.Match[bytes]) -> bytes:
    return _ESCAPES[match.group()[0]]


class _DeadlinePassed(Exception):
    """Internal: a deadline passed while waiting on the board."""


class _Overflow(Exception):
    """Internal: the board sent more than the output cap."""


class RawReplLink:
    """A MicroPython raw-REPL link over one serial port.

    Create it with :meth:`open`, which opens the port and enters the raw REPL, or
    wrap an already open port with the constructor (then call :meth:`enter_raw_repl`,
    or let the first :meth:`exec` do it).

    Raw-paste mode (``Ctrl-E A Ctrl-A``) is probed once per link when the raw REPL is
    first entered and remembered: boards that support it receive code longer than
    ``chunk_size`` in raw-paste mode (board-driven flow control, no pacing needed);
    short code, and all code on boards without it (the micro:bit firmware answers the
    probe with the plain raw-REPL banner), goes through the plain raw REPL in one
    write, or in ``chunk_size`` pieces ``pacing_s`` apart when pacing is on.

    Args:
        port: an open pyserial port (or anything that fits :class:`SerialPort`).
        name: name of the board in errors (defaults to the port's name).
        pacing_s: pause between ``chunk_size`` pieces of code in plain raw-REPL mode;
            0 (the default) writes the code in one go, right for ptys and USB CDC
            whose firmware keeps up (for firmware that drops bytes, pacing only lowers
            the loss rate: use ``verify_over``).
        chunk_size: piece size for pacing, and the size above which raw-paste is used.
        max_output: cap on stdout + stderr of one exec, in bytes; beyond it
            :class:`~actorhw.errors.ProtocolError` is raised.
        resync_timeout: how long, after a timeout or a framing error, the link tries
            to get the raw prompt back before giving up.
        verify_over: code longer than this many bytes is sent in two checked steps
            (as a bytes literal whose length and sum the board reports back, then
            ``exec``-ed there), and re-sent if it arrived damaged.  For firmware that
            drops input bytes when its receive buffer overflows, like the micro:bit's
            (64-byte buffer; see :class:`~actorhw.links.qemu.QemuMicrobit`).  None (the
            default) sends all code as it is.  Not used when raw-paste mode (which has
            flow control) is available.  Costs one round trip, and the board keeps a
            copy of the source on its heap while the code runs (if the copy does not
            fit, the code is sent as it is).  In a traceback of verified code the
            code's own frames are named ``<string>`` instead of ``<stdin>``.
    """

    def __init__(
        self,
        port: SerialPort,
        *,
        name: str | None = None,
        pacing_s: float = 0.0,
        chunk_size: int = 256,
        max_output: int = DEFAULT_MAX_OUTPUT,
        resync_timeout: float = 0.5,
        verify_over: int | None = None,
    ) -> None:
        if pacing_s < 0:
            raise InvalidArgumentError("pacing_s must be >= 0", pacing_s=pacing_s)
        if chunk_size < 1:
            raise InvalidArgumentError("chunk_size must be >= 1", chunk_size=chunk_size)
        if max_output < 1:
            raise InvalidArgumentError("max_output must be >= 1", max_output=max_output)
        if resync_timeout <= 0:
            raise InvalidArgumentError("resync_timeout must be > 0", resync_timeout=resync_timeout)
        if verify_over is not None and verify_over < 0:
            raise InvalidArgumentError("verify_over must be >= 0", verify_over=verify_over)
        self._port = port
        self.name: str = name or str(getattr(port, "name", None) or getattr(port, "port", "serial"))
        self.pacing_s = pacing_s
        self.chunk_size = chunk_size
        self.max_output = max_output
        self.resync_timeout = resync_timeout
        self.verify_over = verify_over
        self.damaged_sends = 0
        """How many verified sends arrived damaged and were sent again (a statistic)."""
        self._rx = bytearray()
        self._lock = threading.Lock()
        self._in_raw = False
        self._raw_paste: bool | None = None
        self._closed = False
        self._lost = False
        self._rng = random.Random()

    # --- construction and teardown ----------------------------------------------------

    @classmethod
    def open(
        cls,
        url: str | SerialPort,
        *,
        timeout: float,
        pacing_s: float = 0.0,
        chunk_size: int = 256,
        max_output: int = DEFAULT_MAX_OUTPUT,
        resync_timeout: float = 0.5,
        verify_over: int | None = None,
        baudrate: int = 115200,
        exclusive: bool = True,
        enter_raw: bool = True,
        name: str | None = None,
    ) -> RawReplLink:
        """Open a port and (by default) enter the raw REPL.

        Args:
            url: a device path (``/dev/ttyACM0``, ``/dev/pts/3``), a pyserial URL
                (``socket://host:port``, ``loop://``) or an already open port.
            timeout: deadline in seconds for entering the raw REPL.  The firmware may
                still be booting: the link polls with Ctrl-C/Ctrl-A until it answers.
            pacing_s: see :class:`RawReplLink`.
            chunk_size: see :class:`RawReplLink`.
            max_output: see :class:`RawReplLink`.
            resync_timeout: see :class:`RawReplLink`.
            verify_over: see :class:`RawReplLink`.
            baudrate: line speed (ignored by ptys and USB CDC).
            exclusive: take an exclusive lock on a device path, so that two links
                cannot share one board by accident.
            enter_raw: enter the raw REPL now (default) or leave it to the first call.
            name: name of the board in errors (defaults to the url).

        Returns:
            The open link.

        Raises:
            LinkLostError: the port cannot be opened.
            RawReplError: the board did not enter the raw REPL within ``timeout``.
        """
        if isinstance(url, str):
            try:
                port: SerialPort = serial.serial_for_url(
                    url,
                    baudrate=baudrate,
                    timeout=_POLL_S,
                    write_timeout=max(timeout, 0.001),
                    exclusive=exclusive,
                )
            except (serial.SerialException, OSError, ValueError) as exc:
                raise LinkLostError(f"cannot open {url}: {exc}", device=name or url) from exc
            link_name = name or url
        else:
            port = url
            link_name = name or str(getattr(url, "name", None) or getattr(url, "port", "serial"))
        link = cls(
            port,
            name=link_name,
            pacing_s=pacing_s,
            chunk_size=chunk_size,
            max_output=max_output,
            resync_timeout=resync_timeout,
            verify_over=verify_over,
        )
        if enter_raw:
            try:
                link.enter_raw_repl(timeout=timeout)
            except BaseException:
                link.close()
                raise
        return link

    def close(self) -> None:
        """Close the port; safe to call twice and from another thread.

        A call running on another thread then ends with ``LinkLostError``.
        """
        if self._closed:
            return
        self._closed = True
        self._in_raw = False
        cancel = getattr(self._port, "cancel_read", None)
        if callable(cancel):
            # Best effort: wake a reader blocked in select() on another thread.
            with contextlib.suppress(Exception):
                cancel()
        with contextlib.suppress(Exception):  # the port may already be gone
            self._port.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        state = "closed" if self._closed else "lost" if self._lost else "open"
        return f"<RawReplLink {self.name} {state} raw={self._in_raw}>"

    # --- state ---------------------------------------------------------------------------

    @property
    def port(self) -> SerialPort:
        """The underlying serial port."""
        return self._port

    @property
    def in_raw_repl(self) -> bool:
        """Whether the link believes the board sits at the raw-REPL prompt."""
        return self._in_raw

    @property
    def raw_paste(self) -> bool | None:
        """Whether the board supports raw-paste mode (None: not probed yet)."""
        return self._raw_paste

    @property
    def closed(self) -> bool:
        """True once :meth:`close` was called."""
        return self._closed

    @property
    def lost(self) -> bool:
        """True once the port failed; every later call raises ``LinkLostError``."""
        return self._lost

    # --- public operations ------------------------------------------------------------------

    def enter_raw_repl(self, *, timeout: float) -> None:
        """Interrupt whatever runs and enter the raw REPL.

        Sends Ctrl-C twice, drops what the board already sent, then Ctrl-A, and waits
        for the raw-REPL banner; while the board stays silent (still booting, say) it
        sends Ctrl-C/Ctrl-A again at growing intervals.  Then one tiny exec with a
        random number checks that the stream is in step (stale banners or tracebacks
        are skipped), and on the first entry raw-paste support is probed.

        Args:
            timeout: deadline in seconds.

        Raises:
            RawReplError: no banner (or no answer to the check) within ``timeout``.
            ProtocolError: the answer to the raw-paste probe broke the framing.
            LinkLostError: the port closed or vanished.
        """
        deadline = time.monotonic() + timeout
        with self._io(deadline, timeout):
            try:
                self._enter_raw(deadline)
            except _DeadlinePassed as exc:
                raise RawReplError(
                    f"{self.name} did not enter the raw REPL within {timeout:g} s",
                    device=self.name,
                    timeout=timeout,
                ) from exc

    def exec(self, code: str | bytes, *, timeout: float) -> ExecResult:
        """Run code on the board and return what it printed.

        Enters the raw REPL first if the link is not in it (or if stray bytes arrived
        since the last call).  The call returns or raises within
        ``timeout + resync_timeout`` seconds.

        Args:
            code: MicroPython source; must not contain the control bytes 0x01-0x05.
            timeout: deadline in seconds for sending the code and reading all output.

        Returns:
            The stdout and stderr of the code.  A device-side exception is *not* raised
            here: it is in ``stderr`` (see :meth:`exec_checked`).

        Raises:
            TimedOutError: no complete answer within ``timeout``.  The link sent Ctrl-C
                and tried to get the raw prompt back; ``resynced`` says whether the
                board answered again (False: the board is hung).
            ProtocolError: the answer broke the framing or exceeded ``max_output``
                (``resynced`` as above).
            RawReplError: the raw REPL could not be entered first.
            LinkLostError: the port closed or vanished.
            InvalidArgumentError: the code contains raw-REPL control bytes.
        """
        data = code.encode("utf-8") if isinstance(code, str) else bytes(code)
        if _CONTROL_BYTES.search(data) is not None:
            raise InvalidArgumentError(
                "code must not contain raw-REPL control bytes 0x01-0x05", device=self.name
            )
        deadline = time.monotonic() + timeout
        with self._io(deadline, timeout):
            return self._exec_locked(data, deadline, timeout)

    def exec_checked(self, code: str | bytes, *, timeout: float) -> str:
        """Run code and return its stdout as text; raise if the code raised.

        Args:
            code: MicroPython source.
            timeout: deadline in seconds (see :meth:`exec`).

        Returns:
            stdout decoded as UTF-8 (undecodable bytes replaced), with ``\\r\\n``
            turned into ``\\n``.

        Raises:
            DeviceExceptionError: the code raised on the board; ``exc_name`` (e.g.
                ``ZeroDivisionError``) and ``traceback_text`` tell what.
            TimedOutError, ProtocolError, RawReplError, LinkLostError,
            InvalidArgumentError: as :meth:`exec`.
        """
        result = self.exec(code, timeout=timeout)
        stdout = result.stdout.decode("utf-8", errors="replace").replace("\r\n", "\n")
        if result.stderr:
            traceback_text = result.stderr.decode("utf-8", errors="replace").replace("\r\n", "\n")
            exc_name, message = parse_traceback(traceback_text)
            raise DeviceExceptionError(
                f"{exc_name} on {self.name}: {message}"
                if message
                else f"{exc_name} on {self.name}",
                exc_name=exc_name,
                exc_message=message,
                traceback_text=traceback_text,
                stdout=stdout,
                device=self.name,
            )
        return stdout

    def interrupt(self, *, timeout: float) -> None:
        """Send Ctrl-C to stop the code that runs on the board.

        Safe to call from another thread while :meth:`exec` runs: it then only writes
        Ctrl-C, and that ``exec`` returns the board's ``KeyboardInterrupt`` traceback in
        ``stderr``.  When no call is running it also brings the board back to the
        raw-REPL prompt.

        Args:
            timeout: deadline in seconds for getting the prompt back.

        Raises:
            TimedOutError: the board did not answer (``resynced`` is False).
            LinkLostError: the port closed or vanished.
        """
        deadline = time.monotonic() + timeout
        if self._lock.locked():
            self._check_usable()
            self._write(CTRL_C, deadline)
            return
        with self._io(deadline, timeout):
            self._write(CTRL_C, deadline)
            try:
                self._enter_raw(deadline)
            except _DeadlinePassed as exc:
                raise TimedOutError(
                    f"{self.name} did not answer after Ctrl-C within {timeout:g} s",
                    device=self.name,
                    timeout=timeout,
                    resynced=False,
                ) from exc

    def soft_reset(self, *, timeout: float) -> None:
        """Soft-reboot the board (Ctrl-D at the empty raw prompt) and re-enter the raw REPL.

        The board's Python state (globals, imported modules) is cleared.

        Args:
            timeout: deadline in seconds for the reboot and the raw prompt.

        Raises:
            TimedOutError: the board did not reboot or answer in time.
            RawReplError: the raw REPL could not be entered before the reset.
            LinkLostError: the port closed or vanished.
        """
        deadline = time.monotonic() + timeout
        with self._io(deadline, timeout):
            try:
                if not self._in_raw or self._stale():
                    self._enter_raw(deadline)
                self._in_raw = False
                self._write(CTRL_D, deadline)
                self._read_until(_SOFT_REBOOT, deadline, limit=_BANNER_SEARCH_LIMIT, keep=False)
                self._enter_raw(deadline)
            except _DeadlinePassed as exc:
                raise TimedOutError(
                    f"{self.name} did not come back from a soft reset within {timeout:g} s",
                    device=self.name,
                    timeout=timeout,
                    resynced=False,
                ) from exc

    # --- the exec protocol ----------------------------------------------------------------

    def _exec_locked(self, data: bytes, deadline: float, timeout: float) -> ExecResult:
        if not self._in_raw or self._stale():
            try:
                self._enter_raw(deadline)
            except _DeadlinePassed as exc:
                raise RawReplError(
                    f"{self.name} did not enter the raw REPL within {timeout:g} s",
                    device=self.name,
                    timeout=timeout,
                ) from exc
        try:
            if (
                self.verify_over is not None
                and len(data) > self.verify_over
                and not self._raw_paste
            ):
                return self._exec_verified(data, deadline)
            return self._exec_frame(data, deadline)
        except _DeadlinePassed as exc:
            resynced = self._recover()
            raise TimedOutError(
                f"{self.name} gave no complete answer within {timeout:g} s"
                + ("" if resynced else "; it does not answer Ctrl-C either (hung)"),
                device=self.name,
                timeout=timeout,
                resynced=resynced,
            ) from exc
        except _Overflow as exc:
            resynced = self._recover()
            raise ProtocolError(
                f"{self.name} sent more than {self.max_output} bytes of output",
                device=self.name,
                max_output=self.max_output,
                resynced=resynced,
            ) from exc
        except ProtocolError as exc:
            resynced = self._recover()
            context = {**exc.context, "resynced": resynced}
            raise ProtocolError(exc.message, **context) from exc

    def _exec_frame(
        self,
        data: bytes,
        deadline: float,
        *,
        ok_deadline: float | None = None,
        pacing: tuple[int, float] | None = None,
    ) -> ExecResult:
        """Send one piece of code and read its framed answer (no recovery here).

        ``pacing`` (chunk size, pause) overrides the link's own for this send.
        """
        # From here until the final '>' the board is busy with our code.
        self._in_raw = False
        if self._raw_paste and len(data) > self.chunk_size:
            self._send_raw_paste(data, deadline)
        else:
            chunk, pause = pacing or (self.chunk_size, self.pacing_s)
            self._send_plain(data, deadline, chunk, pause)
            self._expect(b"OK", deadline if ok_deadline is None else ok_deadline)
        cap = self.max_output
        stdout = self._read_until(CTRL_D, deadline, limit=cap)
        stderr = self._read_until(CTRL_D, deadline, limit=cap - len(stdout))
        self._expect(b">", deadline)
        self._in_raw = True
        return ExecResult(stdout=stdout, stderr=stderr)

    def _exec_verified(self, data: bytes, deadline: float) -> ExecResult:
        """Send code as a checked bytes literal first, then ``exec`` it on the board.

        For firmware that silently drops input bytes when its receive buffer overflows
        (the micro:bit's is 64 bytes): a dropped byte changes the length or the sum the
        board reports, or breaks the literal, and the staging step is sent again.  Only
        code that arrived intact runs.
        """
        stage = _STAGE_PREFIX + bytes_literal(data) + _STAGE_SUFFIX
        expected = ExecResult(stdout=b"%d %d\r\n" % (len(data), sum(data)), stderr=b"")
        last: ExecResult | None = None
        for attempt in range(_VERIFY_ATTEMPTS):
            # The first try goes at full speed; when bytes were lost, the next ones go
            # in small chunks with growing pauses (loss comes in bursts, under load).
            pacing = None
            if attempt:
                pause = max(self.pacing_s, _RETRY_PAUSE_S * 2 ** (attempt - 1))
                pacing = (_RETRY_CHUNK, min(pause, _RETRY_MAX_PAUSE_S))
            # 'OK' comes as soon as the board has the final Ctrl-D; if that byte was the
            # one dropped, the board waits for more: do not wait for the whole deadline.
            send_time = 0.0 if pacing is None else pacing[1] * (len(stage) // pacing[0])
            ok_budget = send_time + 0.05 + 100e-6 * len(stage)
            try:
                result = self._exec_frame(
                    stage,
                    deadline,
                    ok_deadline=min(deadline, time.monotonic() + ok_budget),
                    pacing=pacing,
                )
            except _DeadlinePassed:
                if time.monotonic() >= deadline or not self._recover(deadline):
                    raise
                self.damaged_sends += 1
                continue
            if result == expected:
                return self._exec_frame(_RUN_STAGED, deadline)
            last = result
            self.damaged_sends += 1
            if b"KeyboardInterrupt" in result.stderr:
                return result  # interrupt() from another thread: stop, do not retry
            if b"MemoryError" in result.stderr:
                # The staged copy does not fit the heap: send the code as it is.
                return self._exec_frame(data, deadline)
        answer = "no answer" if last is None else repr(last.stdout[-60:] + last.stderr[-120:])
        raise ProtocolError(
            f"code sent to {self.name} arrived damaged {_VERIFY_ATTEMPTS} times "
            f"(the board drops input bytes); last answer: {answer}",
            device=self.name,
        )

    def _send_plain(self, data: bytes, deadline: float, chunk: int, pause: float) -> None:
        if pause <= 0 or len(data) <= chunk:
            self._write(data + CTRL_D, deadline)
            return
        for start in range(0, len(data), chunk):
            if start:
                self._pause(pause, deadline)
            self._write(data[start : start + chunk], deadline)
        self._write(CTRL_D, deadline)

    def _send_raw_paste(self, data: bytes, deadline: float) -> None:
        self._write(RAW_PASTE_REQUEST, deadline)
        answer = self._take(2, deadline)
        if answer != b"R\x01":
            raise ProtocolError(
                f"{self.name} refused raw-paste mode it accepted before: {answer!r}",
                device=self.name,
            )
        window = int.from_bytes(self._take(2, deadline), "little")
        if window == 0:
            raise ProtocolError(f"{self.name} offered a raw-paste window of 0", device=self.name)
        remain = window
        sent = 0
        while sent < len(data):
            while remain == 0 or self._rx or self._in_waiting():
                flow = self._take(1, deadline)
                if flow == b"\x01":
                    remain += window
                elif flow == CTRL_D:
                    # The board ended the transfer early (a compile error, say): we
                    # acknowledge, and its output follows as usual.
                    self._write(CTRL_D, deadline)
                    return
                else:
                    raise ProtocolError(
                        f"{self.name} sent {flow!r} during raw-paste transfer", device=self.name
                    )
            piece = data[sent : sent + remain]
            self._write(piece, deadline)
            sent += len(piece)
            remain -= len(piece)
        self._write(CTRL_D, deadline)
        # The board acknowledges the end of the data with Ctrl-D, then runs the code.
        junk = self._read_until(CTRL_D, deadline, limit=self.max_output)
        for byte in junk:
            if byte != 1:
                raise ProtocolError(
                    f"{self.name} sent {junk[:40]!r} before the raw-paste acknowledgement",
                    device=self.name,
                )

    # --- entering and resynchronising ---------------------------------------------------

    def _enter_raw(self, deadline: float) -> None:
        """Ctrl-C, drain, Ctrl-A until the banner, then a nonce exec to be in step."""
        self._in_raw = False
        self._write(CTRL_C + CTRL_C, deadline)
        self._drain()
        interval = _FIRST_POLL_S
        while True:
            self._write(CTRL_A, deadline)
            poll_deadline = min(deadline, time.monotonic() + interval)
            try:
                self._read_until(
                    RAW_REPL_BANNER, poll_deadline, limit=_BANNER_SEARCH_LIMIT, keep=False
                )
                break
            except _DeadlinePassed:
                if time.monotonic() >= deadline:
                    raise
                interval = min(interval * 2, _MAX_POLL_INTERVAL_S)
                self._write(CTRL_C + CTRL_C, deadline)
        # Extra banners (from repeated polls) or a late traceback may still be on the way:
        # a nonce the board has to compute marks the point where the stream is in step.
        # A Ctrl-C that reached running code after the first one leaves a KeyboardInterrupt
        # pending, which then hits this check instead: run it again in that case.
        for _ in range(_SYNC_ATTEMPTS):
            nonce = self._rng.randrange(10**8, 10**9)
            self._write(b"print(%d+1)" % nonce + CTRL_D, deadline)
            marker = b"OK%d\r\n" % (nonce + 1) + CTRL_D + CTRL_D + b">"
            if self._read_until_either(marker, _INTERRUPTED_FRAME_END, deadline) == 0:
                break
        else:
            raise _DeadlinePassed
        if self._raw_paste is None:
            self._probe_raw_paste(deadline)
        self._in_raw = True

    def _probe_raw_paste(self, deadline: float) -> None:
        self._write(RAW_PASTE_REQUEST, deadline)
        head = self._take(2, deadline)
        if head == b"R\x01":
            # Supported: we have to finish the transfer; an empty one runs nothing.
            self._take(2, deadline)  # window size
            self._write(CTRL_D, deadline)
            self._read_until(CTRL_D, deadline, limit=_BANNER_SEARCH_LIMIT)  # ack
            self._read_until(CTRL_D, deadline, limit=_BANNER_SEARCH_LIMIT)  # stdout
            self._read_until(CTRL_D, deadline, limit=_BANNER_SEARCH_LIMIT)  # stderr
            self._expect(b">", deadline)
            self._raw_paste = True
        elif head == b"R\x00":
            self._raw_paste = False
        elif head == RAW_REPL_BANNER[:2]:
            # Old firmware: Ctrl-E and 'A' were taken as text, Ctrl-A re-entered raw REPL.
            self._expect(RAW_REPL_BANNER[2:], deadline)
            self._raw_paste = False
        else:
            raise ProtocolError(
                f"{self.name} answered the raw-paste probe with {head!r}", device=self.name
            )

    def _recover(self, deadline: float | None = None) -> bool:
        """After a failed exec: Ctrl-C and try to get the raw prompt back, bounded.

        Args:
            deadline: when to give up; by default ``resync_timeout`` from now.
        """
        self._in_raw = False
        if deadline is None:
            deadline = time.monotonic() + self.resync_timeout
        try:
            self._enter_raw(deadline)  # starts with Ctrl-C twice
        except (_DeadlinePassed, ProtocolError, _Overflow):
            self._rx.clear()
            return False
        return True

    # --- primitives ---------------------------------------------------------------------

    def _io(self, deadline: float, timeout: float) -> _IoGuard:
        return _IoGuard(self, deadline, timeout)

    def _check_usable(self) -> None:
        if self._closed:
            raise LinkLostError(f"link to {self.name} is closed", device=self.name)
        if self._lost:
            raise LinkLostError(f"link to {self.name} was lost", device=self.name)

    def _lose(self, exc: BaseException, what: str) -> LinkLostError:
        self._lost = True
        self._in_raw = False
        state = "closed" if self._closed else "lost"
        return LinkLostError(f"link to {self.name} {state} ({what}: {exc})", device=self.name)

    def _stale(self) -> bool:
        """True when bytes arrived outside any exchange (the board did something)."""
        return bool(self._rx) or self._in_waiting() > 0

    def _in_waiting(self) -> int:
        try:
            return int(self._port.in_waiting)
        except (serial.SerialException, OSError) as exc:
            raise self._lose(exc, "in_waiting") from exc
        except (TypeError, ValueError, AttributeError) as exc:
            if self._closed:
                raise self._lose(exc, "in_waiting") from exc
            raise

    def _drain(self) -> None:
        """Drop what was received so far, without waiting for more."""
        self._rx.clear()
        dropped = 0
        while dropped < self.max_output:
            waiting = self._in_waiting()
            if waiting <= 0:
                return
            dropped += len(self._read_now(waiting))

    def _read_now(self, size: int) -> bytes:
        port = self._port
        try:
            if port.timeout != 0:
                port.timeout = 0
            return port.read(size)
        except (serial.SerialException, OSError) as exc:
            raise self._lose(exc, "read") from exc
        except (TypeError, ValueError, AttributeError) as exc:
            if self._closed:
                raise self._lose(exc, "read") from exc
            raise

    def _read_chunk(self, deadline: float) -> bytes:
        """Wait (at most until ``deadline``) for some bytes and return all that came."""
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise _DeadlinePassed
        wait = _POLL_S if remaining > _POLL_S else remaining
        port = self._port
        try:
            if port.timeout != wait:
                port.timeout = wait
            data = port.read(1)
            if data:
                waiting = port.in_waiting
                if waiting > 0:
                    data += port.read(waiting)
        except (serial.SerialException, OSError) as exc:
            raise self._lose(exc, "read") from exc
        except (TypeError, ValueError, AttributeError) as exc:
            if self._closed:
                raise self._lose(exc, "read") from exc
            raise
        if self._closed:
            raise self._lose(RuntimeError("closed by another thread"), "read")
        return data

    def _read_until(self, term: bytes, deadline: float, *, limit: int, keep: bool = True) -> bytes:
        """Return the bytes before ``term`` and consume through it.

        Args:
            term: the terminator.
            deadline: ``time.monotonic()`` value to give up at.
            limit: most bytes allowed before ``term`` when ``keep``; beyond it
                ``_Overflow``.
            keep: when False the skipped bytes are not kept (bounded memory while
                searching a stream of garbage for a marker, bounded in time by the
                deadline) and ``b""`` is returned.
        """
        rx = self._rx
        start = 0
        while True:
            index = rx.find(term, start)
            if index >= 0:
                if keep and index > limit:
                    raise _Overflow
                out = bytes(rx[:index]) if keep else b""
                del rx[: index + len(term)]
                return out
            if keep:
                if len(rx) > limit:
                    raise _Overflow
                start = max(0, len(rx) - len(term) + 1)
            else:
                tail = len(term) - 1
                if len(rx) > tail:
                    del rx[: len(rx) - tail]
            rx += self._read_chunk(deadline)

    def _read_until_either(self, first: bytes, second: bytes, deadline: float) -> int:
        """Skip bytes until ``first`` (returns 0) or ``second`` (returns 1) is consumed.

        Memory stays bounded: only a tail as long as the longer marker is kept.
        """
        rx = self._rx
        keep = max(len(first), len(second)) - 1
        while True:
            i = rx.find(first)
            j = rx.find(second)
            if i >= 0 and (j < 0 or i <= j):
                del rx[: i + len(first)]
                return 0
            if j >= 0:
                del rx[: j + len(second)]
                return 1
            if len(rx) > keep:
                del rx[: len(rx) - keep]
            rx += self._read_chunk(deadline)

    def _take(self, size: int, deadline: float) -> bytes:
        """Exactly ``size`` bytes from the stream."""
        rx = self._rx
        while len(rx) < size:
            rx += self._read_chunk(deadline)
        out = bytes(rx[:size])
        del rx[:size]
        return out

    def _expect(self, expected: bytes, deadline: float) -> None:
        got = self._take(len(expected), deadline)
        if got != expected:
            context = bytes(self._rx[:40])
            raise ProtocolError(
                f"{self.name} sent {got + context!r} where {expected!r} was expected",
                device=self.name,
                expected=expected.decode("latin-1"),
            )

    def _write(self, data: bytes, deadline: float) -> None:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise _DeadlinePassed
        port = self._port
        try:
            current = port.write_timeout
            # Reconfiguring a real port costs a few microseconds: only do it when the
            # current write timeout would overrun the deadline or is far too short.
            if current is None or current > remaining or current < remaining / 2:
                port.write_timeout = remaining
            port.write(data)
        except serial.SerialTimeoutException as exc:
            raise _DeadlinePassed from exc
        except (serial.SerialException, OSError) as exc:
            raise self._lose(exc, "write") from exc
        except (TypeError, ValueError, AttributeError) as exc:
            if self._closed:
                raise self._lose(exc, "write") from exc
            raise

    def _pause(self, seconds: float, deadline: float) -> None:
        """Pacing between chunks (the only sleep in the link), bounded by the deadline."""
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise _DeadlinePassed
        time.sleep(min(seconds, remaining))


class _IoGuard:
    """Holds the link's lock for one call and checks the link is usable."""

    __slots__ = ("_deadline", "_link", "_timeout")

    def __init__(self, link: RawReplLink, deadline: float, timeout: float) -> None:
        self._link = link
        self._deadline = deadline
        self._timeout = timeout

    def __enter__(self) -> None:
        link = self._link
        link._check_usable()
        if not link._lock.acquire(timeout=max(0.0, self._deadline - time.monotonic())):
            raise TimedOutError(
                f"link to {link.name} stayed busy with another call for {self._timeout:g} s",
                device=link.name,
                timeout=self._timeout,
                busy=True,
                resynced=True,
            )
        try:
            link._check_usable()
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
