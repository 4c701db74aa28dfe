"""In-process fakes for the serial transport tests.

:class:`FakeSerial` is a pyserial-shaped port (``read``/``write``/``in_waiting``/
``timeout``/``write_timeout``/``close``): what the host writes goes to a board object,
what the board answers is queued for ``read``, which honours ``timeout`` by waiting on a
condition variable (no sleeping).

:class:`FakeMicroPython` is a board that speaks the MicroPython raw REPL well enough to
drive :class:`actorhw.links.RawReplLink`: friendly and raw REPL, Ctrl-A/B/C/D, soft reset,
the three possible answers to a raw-paste request, code that loops until Ctrl-C, code
that hangs for good, and scripted garbage.  Code is run by a handler; the default one
runs it as host Python with a private ``print`` (the tests only send trusted code).
"""

from __future__ import annotations

import io
import threading
from collections.abc import Callable, Iterator
from typing import Any, Literal

import serial

BANNER = b"raw REPL; CTRL-B to exit\r\n>"
ANSWER_TRAILER = BANNER
"""What follows a complete answer: the banner answering the link's trailing Ctrl-A."""
FRIENDLY_BANNER = b"MicroPython v1.9.2 on 2017-09-01; fake with nRF51822\r\n>>> "
KEYBOARD_INTERRUPT = (
    b'Traceback (most recent call last):\r\n  File "<stdin>", line 1, in <module>\r\n'
    b"KeyboardInterrupt: \r\n"
)

# What a handler may return: (stdout, stderr), or one of these behaviours.
LOOP = "loop"  # runs until Ctrl-C, then KeyboardInterrupt (like `while True: pass`)
HANG = "hang"  # never answers anything again (like microbit.temperature() in QEMU)
FLOOD = "flood"  # prints without end until Ctrl-C (like `while True: print(...)`)

Outcome = tuple[bytes, bytes] | str
Handler = Callable[[bytes], Outcome]
PasteMode = Literal["banner", "unsupported", "supported"]


class FakeSerial:
    """A pyserial-shaped port wired to a fake board.

    Args:
        board: receives every written chunk via ``on_input(port, data)``.
        name: the port name.
    """

    def __init__(self, board: FakeMicroPython | None = None, *, name: str = "fake") -> None:
        self.name = name
        self.port = name
        self.board = board
        self.timeout: float | None = None
        self.write_timeout: float | None = None
        self.is_open = True
        self.written = bytearray()
        self.fail_read: BaseException | None = None
        self.fail_write: BaseException | None = None
        self.fail_in_waiting: BaseException | None = None
        self.flood: Iterator[bytes] | None = None
        self.max_rx_seen = 0
        self._rx = bytearray()
        self._cond = threading.Condition()

    # --- board side -----------------------------------------------------------------------

    def feed(self, data: bytes) -> None:
        """Queue bytes from the board for the host to read."""
        with self._cond:
            self._rx += data
            self.max_rx_seen = max(self.max_rx_seen, len(self._rx))
            self._cond.notify_all()

    def _top_up(self) -> None:
        if self.flood is not None and len(self._rx) < 4096:
            self._rx += next(self.flood)

    # --- pyserial API ---------------------------------------------------------------------

    @property
    def in_waiting(self) -> int:
        if self.fail_in_waiting is not None:
            raise self.fail_in_waiting
        if not self.is_open:
            raise serial.PortNotOpenError()
        if self.board is not None:
            self.board.on_host_read(self)
        with self._cond:
            self._top_up()
            return len(self._rx)

    def read(self, size: int = 1) -> bytes:
        if not self.is_open:
            raise serial.PortNotOpenError()
        if self.fail_read is not None:
            raise self.fail_read
        if self.board is not None:
            self.board.on_host_read(self)
        with self._cond:
            self._top_up()
            self._cond.wait_for(lambda: len(self._rx) >= size or not self.is_open, self.timeout)
            if not self.is_open:
                raise serial.SerialException("port closed during read")
            out = bytes(self._rx[:size])
            del self._rx[:size]
            return out

    def write(self, data: bytes) -> int:
        if not self.is_open:
            raise serial.PortNotOpenError()
        if self.fail_write is not None:
            raise self.fail_write
        data = bytes(data)
        self.written += data
        if self.board is not None:
            self.board.on_input(self, data)
        return len(data)

    def cancel_read(self) -> None:
        with self._cond:
            self._cond.notify_all()

    def close(self) -> None:
        with self._cond:
            self.is_open = False
            self._cond.notify_all()


