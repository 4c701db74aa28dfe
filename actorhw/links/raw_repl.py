"""MicroPython raw-REPL link over any pyserial port.

The raw REPL is the machine interface of MicroPython: ``Ctrl-A`` enters it, the host
sends source code followed by ``Ctrl-D`` and the board answers
``OK<stdout>\\x04<stderr>\\x04>``.  What those bytes mean is :mod:`actorhw.links.framing`
(pure); the deadline-bounded reads and writes are :mod:`actorhw.links.port_io`; this
module holds the protocol between them.

:class:`RawReplLink` keeps one port open for its whole life, enters the raw REPL once
and then runs many ``exec`` calls back to back.  Every read runs against a deadline: a
board that stops answering gives :class:`~actorhw.core.errors.TimedOutError`, a port that
vanishes :class:`~actorhw.core.errors.LinkLostError`, bytes that break the framing
:class:`~actorhw.core.errors.ProtocolError`, and output that contains the raw REPL's own
markers so that it cannot be split exactly :class:`~actorhw.core.errors.ResultParseError`
(the link stays in step: no reset for it).

Threading: one I/O thread at a time drives a link; calls from several threads are
serialised by a lock (waited for no longer than the call's timeout).  :meth:`interrupt`
and :meth:`close` may be called from any thread while an ``exec`` runs.

This module imports core only.
"""

from __future__ import annotations

import re
import threading
import time
from types import TracebackType
from typing import Final, Self

from actorhw.core.errors import (
    DeviceExceptionError,
    InvalidArgumentError,
    ProtocolError,
    RawReplError,
    ResultParseError,
    TimedOutError,
)
from actorhw.links.framing import (
    RAW_REPL_BANNER,
    ExecResult,
    bytes_literal,
    parse_traceback,
)
from actorhw.links.port_io import DeadlinePassed, PortIO, SerialPort
from actorhw.links.raw_control import BoardControl, CallGuard
from actorhw.links.raw_protocol import RawReplProtocol
from actorhw.links.serial_port import open_serial

__all__ = [
    "DEFAULT_MAX_OUTPUT",
    "RAW_REPL_BANNER",
    "ExecResult",
    "RawReplLink",
    "SerialPort",
    "bytes_literal",
    "parse_traceback",
]

DEFAULT_MAX_OUTPUT: Final = 1024 * 1024
"""Default cap, in bytes, on the stdout + stderr of one ``exec``."""

_monotonic = time.monotonic
_CONTROL_BYTES: Final = re.compile(rb"[\x01-\x05]")


