"""A BBC micro:bit running the real MicroPython firmware in QEMU.

``qemu-system-arm -M microbit`` emulates the board and exposes its UART as a pty;
:class:`QemuMicrobit` boots one, finds the pty, and powers it off (``kill -9``, the
equivalent of pulling the USB cable).  The QEMU process is tied to the Python process:
it gets SIGKILL when Python dies, however it dies (a watchdog on a pipe, see below), and
boards still running at a normal interpreter exit are powered off and reaped.

This module knows nothing of actors.
"""

from __future__ import annotations

import contextlib
import functools
import os
import re
import select
import shutil
import signal
import subprocess
import threading
import time
import weakref
from pathlib import Path
from types import TracebackType
from typing import IO, Final, Self

from actorhw.core.errors import LinkError, TimedOutError
from actorhw.links.raw_repl import RawReplLink

__all__ = [
    "DEFAULT_FIRMWARE",
    "MICROBIT_VERIFY_OVER",
    "QEMU_BINARY",
    "QemuMicrobit",
    "qemu_available",
]

QEMU_BINARY: Final = "qemu-system-arm"
DEFAULT_FIRMWARE: Final = Path(
    os.environ.get(
        "ACTORHW_MICROBIT_FIRMWARE", "/usr/share/firmware-microbit-micropython/firmware.hex"
    )
)
"""The micro:bit MicroPython firmware (override with ``ACTORHW_MICROBIT_FIRMWARE``)."""

MICROBIT_VERIFY_OVER: Final = 60
"""Longest code sent to a micro:bit as it is; longer code is sent verified.

The firmware keeps received bytes in a 64-byte ring and silently drops what does not
fit.  The emulated UART delivers bytes as fast as the interrupt handler takes them, so
whenever the REPL loop stalls (garbage collection, timer interrupts catching up after
the host descheduled QEMU) a long write loses a run of 1 to ~100 bytes: measured on
this 2-core machine, between 1 in 150 and 1 in 20 writes of 1 KiB depending on host
load, with or without pacing (mpremote's 256 bytes per 10 ms too).  A lost run can
leave valid code that does something else (a ``print`` swallowed into a comment).
Code that fits the ring (plus its Ctrl-D) cannot lose bytes; longer code goes through
``RawReplLink``'s verified send, in frames that each fit the ring and wait for their
answer.
"""

_PTY_LINE: Final = re.compile(rb"char device redirected to (\S+) \(label serial0\)")
_MAX_BANNER_BYTES: Final = 64 * 1024


@functools.cache
def _qemu_supports_microbit(binary: str) -> str | None:
    try:
        out = subprocess.run(
            [binary, "-M", "help"],
            stdin=subprocess.DEVNULL,
            capture_output=True,
            timeout=20,
            check=False,
        )
    except (OSError, subprocess.SubprocessError) as exc:
        return f"{binary} -M help failed: {exc}"
    if b"microbit" not in out.stdout:
        return f"{binary} has no 'microbit' machine (qemu too old?)"
    return None


def qemu_available(firmware: str | Path = DEFAULT_FIRMWARE) -> str | None:
    """Tell why a QEMU micro:bit cannot be booted here, or None if it can.

    Args:
        firmware: the firmware hex file to check.

    Returns:
        None when ``qemu-system-arm`` (with the ``microbit`` machine) and the firmware
        are installed; else a sentence naming what is missing and how to install it.
    """
    binary = shutil.which(QEMU_BINARY)
    if binary is None:
        return f"{QEMU_BINARY} not found on PATH (apt-get install qemu-system-arm)"
    if not Path(firmware).is_file():
        return (
            f"micro:bit firmware {firmware} not found "
            "(apt-get install firmware-microbit-micropython)"
        )
    return _qemu_supports_microbit(binary)


# --- tying QEMU to our process -----------------------------------------------------------
#
# QEMU runs under a tiny sh watchdog that holds the read end of a pipe whose only write
# end is ours: when this process dies, however it dies (SIGKILL included), the pipe
# reaches EOF and the watchdog kills QEMU.  prctl(PR_SET_PDEATHSIG) was not enough: it
# fires when the *thread* that forked the child ends, so a board powered on from a worker
# thread would die with that thread.  The shell lives exactly as long as QEMU and reaps
# it and the watchdog, so no zombie is left behind.

_WATCHDOG: Final = """\
exec 3<&0 0</dev/null
"$@" 3<&- &
q=$!
echo "actorhw-qemu-pid $q"
{ read -r _ <&3; kill -9 "$q" 2>/dev/null; } &
w=$!
exec 3<&-
wait "$q"
kill -9 "$w" 2>/dev/null
wait "$w" 2>/dev/null
"""
_PID_LINE: Final = re.compile(rb"actorhw-qemu-pid (\d+)")