def python_handler() -> Handler:
    """A handler that runs code as host Python, MicroPython-style output and tracebacks."""
    namespace: dict[str, Any] = {}

    def run(code: bytes) -> Outcome:
        text = code.decode("utf-8")
        if "while True: pass" in text:
            return LOOP
        if "temperature()" in text:
            return HANG
        if "while True: print" in text:
            return FLOOD
        # The fake board's heap is the test process's: its gc.collect() must not run a
        # full collection of the whole pytest session (it took over 1 s in a full run,
        # past a verified send's 1 s frame deadline, and a test failed on it).
        text = text.replace("gc.collect()", "None")
        out = io.StringIO()

        def fake_print(*args: Any, sep: str = " ", end: str = "\n") -> None:
            out.write(sep.join(str(a) for a in args) + end)

        namespace["print"] = fake_print
        try:
            exec(compile(text, "<stdin>", "exec"), namespace)
        except Exception as exc:  # the board reports any exception on stderr
            stdout = out.getvalue().replace("\n", "\r\n").encode()
            tb = (
                'Traceback (most recent call last):\r\n  File "<stdin>", line 1, in <module>\r\n'
                f"{type(exc).__name__}: {exc}\r\n"
            )
            return stdout, tb.encode()
        return out.getvalue().replace("\n", "\r\n").encode(), b""

    run.namespace = namespace  # type: ignore[attr-defined]
    return run