class RawReplLink(BoardControl, RawReplProtocol):
    """A MicroPython raw-REPL link over one serial port.

    Create it with :meth:`open`, which opens the port and enters the raw REPL, or wrap
    an already open port with the constructor (then call :meth:`enter_raw_repl`, or let
    the first :meth:`exec` do it).

    Raw-paste mode (``Ctrl-E A Ctrl-A``) is probed once per link, when the raw REPL is
    first entered: boards that have it receive code longer than ``chunk_size`` through
    it, at the pace of the window the board offers; short code, and all code on boards
    without it (the micro:bit's 1.9.2 answers the probe with the plain banner), goes
    through the plain raw REPL in one write, or in ``chunk_size`` pieces ``pacing_s``
    apart when pacing is on.

    Args:
        port: an open pyserial port (or anything that fits :class:`SerialPort`).
        name: name of the board in errors (defaults to the port's name).
        pacing_s: pause between ``chunk_size`` pieces of code in plain raw-REPL mode.
        chunk_size: piece size for pacing, and the size above which raw-paste is used.
        max_output: cap on stdout + stderr of one exec, in bytes.
        resync_timeout: how long, after a timeout or a framing error, the link tries to
            get the raw prompt back before giving up.
        verify_over: code longer than this many bytes is sent verified, for firmware
            that drops input bytes (the micro:bit's 64-byte ring): in frames of at most
            this many bytes (at least 40), each sent once the previous one is answered,
            joined on the board, its length and sum checked, then ``exec``-ed there.
            None (the default) sends all code as it is; never used with raw-paste.
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
            raise InvalidArgumentError("pacing_s must be >= 0", argument="pacing_s", value=pacing_s)
        if chunk_size < 1:
            raise InvalidArgumentError(
                "chunk_size must be >= 1", argument="chunk_size", value=chunk_size
            )
        if max_output < 1:
            raise InvalidArgumentError(
                "max_output must be >= 1", argument="max_output", value=max_output
            )
        if resync_timeout <= 0:
            raise InvalidArgumentError(
                "resync_timeout must be > 0", argument="resync_timeout", value=resync_timeout
            )
        if verify_over is not None and verify_over < 0:
            raise InvalidArgumentError(
                "verify_over must be >= 0", argument="verify_over", value=verify_over
            )
        self.name = name or str(getattr(port, "name", None) or getattr(port, "port", "serial"))
        super().__init__(PortIO(port, self.name))
        self.pacing_s = pacing_s
        self.chunk_size = chunk_size
        self.max_output = max_output
        self.resync_timeout = resync_timeout
        self.verify_over = verify_over
        self.damaged_sends = 0
        """How many verified sends arrived damaged and were sent again (a statistic)."""
        self.raw_paste_sends = 0
        """How many execs went through raw-paste mode (a statistic)."""
        self._lock = threading.Lock()

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
        dtr: bool | None = None,
        rts: bool | None = None,
    ) -> RawReplLink:
        """Open a port and (by default) enter the raw REPL.

        Args:
            url: a device path (``/dev/ttyACM0``), a pyserial URL (``socket://host:port``,
                ``rfc2217://host:port``, ``loop://``) or an already open port.
            timeout: deadline in seconds for entering the raw REPL (the firmware may
                still be booting: the link polls with Ctrl-C/Ctrl-A until it answers).
            baudrate: line speed (ignored by ptys and USB CDC).
            exclusive: lock a device path so two links cannot share a board by accident.
            enter_raw: enter the raw REPL now (default) or leave it to the first call.
            name: name of the board in errors (defaults to the url).
            dtr: set DTR to this level on open; None (the default) leaves it alone.
            rts: set RTS to this level on open; None leaves it alone.
            pacing_s, chunk_size, max_output, resync_timeout, verify_over: see the class.

        Raises:
            LinkLostError: the port cannot be opened.
            RawReplError: the board did not enter the raw REPL within ``timeout``.
        """
        if isinstance(url, str):
            port: SerialPort = open_serial(
                url,
                baudrate=baudrate,
                write_timeout=max(timeout, 0.001),
                exclusive=exclusive,
                dtr=dtr,
                rts=rts,
                name=name or url,
            )
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
        self._in_raw = False
        self._io.close()

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
        state = "closed" if self.closed else "lost" if self.lost else "open"
        return f"<RawReplLink {self.name} {state} raw={self._in_raw}>"

    # --- state ---------------------------------------------------------------------------

    @property
    def port(self) -> SerialPort:
        """The underlying serial port."""
        return self._io.port

    @property
    def in_raw_repl(self) -> bool:
        """Whether the link believes the board sits at the raw-REPL prompt."""
        return self._in_raw

    @property
    def raw_paste(self) -> bool | None:
        """Whether the board supports raw-paste mode (None: not probed yet)."""
        return self._raw_paste

    @property
    def raw_paste_window(self) -> int:
        """The flow-control window the board offered for raw-paste (0: no raw-paste)."""
        return self._window

    @property
    def closed(self) -> bool:
        """True once :meth:`close` was called."""
        return self._io.closed

    @property
    def lost(self) -> bool:
        """True once the port failed; every later call raises ``LinkLostError``."""
        return self._io.lost

    def gone(self) -> str | None:
        """Without a byte on the line, and from any thread: why the port is no longer
        there (closed, lost, hung up by the kernel as an unplugged USB board's is, its
        socket closed by the other end), or None while it looks there.

        Cheap (a poll and an ioctl on a device path): for a watch that looks several
        times a second at a board nobody uses.
        """
        return self._io.gone()

    @property
    def _rx(self) -> bytearray:
        """The receive buffer (tests check it stays bounded)."""
        return self._io.rx

    # --- public operations ------------------------------------------------------------------

    def enter_raw_repl(self, *, timeout: float) -> None:
        """Interrupt whatever runs and enter the raw REPL.

        Sends Ctrl-C twice, drops what the board already sent, then Ctrl-A, and waits
        for the banner, again at growing intervals while the board stays silent (still
        booting, say).  A tiny exec of a random number then checks that the stream is
        in step; on the first entry raw-paste support is probed.

        Raises:
            RawReplError: no banner (or no answer to the check) within ``timeout``.
            ProtocolError: the answer to the raw-paste probe broke the framing.
            LinkLostError: the port closed or vanished.
        """
        deadline = time.monotonic() + timeout
        with CallGuard(self, deadline, timeout):
            self._enter_by(deadline, timeout)

    def exec(self, code: str | bytes, *, timeout: float) -> ExecResult:
        """Run code on the board and return what it printed, exactly.

        Enters the raw REPL first if the link is not in it (or stray bytes arrived
        since the last call).  Returns or raises within ``timeout + resync_timeout``.

        Args:
            code: MicroPython source; must not contain the control bytes 0x01-0x05.
            timeout: deadline in seconds for sending the code and reading all output.

        Returns:
            stdout and stderr; a device-side exception is in ``stderr``, not raised
            (see :meth:`exec_checked`).

        Raises:
            TimedOutError: no complete answer within ``timeout``; the link sent Ctrl-C
                and tried to get the raw prompt back: ``resynced`` says whether it did.
            ProtocolError: the answer broke the framing or exceeded ``max_output``.
            ResultParseError: the output contains the raw REPL's ``\\x04`` so that
                stdout and stderr cannot be told apart exactly (the link is in step).
            RawReplError: the raw REPL could not be entered first.
            LinkLostError: the port closed or vanished.
            InvalidArgumentError: the code contains raw-REPL control bytes.
        """
        data = code.encode("utf-8") if isinstance(code, str) else bytes(code)
        if _CONTROL_BYTES.search(data) is not None:
            raise InvalidArgumentError(
                "code must not contain raw-REPL control bytes 0x01-0x05", device=self.name
            )
        deadline = _monotonic() + timeout
        io, lock = self._io, self._lock
        if io.closed or io.lost or not lock.acquire(False):
            with CallGuard(self, deadline, timeout):  # closed, or another call runs: wait
                return self._exec_locked(data, deadline, timeout)
        try:
            return self._exec_locked(data, deadline, timeout)
        finally:
            lock.release()

    def exec_checked(self, code: str | bytes, *, timeout: float) -> str:
        """Run code and return its stdout as text (``\\r\\n`` -> ``\\n``); raise if it raised.

        Raises:
            DeviceExceptionError: the code raised on the board (``exc_name``,
                ``traceback_text`` tell what).
            TimedOutError, ProtocolError, ResultParseError, RawReplError, LinkLostError,
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

    # --- the exec protocol ----------------------------------------------------------------

    def _enter_by(self, deadline: float, timeout: float) -> None:
        """Enter the raw REPL before ``deadline`` (RawReplError naming ``timeout`` if not)."""
        try:
            self._enter_raw(deadline)
        except DeadlinePassed as exc:
            raise RawReplError(
                f"{self.name} did not enter the raw REPL within {timeout:g} s",
                device=self.name,
                timeout=timeout,
            ) from exc

    def _exec_locked(self, data: bytes, deadline: float, timeout: float) -> ExecResult:
        io = self._io
        if not self._in_raw or io.rx or io.in_waiting():
            self._enter_by(deadline, timeout)
        try:
            if (
                self.verify_over is not None
                and len(data) > self.verify_over
                and not self._raw_paste
            ):
                return self._exec_verified(data, deadline)
            if not io.rx and len(data) <= self.chunk_size:
                return self._exec_short(data, deadline)
            return self._exec_frame(data, deadline)
        except DeadlinePassed as exc:
            resynced = self._recover()
            raise TimedOutError(
                f"{self.name} gave no complete answer within {timeout:g} s"
                + ("" if resynced else "; it does not answer Ctrl-C either (hung)"),
                device=self.name,
                timeout=timeout,
                resynced=resynced,
            ) from exc
        except ResultParseError:
            self._in_raw = True  # the answer was read to its true end: in step
            raise
        except ProtocolError as exc:
            resynced = self._recover()
            context = {**exc.context, "resynced": resynced}
            raise ProtocolError(exc.message, **context) from exc
