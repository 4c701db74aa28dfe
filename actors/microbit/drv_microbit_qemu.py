"""The BBC micro:bit MicroPython firmware in QEMU, attached as a real board.

Power on boots ``qemu-system-arm -M microbit`` with the firmware; the board's pty is
held open by one raw-REPL link for the board's whole life in this runtime.  Every
exchange with the board runs on the board's single I/O thread, so a device's mailbox
never waits on the wire: peripherals hand back a PendingIO.  Power off ends the QEMU
process (an unplug); power cycle boots a fresh one (a replug).
"""

from __future__ import annotations

import ast
import concurrent.futures
import contextlib
from collections.abc import Callable
from typing import Any, TypeVar

from actorhw.boards import DeviceSpec
from actorhw.driver import BoardDriver, PendingIO, Peripheral
from actorhw.errors import (
    InvalidArgumentError,
    LinkLostError,
    ResultParseError,
)
from actorhw.ids import DeviceKind
from actorhw.links.qemu import QemuMicrobit
from actorhw.links.raw_repl import RawReplLink
from actorhw.log import logger

T = TypeVar("T")

#: Deadline of one peripheral operation on the board (pins, buttons, display).
OP_TIMEOUT = 2.0
#: Deadline for the firmware to answer after power-on.
BOOT_TIMEOUT = 10.0


class MicrobitQemuBoard(BoardDriver):
    """One micro:bit in QEMU: its power (the process), its link, its I/O thread."""

    name = "microbit-qemu"

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.power = QemuMicrobit(name=self.board, **_qemu_options(self.options))
        self.link: RawReplLink | None = None
        self._io: concurrent.futures.ThreadPoolExecutor | None = None
        self._log = logger.bind(device=self.board)

    # --- lifecycle hooks -------------------------------------------------------------

    def initialize(self, *, timeout: float) -> None:
        """Power on: boot QEMU (a fresh process if the last one died)."""
        if not self.power.alive:
            self.power.power_on(timeout=timeout)

    def connect(self, *, timeout: float) -> None:
        """Open the one link on the board's pty and enter the raw REPL."""
        self.disconnect()
        self.link = self.power.open_link(timeout=min(timeout, BOOT_TIMEOUT))
        self._io = concurrent.futures.ThreadPoolExecutor(
            max_workers=1, thread_name_prefix=f"io-{self.board}"
        )
        self.submit(lambda link: link.exec_checked("import microbit", timeout=OP_TIMEOUT)).wait(
            timeout=timeout
        )

    def disconnect(self) -> None:
        """Close the link and end the I/O thread; the QEMU process stays as it is."""
        io, self._io = self._io, None
        link, self.link = self.link, None
        if link is not None:
            link.close()  # wakes a read in progress: it ends with LinkLostError
        if io is not None:
            io.shutdown(wait=True, cancel_futures=True)

    def reset(self, *, timeout: float) -> None:
        """Soft-reset the firmware and re-enter the raw REPL."""
        self.submit(lambda link: link.soft_reset(timeout=timeout)).wait(timeout=timeout + 1)

    def power_cycle(self, *, timeout: float) -> None:
        """Kill QEMU and boot a new one (a replug); reconnect with :meth:`connect`."""
        self.disconnect()
        self.power.power_cycle(timeout=timeout)

    def unplug(self) -> None:
        """Kill QEMU, as pulling the cable would. Reads in progress see link_lost."""
        self.power.power_off()

    def close(self) -> None:
        self.disconnect()
        self.power.power_off()

    # --- I/O ---------------------------------------------------------------------------

    def submit(self, work: Callable[[RawReplLink], T], *, what: str = "exec") -> PendingIO:
        """Run ``work(link)`` on the board's I/O thread; the caller waits on the result."""
        io, link = self._io, self.link
        if io is None or link is None:
            raise LinkLostError(f"{self.board} is not connected", device=self.board)
        try:
            return PendingIO(io.submit(work, link), what=f"{self.board}: {what}")
        except RuntimeError as e:  # the executor shut down under us
            raise LinkLostError(f"{self.board} is not connected", device=self.board) from e

    def query(self, expression: str, *, what: str) -> PendingIO:
        """Evaluate a MicroPython expression; its repr comes back as a Python literal."""
        return self.submit(
            lambda link: _literal(
                link.exec_checked(f"print(repr({expression}))", timeout=OP_TIMEOUT), what
            ),
            what=what,
        )

    def run(self, statement: str, *, what: str) -> PendingIO:
        """Run a MicroPython statement for its effect."""
        return self.submit(
            lambda link: (link.exec_checked(statement, timeout=OP_TIMEOUT), None)[1], what=what
        )

    def peripheral(self, spec: DeviceSpec) -> Peripheral:
        return _KINDS[spec.kind](spec, self)