def _spawn(argv: list[str]) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        ["/bin/sh", "-c", _WATCHDOG, "actorhw-qemu-watchdog", *argv],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        start_new_session=False,
        close_fds=True,
    )


def _unplug(proc: subprocess.Popen[bytes]) -> None:
    """Last resort for a board that was never powered off (garbage or interpreter exit)."""
    _close_quietly(proc.stdin)  # the watchdog kills QEMU on EOF
    with contextlib.suppress(subprocess.TimeoutExpired):
        proc.wait(timeout=2.0)
    _close_quietly(proc.stdout)


class QemuMicrobit:
    """One emulated BBC micro:bit running MicroPython.

    ``power_on`` starts QEMU and finds the board's pty; open a
    :class:`~actorhw.links.raw_repl.RawReplLink` on :attr:`pty` (the firmware answers
    within tens of milliseconds of power-on; the link polls until it does).
    ``power_off`` is ``kill -9`` of QEMU: the pty closes and a link on it sees
    ``LinkLostError``, as with an unplugged USB board.

    Args:
        firmware: the firmware hex file.
        name: the board's name (in errors and ``repr``).
        qemu: the QEMU binary.
    """

    def __init__(
        self,
        *,
        firmware: str | Path = DEFAULT_FIRMWARE,
        name: str = "microbit",
        qemu: str = QEMU_BINARY,
    ) -> None:
        self.firmware = Path(firmware)
        self.name = name
        self.qemu = qemu
        self._proc: subprocess.Popen[bytes] | None = None
        self._qemu_pid: int | None = None
        self._pty: str | None = None
        self._output = bytearray()
        self._lock = threading.Lock()
        self._finalizer: weakref.finalize[[subprocess.Popen[bytes]], QemuMicrobit] | None = None

    # --- state --------------------------------------------------------------------------

    @property
    def pty(self) -> str:
        """The board's serial port (``/dev/pts/N``).

        Raises:
            LinkError: the board is powered off.
        """
        if self._pty is None or self._proc is None:
            raise LinkError(f"{self.name} is powered off", device=self.name)
        return self._pty

    @property
    def pid(self) -> int | None:
        """The QEMU process id, or None when powered off."""
        return None if self._proc is None else self._qemu_pid

    @property
    def alive(self) -> bool:
        """True while QEMU runs (its watchdog shell lives exactly as long)."""
        proc = self._proc
        return proc is not None and self._qemu_pid is not None and proc.poll() is None

    @property
    def output(self) -> bytes:
        """What QEMU printed at start-up (its messages, not the board's UART)."""
        return bytes(self._output)

    def argv(self) -> list[str]:
        """The QEMU command line."""
        return [
            self.qemu,
            "-M",
            "microbit",
            "-device",
            f"loader,file={self.firmware}",
            "-nographic",
            "-serial",
            "pty",
            "-monitor",
            "none",
        ]

    # --- power --------------------------------------------------------------------------

    def power_on(self, *, timeout: float) -> str:
        """Start QEMU and wait for it to name the board's pty.

        Args:
            timeout: deadline in seconds.

        Returns:
            The pty path.

        Raises:
            LinkError: QEMU is missing, or exited before naming a pty (the message
                carries its output).
            TimedOutError: QEMU named no pty within ``timeout`` (it is killed).
        """
        deadline = time.monotonic() + timeout
        with self._lock:
            if self._proc is not None:
                if self._proc.poll() is None:
                    return self.pty
                self._reap(deadline)
            reason = qemu_available(self.firmware)
            if reason is not None:
                raise LinkError(f"cannot boot {self.name}: {reason}", device=self.name)
            self._output.clear()
            self._qemu_pid = None
            try:
                proc = _spawn(self.argv())
            except OSError as exc:
                raise LinkError(f"cannot start {self.qemu}: {exc}", device=self.name) from exc
            self._proc = proc
            # Powered off even if never powered off by hand: when the board is garbage
            # collected, or at interpreter exit.
            self._finalizer = weakref.finalize(self, _unplug, proc)
            try:
                self._pty = self._read_pty(proc, deadline, timeout)
            except BaseException:
                self._kill_and_reap(time.monotonic() + 5.0)
                raise
            return self._pty

    def power_off(self, *, timeout: float = 5.0) -> None:
        """Kill QEMU (``kill -9``, like pulling the cable) and reap it.

        Safe to call when already off and from any thread.

        Args:
            timeout: deadline in seconds for the process to be reaped.

        Raises:
            TimedOutError: the process could not be reaped in time.
        """
        deadline = time.monotonic() + timeout
        with self._lock:
            self._kill_and_reap(deadline)

    def power_cycle(self, *, timeout: float) -> str:
        """Power off, then on: a fresh firmware on a new pty.

        Args:
            timeout: deadline in seconds for both steps.

        Returns:
            The new pty path.
        """
        deadline = time.monotonic() + timeout
        self.power_off(timeout=timeout)
        return self.power_on(timeout=max(0.0, deadline - time.monotonic()))

    def close(self) -> None:
        """Power off (same as :meth:`power_off`)."""
        self.power_off()

    def open_link(
        self,
        *,
        timeout: float,
        exclusive: bool = True,
        resync_timeout: float = 0.5,
        verify_over: int | None = MICROBIT_VERIFY_OVER,
    ) -> RawReplLink:
        """Open a raw-REPL link on the board and wait until the firmware answers.

        Args:
            timeout: deadline in seconds for the firmware to answer.
            exclusive: lock the pty so that no second link shares the board.
            resync_timeout: see :class:`~actorhw.links.raw_repl.RawReplLink`.
            verify_over: code longer than this is sent verified (see
                :data:`MICROBIT_VERIFY_OVER`); None sends everything as it is.

        Returns:
            The link, in the raw REPL.

        Raises:
            LinkError: the board is powered off.
            RawReplError: the firmware did not answer within ``timeout``.
        """
        return RawReplLink.open(
            self.pty,
            timeout=timeout,
            name=self.name,
            exclusive=exclusive,
            resync_timeout=resync_timeout,
            verify_over=verify_over,
        )

    @staticmethod
    def wait_ready(link: RawReplLink, timeout: float) -> None:
        """Wait until the firmware answers on ``link`` (polls Ctrl-C/Ctrl-A, no sleep).

        Args:
            link: a link on the board's pty.
            timeout: deadline in seconds.

        Raises:
            RawReplError: the firmware did not answer within ``timeout``.
        """
        link.enter_raw_repl(timeout=timeout)

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.power_off()

    def __repr__(self) -> str:
        state = f"pid={self.pid} pty={self._pty}" if self.alive else "off"
        return f"<QemuMicrobit {self.name} {state}>"

    # --- internals ----------------------------------------------------------------------

    def _read_pty(self, proc: subprocess.Popen[bytes], deadline: float, timeout: float) -> str:
        stdout = proc.stdout
        assert stdout is not None
        fd = stdout.fileno()
        while True:
            if self._qemu_pid is None:
                pid_match = _PID_LINE.search(self._output)
                if pid_match is not None:
                    self._qemu_pid = int(pid_match.group(1))
            match = _PTY_LINE.search(self._output)
            if match is not None and self._qemu_pid is not None:
                return match.group(1).decode()
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TimedOutError(
                    f"{self.qemu} named no pty for {self.name} within {timeout:g} s; "
                    f"output: {self._output[-500:]!r}",
                    device=self.name,
                    timeout=timeout,
                )
            ready, _, _ = select.select([fd], [], [], remaining)
            if not ready:
                continue
            chunk = os.read(fd, 4096)
            if not chunk:
                proc.wait(timeout=max(0.1, deadline - time.monotonic()))
                raise LinkError(
                    f"{self.qemu} exited with {proc.returncode} before naming a pty: "
                    f"{self._output[-500:]!r}",
                    device=self.name,
                    returncode=proc.returncode,
                )
            if len(self._output) < _MAX_BANNER_BYTES:
                self._output += chunk

    def _kill_and_reap(self, deadline: float) -> None:
        proc = self._proc
        if proc is None:
            return
        if proc.poll() is None and self._qemu_pid is not None:
            # Until the watchdog shell reaps it, QEMU's pid cannot be reused: this
            # signal cannot reach another process.
            with contextlib.suppress(ProcessLookupError):
                os.kill(self._qemu_pid, signal.SIGKILL)
        # EOF on the pipe makes the watchdog kill QEMU too (if its pid was not known yet).
        _close_quietly(proc.stdin)
        self._reap(deadline)

    def _reap(self, deadline: float) -> None:
        proc = self._proc
        if proc is None:
            return
        try:
            proc.wait(timeout=max(0.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired as exc:
            raise TimedOutError(
                f"QEMU of {self.name} (pid {proc.pid}) did not exit after SIGKILL",
                device=self.name,
                pid=proc.pid,
            ) from exc
        _close_quietly(proc.stdin)
        _close_quietly(proc.stdout)
        self._proc = None
        self._qemu_pid = None
        self._pty = None
        if self._finalizer is not None:
            self._finalizer.detach()
            self._finalizer = None


def _close_quietly(stream: IO[bytes] | None) -> None:
    if stream is not None:
        with contextlib.suppress(OSError):
            stream.close()
