"""A board that runs MicroPython behind one raw-REPL link: the part every such driver shares.

:class:`MicroPythonBoard` holds the link and the board's single I/O thread: every
exchange with the board runs there, so a device's mailbox never waits on the wire
(peripherals hand back a :class:`~actorhw.drivers.board_driver.PendingIO`).  A concrete
driver (a plugin in actors/) says how the link is opened (:meth:`open_link`) and how
the board is reset and powered; the peripherals come from
:mod:`actorhw.drivers.mpy_peripherals`, chosen by the definition's ``api`` option
(``machine``, the default, or ``microbit``).

The link is anything shaped like :class:`ReplLink` (``actorhw.links.RawReplLink`` is);
this layer does not import links.
"""

from __future__ import annotations

import abc
from collections.abc import Callable
from typing import Any, Protocol, TypeVar

from actorhw.core.errors import InvalidArgumentError, LinkLostError
from actorhw.core.log import logger
from actorhw.drivers.board_driver import BoardDriver, PendingIO, Peripheral
from actorhw.drivers.definitions import DeviceSpec
from actorhw.drivers.io_lane import IOLane, op_timeout
from actorhw.drivers.mpy_peripherals import literal, peripheral_for

__all__ = ["OP_TIMEOUT", "MicroPythonBoard", "ReplLink", "literal"]

T = TypeVar("T")

#: Deadline of one peripheral operation on the board (pins, ADC, buses).
OP_TIMEOUT = 2.0

#: What the board imports once connected, by peripheral API.
_API_SETUP = {"machine": "import machine", "microbit": "import microbit"}


class ReplLink(Protocol):
    """What a driver needs of a raw-REPL link (``actorhw.links.RawReplLink`` fits)."""

    name: str

    def exec(self, code: str | bytes, *, timeout: float) -> Any:
        """Run code; an object with ``stdout`` and ``stderr`` bytes."""
        ...

    def exec_checked(self, code: str | bytes, *, timeout: float) -> str:
        """Run code; its stdout as text, or DeviceExceptionError."""
        ...

    def interrupt(self, *, timeout: float) -> None:
        """Ctrl-C to the running code."""
        ...

    def soft_reset(self, *, timeout: float) -> None:
        """Soft-reboot the board and enter the raw REPL again."""
        ...

    def close(self) -> None:
        """Close the port."""
        ...


class MicroPythonBoard(BoardDriver):
    """One MicroPython board: its link, its I/O thread, its peripherals.

    Subclasses implement :meth:`open_link` and may override the lifecycle hooks.
    Options read here: ``api`` (``machine`` or ``microbit``: which peripherals the
    devices are).
    """

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        api = self.options.get("api", "machine")
        if api not in _API_SETUP:
            raise InvalidArgumentError(
                f"board {self.board}: api {api!r}; valid: {', '.join(_API_SETUP)}",
                argument="api",
            )
        self.api: str = api
        self.link: ReplLink | None = None
        self._io: IOLane | None = None
        self._log = logger.bind(device=self.board)

    @abc.abstractmethod
    def open_link(self, *, timeout: float) -> ReplLink:
        """Open the board's link and enter the raw REPL, within ``timeout`` seconds."""

    # --- lifecycle --------------------------------------------------------------------

    def connect(self, *, timeout: float) -> None:
        """Open the one link, start the I/O thread, import the peripheral API."""
        self.disconnect()
        self.link = self.open_link(timeout=timeout)
        self._io = IOLane(self.board)
        setup = _API_SETUP[self.api]
        self.submit(lambda link: link.exec_checked(setup, timeout=OP_TIMEOUT), what="setup").wait(
            timeout=OP_TIMEOUT + 1
        )

    def disconnect(self) -> None:
        """Close the link and end the I/O thread."""
        io, self._io = self._io, None
        link, self.link = self.link, None
        if link is not None:
            link.close()  # wakes a read in progress: it ends with LinkLostError
        if io is not None:
            io.shutdown(wait=True)

    def close(self) -> None:
        self.disconnect()

    def hang(self) -> None:
        """Start a loop that never ends (fault injection); the call is not awaited.

        On most boards Ctrl-C still reaches it; a board whose Ctrl-C is lost (the unix
        port without a controlling terminal) is then hung for good.
        """
        self.submit(lambda link: link.exec("while True:\n pass", timeout=0.2), what="hang")

    def exhaust_memory(self, *, timeout: float) -> str:
        """Allocate past the heap; returns the MemoryError line the board printed."""
        result = self.submit(
            lambda link: link.exec(
                "import gc\ngc.collect()\nbytearray(gc.mem_free() + 1024)", timeout=timeout
            ),
            what="exhaust_memory",
        ).wait(timeout=timeout + 1)
        lines = bytes(result.stderr).decode("utf-8", "replace").strip().splitlines()
        return lines[-1] if lines else "no error: the allocation succeeded"

    # --- I/O ----------------------------------------------------------------------------

    def submit(self, work: Callable[[ReplLink], T], *, what: str = "exec") -> PendingIO:
        """Run ``work(link)`` on the board's I/O lane (its thread, or an idle caller's
        turn: see :mod:`actorhw.drivers.io_lane`); the caller waits on the result."""
        io, link = self._io, self.link
        if io is None or link is None:
            raise LinkLostError(f"{self.board} is not connected", device=self.board)
        return io.submit(work, link, what=f"{self.board}: {what}")

    def query(self, expression: str, *, what: str) -> PendingIO:
        """Evaluate a MicroPython expression; its repr comes back as a Python literal."""
        timeout = op_timeout(OP_TIMEOUT)
        return self.submit(
            lambda link: literal(
                link.exec_checked(f"print(repr({expression}))", timeout=timeout), what
            ),
            what=what,
        )

    def run(self, statement: str, *, what: str) -> PendingIO:
        """Run a MicroPython statement for its effect."""
        timeout = op_timeout(OP_TIMEOUT)
        return self.submit(
            lambda link: (link.exec_checked(statement, timeout=timeout), None)[1], what=what
        )

    def peripheral(self, spec: DeviceSpec) -> Peripheral:
        return peripheral_for(spec, self)