def _qemu_options(options: dict[str, Any]) -> dict[str, Any]:
    return {k: options[k] for k in ("firmware", "qemu") if k in options}


def _literal(text: str, what: str) -> Any:
    try:
        return ast.literal_eval(text.strip())
    except (ValueError, SyntaxError) as e:
        raise ResultParseError(
            f"{what}: the board answered {text[:80]!r}, not a Python literal", text=text[:200]
        ) from e


class MicrobitPeripheral(Peripheral):
    def __init__(self, spec: DeviceSpec, board: MicrobitQemuBoard) -> None:
        super().__init__(spec)
        self.board = board


class MicrobitBoardDevice(MicrobitPeripheral):
    """The board itself: run code, return what it printed."""

    def exec(self, code: str, timeout: float) -> PendingIO:
        if not isinstance(code, str):
            raise InvalidArgumentError("code must be a str", argument="code")
        return self.board.submit(lambda link: link.exec_checked(code, timeout=timeout))


class MicrobitPin(MicrobitPeripheral):
    """pin0..pin20 as digital I/O."""

    @property
    def _pin(self) -> str:
        return f"microbit.pin{int(self.spec.options.get('pin', self.spec.name[3:]))}"

    def read(self) -> PendingIO:
        return self.board.query(f"{self._pin}.read_digital()", what=f"{self.spec.name}.read")

    def write(self, level: bool) -> PendingIO:
        if not isinstance(level, bool):
            raise InvalidArgumentError("level must be a bool", argument="level")
        return self.board.run(f"{self._pin}.write_digital({int(level)})", what="write")

    def reset(self) -> None:
        # Back to input for the next owner; fire and forget, never block the mailbox.
        if self.board.link is not None:
            with contextlib.suppress(LinkLostError):
                self.board.run(f"{self._pin}.read_digital()", what="reset")


class MicrobitButton(MicrobitPeripheral):
    def is_pressed(self) -> PendingIO:
        button = "button_a" if self.spec.name.endswith("A") else "button_b"
        return self.board.query(f"microbit.{button}.is_pressed()", what="is_pressed")


class MicrobitDisplay(MicrobitPeripheral):
    def show(self, text: str) -> PendingIO:
        if not isinstance(text, str):
            raise InvalidArgumentError("text must be a str", argument="text")
        return self.board.run(f"microbit.display.show({text!r}, wait=False)", what="show")

    def clear(self) -> PendingIO:
        return self.board.run("microbit.display.clear()", what="clear")

    def read(self) -> PendingIO:
        """The 5x5 pixel brightnesses, row by row, as a string of digits."""
        return self.board.query(
            "''.join(str(microbit.display.get_pixel(x, y)) for y in range(5) for x in range(5))",
            what="read",
        )


class MicrobitAccelerometer(MicrobitPeripheral):
    def read(self) -> PendingIO:
        return self.board.query("list(microbit.accelerometer.get_values())", what="read")


_KINDS: dict[DeviceKind, Callable[[DeviceSpec, MicrobitQemuBoard], Peripheral]] = {
    DeviceKind.BOARD: MicrobitBoardDevice,
    DeviceKind.GPIO: MicrobitPin,
    DeviceKind.BUTTON: MicrobitButton,
    DeviceKind.DISPLAY: MicrobitDisplay,
    DeviceKind.ACCELEROMETER: MicrobitAccelerometer,
}