class FakeMicroPython:
    """A board that speaks the raw REPL (a small state machine fed byte by byte).

    Args:
        handler: runs the code of one exec; defaults to :func:`python_handler`.
        paste: how the board answers ``Ctrl-E A Ctrl-A``: ``banner`` (MicroPython 1.9,
            the bytes are taken as text and Ctrl-A re-enters raw REPL), ``unsupported``
            (``R\\x00``) or ``supported`` (``R\\x01`` and a window).
        window: raw-paste window size.
        booting: number of input bytes ignored at first (firmware still booting).
    """

    def __init__(
        self,
        handler: Handler | None = None,
        *,
        paste: PasteMode = "banner",
        window: int = 32,
        booting: int = 0,
    ) -> None:
        self.handler = handler or python_handler()
        self.paste = paste
        self.window = window
        self.booting = booting
        self.mode = "friendly"
        self.line = bytearray()
        self.pending_ctrl_e = 0
        self.paste_received = 0
        self.paste_transfers = 0
        self.execs: list[bytes] = []
        self.soft_resets = 0
        self.running = threading.Event()
        self.override: Callable[[bytes], bytes | None] | None = None
        self.drop: Callable[[int, int], bool] | None = None
        """Called with (index of the byte since power-on, byte); True drops it."""
        self.received = 0
        self.lock = threading.RLock()
        self.mute_trailer = False
        """Set by a scripted answer: the next Ctrl-A (the link's trailer) gets no banner,
        because the scripted bytes stand for the whole answer, banner included."""

    def on_host_read(self, port: FakeSerial) -> None:
        """Called as the host reads or polls: this board has nothing to catch up on."""

    def on_input(self, port: FakeSerial, data: bytes) -> None:
        with self.lock:
            for value in data:
                self.received += 1
                if self.drop is not None and self.drop(self.received, value):
                    continue  # lost, like a byte that overflows the firmware's ring
                self._byte(port, value)

    def _byte(self, port: FakeSerial, c: int) -> None:
        if self.booting > 0:
            self.booting -= 1
            return
        if self.mode == "hung":
            return
        if self.mode in ("running", "flooding"):
            if c == 3:
                port.flood = None
                self.running.clear()
                self.mode = "raw"
                port.feed(b"\x04" + KEYBOARD_INTERRUPT + b"\x04>")
            return
        if self.mode == "friendly":
            self._friendly(port, c)
        elif self.mode == "paste":
            self._paste_byte(port, c)
        else:
            self._raw(port, c)

    def _friendly(self, port: FakeSerial, c: int) -> None:
        if c == 1:
            self.mode = "raw"
            self.line.clear()
            port.feed(b"\r\n" + BANNER)
        elif c == 3:
            self.line.clear()
            port.feed(b"\r\n>>> ")
        elif c == 4 and not self.line:
            self._soft_reset(port)
            port.feed(FRIENDLY_BANNER)
        else:
            self.line.append(c)
            port.feed(bytes([c]))

    def _raw(self, port: FakeSerial, c: int) -> None:
        if self.pending_ctrl_e:
            self.pending_ctrl_e += 1
            if self.pending_ctrl_e == 2 and c == ord("A"):
                return
            if self.pending_ctrl_e == 3 and c == 1:
                self.pending_ctrl_e = 0
                if self.paste == "unsupported":
                    port.feed(b"R\x00")
                    self.line.clear()
                else:
                    port.feed(b"R\x01" + self.window.to_bytes(2, "little"))
                    self.mode = "paste"
                    self.line.clear()
                    self.paste_received = 0
                    self.paste_transfers += 1
                return
            self.pending_ctrl_e = 0
        if c == 1:
            self.line.clear()
            if self.mute_trailer:
                self.mute_trailer = False
                return
            port.feed(BANNER)
        elif c == 2:
            self.mode = "friendly"
            port.feed(b"\r\n>>> ")
        elif c == 3:
            self.line.clear()
        elif c == 4:
            if not self.line:
                port.feed(b"OK\r\n")
                self._soft_reset(port)
                port.feed(BANNER)
                return
            code = bytes(self.line)
            self.line.clear()
            self._run(port, code, b"OK")
        elif c == 5 and self.paste != "banner":
            self.pending_ctrl_e = 1
        else:
            self.line.append(c)

    def _paste_byte(self, port: FakeSerial, c: int) -> None:
        if c == 4:
            code = bytes(self.line)
            self.line.clear()
            self.mode = "raw"
            self._run(port, code, b"\x04")
            return
        self.line.append(c)
        self.paste_received += 1
        if self.paste_received % self.window == 0:
            port.feed(b"\x01")

    def _soft_reset(self, port: FakeSerial) -> None:
        self.soft_resets += 1
        namespace = getattr(self.handler, "namespace", None)
        if isinstance(namespace, dict):
            namespace.clear()
        port.feed(b"soft reboot\r\n")

    def _run(self, port: FakeSerial, code: bytes, ack: bytes) -> None:
        """Answer one exec: ``ack`` (``OK``, or Ctrl-D in raw-paste mode), then output.

        An ``override`` that returns bytes replaces the whole answer, ``ack`` included,
        and the banner that answers the link's trailing Ctrl-A (append
        :data:`ANSWER_TRAILER` to a scripted answer that is complete).
        """
        self.execs.append(code)
        if self.override is not None:
            scripted = self.override(code)
            if scripted is not None:
                port.feed(scripted)
                self.mute_trailer = True
                return
        port.feed(ack)
        outcome = self.handler(code)
        if outcome == LOOP:
            self.mode = "running"
            self.running.set()
        elif outcome == HANG:
            self.mode = "hung"
            self.running.set()
        elif outcome == FLOOD:
            self.mode = "flooding"
            port.flood = _flood()
            self.running.set()
        else:
            assert isinstance(outcome, tuple)
            stdout, stderr = outcome
            port.feed(stdout + b"\x04" + stderr + b"\x04>")


def _flood() -> Iterator[bytes]:
    while True:
        yield b"hello world\r\n" * 300


def make_link_port(
    board: FakeMicroPython | None = None, *, name: str = "fake"
) -> tuple[FakeSerial, FakeMicroPython]:
    """A fake board and a port wired to it."""
    board = board or FakeMicroPython()
    return FakeSerial(board, name=name), board


class RingBoard(FakeMicroPython):
    """A board that loses input beyond its receive ring (the micro:bit's is 64 bytes),
    in the worst case: it takes bytes out of the ring only while the host reads (as when
    the emulator, or a busy board, stalls while the host keeps writing).

    Args:
        ring: the receive ring's size.
    """

    def __init__(self, *, ring: int = 64, **options: Any) -> None:
        super().__init__(**options)
        self.ring_size = ring
        self.ring = bytearray()
        self.lost = 0
        """Bytes that did not fit the ring."""

    def on_input(self, port: FakeSerial, data: bytes) -> None:
        with self.lock:
            room = self.ring_size - len(self.ring)
            self.ring += data[:room]
            self.lost += max(0, len(data) - room)

    def on_host_read(self, port: FakeSerial) -> None:
        """The host waits: the board takes what its ring holds."""
        with self.lock:
            data = bytes(self.ring)
            self.ring.clear()
            super().on_input(port, data)
