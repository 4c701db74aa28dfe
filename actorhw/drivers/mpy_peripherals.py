"""Peripherals of a MicroPython board, acting through its raw-REPL link.

Two APIs: ``machine`` (Raspberry Pi Pico, ESP32, pyboard: ``machine.Pin``, ``ADC``,
``I2C``, ``SPI``, ``UART``, ``PWM``) and ``microbit`` (the BBC micro:bit's ``microbit``
module).  Every operation is one short exec on the board's I/O thread; its result comes
back as a :class:`~actorhw.drivers.board_driver.PendingIO`.

Device options (board files): ``pin`` (a number or a name such as ``"LED"``),
``active_low`` (LED, button), ``id``/``scl``/``sda``/``freq`` (I2C), ``id``/``baudrate``
(SPI, UART), ``freq`` (PWM).
"""

from __future__ import annotations

import ast
import contextlib
from collections.abc import Callable
from typing import Any, Protocol

from actorhw.core.errors import InvalidArgumentError, LinkLostError, ResultParseError
from actorhw.core.ids import DeviceKind
from actorhw.drivers import mpy_resources
from actorhw.drivers.board_driver import PendingIO, Peripheral
from actorhw.drivers.definitions import DeviceSpec
from actorhw.drivers.io_lane import op_timeout

__all__ = ["LinkBoard", "literal", "peripheral_for"]

#: Deadline of an interrupt when nothing runs (Ctrl-C, then the raw prompt back).
INTERRUPT_TIMEOUT = 0.5
_OP = 2.0


class LinkBoard(Protocol):
    """What a peripheral uses of its board (``MicroPythonBoard`` fits)."""

    board: str
    api: str

    @property
    def link(self) -> Any:
        """The open link, or None."""
        ...

    def submit(self, work: Callable[[Any], Any], *, what: str = "exec") -> PendingIO:
        """Run ``work(link)`` on the I/O thread."""
        ...

    def query(self, expression: str, *, what: str) -> PendingIO:
        """Evaluate an expression on the board; its repr back as a literal."""
        ...

    def run(self, statement: str, *, what: str) -> PendingIO:
        """Run a statement for its effect."""
        ...


def _need(value: Any, kind: type | tuple[type, ...], name: str) -> None:
    if not isinstance(value, kind) or (isinstance(value, bool) and kind is int):
        raise InvalidArgumentError(f"{name} must be {kind}, not {value!r}", argument=name)


class MpyPeripheral(Peripheral):
    # Every operation is a submit to the board's I/O thread (or a refusal of bad
    # arguments): a caller's thread may perform it (Peripheral.callers_may_perform).
    callers_may_perform = True

    def __init__(self, spec: DeviceSpec, board: LinkBoard) -> None:
        super().__init__(spec)
        self.board = board

    def option(self, key: str, default: Any = None) -> Any:
        return self.spec.options.get(key, default)

    @property
    def pin(self) -> str:
        """The ``pin`` option as MicroPython source: a number or a quoted name."""
        pin = self.option("pin")
        if pin is None:
            raise InvalidArgumentError(
                f"{self.spec.name}: the board file gives no pin", argument="pin"
            )
        return repr(pin) if isinstance(pin, str) else str(int(pin))


class BoardDevice(MpyPeripheral):
    """The board itself: run code, read resources, interrupt.

    Device option ``collect_garbage`` (default false): run ``gc.collect()`` on the board
    before each resource sample, so that garbage counts as free memory.
    """

    def __init__(self, spec: DeviceSpec, board: LinkBoard) -> None:
        super().__init__(spec, board)
        self._sampler = mpy_resources.Sampler(collect=bool(self.option("collect_garbage", False)))

    def exec(self, code: str, timeout: float) -> PendingIO:
        if not isinstance(code, str):
            raise InvalidArgumentError("code must be a str", argument="code")
        return self.board.submit(lambda link: link.exec_checked(code, timeout=timeout))

    def resources(self) -> PendingIO:
        """Heap, storage and uptime in one short call on the I/O thread: the sampler is
        defined on the board once per connection (mpy_resources.Sampler)."""
        return self.board.submit(
            lambda link: self._sampler.read(link, timeout=_OP), what="resources"
        )

    def interrupt(self) -> bool:
        """Ctrl-C to the code running now; from the device's mailbox, not the I/O thread."""
        link = self.board.link
        if link is None:
            return False
        link.interrupt(timeout=INTERRUPT_TIMEOUT)
        return True


# --- the machine API -----------------------------------------------------------------------


class MachinePin(MpyPeripheral):
    def read(self) -> PendingIO:
        return self.board.query(f"machine.Pin({self.pin}).value()==1", what="read")

    def write(self, level: bool) -> PendingIO:
        _need(level, bool, "level")
        return self.board.run(
            f"machine.Pin({self.pin},machine.Pin.OUT).value({int(level)})", what="write"
        )

    def reset(self) -> None:
        if self.board.link is not None:  # back to input; fire and forget
            with contextlib.suppress(LinkLostError):
                self.board.run(f"machine.Pin({self.pin},machine.Pin.IN)", what="reset")


class MachineLed(MpyPeripheral):
    def _level(self, on: str) -> str:
        return f"(not {on})" if self.option("active_low", False) else on

    def set(self, on: bool) -> PendingIO:
        _need(on, bool, "on")
        return self.board.run(
            f"machine.Pin({self.pin},machine.Pin.OUT).value({self._level(str(on))})", what="set"
        )

    def get(self) -> PendingIO:
        return self.board.query(f"machine.Pin({self.pin}).value()==1", what="get")

    def toggle(self) -> PendingIO:
        code = (
            f"p=machine.Pin({self.pin},machine.Pin.OUT)\np.value(not p.value())\n"
            "print(repr(p.value()==1))"
        )
        timeout = op_timeout(_OP)
        return self.board.submit(lambda link: link.exec_checked(code, timeout=timeout) == "True\n")


class MachineButton(MpyPeripheral):
    def is_pressed(self) -> PendingIO:
        pressed = 0 if self.option("active_low", True) else 1
        return self.board.query(
            f"machine.Pin({self.pin},machine.Pin.IN,machine.Pin.PULL_UP).value()=={pressed}",
            what="is_pressed",
        )


class MachineAdc(MpyPeripheral):
    def read(self) -> PendingIO:
        return self.board.query(f"machine.ADC(machine.Pin({self.pin})).read_u16()", what="read")


class MachinePwm(MpyPeripheral):
    @property
    def _pwm(self) -> str:
        return f"machine.PWM(machine.Pin({self.pin}))"

    def set_duty(self, duty: float) -> PendingIO:
        _need(duty, (float, int), "duty")
        if not 0 <= duty <= 1:
            raise InvalidArgumentError(f"duty {duty} outside 0..1", argument="duty")
        return self.board.run(f"{self._pwm}.duty_u16({round(duty * 65535)})", what="set_duty")

    def set_frequency(self, hz: int) -> PendingIO:
        _need(hz, int, "hz")
        if hz <= 0:
            raise InvalidArgumentError(f"frequency {hz} must be positive", argument="hz")
        return self.board.run(f"{self._pwm}.freq({hz})", what="set_frequency")

    def read(self) -> PendingIO:
        return self.board.query(f"[{self._pwm}.duty_u16()/65535,{self._pwm}.freq()]", what="read")


class MachineI2c(MpyPeripheral):
    @property
    def _bus(self) -> str:
        args = [str(int(self.option("id", 0)))]
        for key in ("scl", "sda"):
            if self.option(key) is not None:
                args.append(f"{key}=machine.Pin({int(self.option(key))})")
        args.append(f"freq={int(self.option('freq', 100_000))}")
        return f"machine.I2C({','.join(args)})"

    @staticmethod
    def _address(address: int) -> None:
        _need(address, int, "address")
        if not 0 <= address < 128:
            raise InvalidArgumentError(f"I2C address {address} is not 7-bit", argument="address")

    def write(self, address: int, data: bytes) -> PendingIO:
        self._address(address)
        _need(data, bytes, "data")
        return self.board.run(f"{self._bus}.writeto({address},{data!r})", what="write")

    def read(self, address: int, size: int) -> PendingIO:
        self._address(address)
        _need(size, int, "size")
        return self.board.query(f"{self._bus}.readfrom({address},{size})", what="read")


class MachineSpi(MpyPeripheral):
    def transfer(self, data: bytes) -> PendingIO:
        _need(data, bytes, "data")
        rate = int(self.option("baudrate", 1_000_000))
        bus = f"machine.SPI({int(self.option('id', 0))},baudrate={rate})"
        code = f"b=bytearray({len(data)})\n{bus}.write_readinto({data!r},b)\nprint(repr(bytes(b)))"
        timeout = op_timeout(_OP)
        return self.board.submit(
            lambda link: _bytes(link.exec_checked(code, timeout=timeout)), what="transfer"
        )


class MachineUart(MpyPeripheral):
    @property
    def _uart(self) -> str:
        return (
            f"machine.UART({int(self.option('id', 1))},"
            f"baudrate={int(self.option('baudrate', 115200))})"
        )

    def write(self, data: bytes) -> PendingIO:
        _need(data, bytes, "data")
        return self.board.query(f"{self._uart}.write({data!r})", what="write")

    def read(self, size: int) -> PendingIO:
        _need(size, int, "size")
        return self.board.query(f"{self._uart}.read({size}) or b''", what="read")


def _bytes(text: str) -> bytes:
    value = literal(text, "transfer")
    if not isinstance(value, bytes):
        raise ResultParseError(f"transfer: the board answered {text[:80]!r}", text=text[:200])
    return value


def literal(text: str, what: str) -> Any:
    """The Python literal a board printed with ``repr``; ResultParseError if it is not one."""
    try:
        return ast.literal_eval(text.strip())
    except (ValueError, SyntaxError, MemoryError, RecursionError) as e:
        raise ResultParseError(
            f"{what}: the board answered {text[:80]!r}, not a Python literal", text=text[:200]
        ) from e


# --- the microbit API ----------------------------------------------------------------------


class MicrobitPin(MpyPeripheral):
    @property
    def _pin(self) -> str:
        return f"microbit.pin{int(self.option('pin', self.spec.name[3:]))}"

    def read(self) -> PendingIO:
        return self.board.query(f"{self._pin}.read_digital()==1", what=f"{self.spec.name}.read")

    def write(self, level: bool) -> PendingIO:
        _need(level, bool, "level")
        return self.board.run(f"{self._pin}.write_digital({int(level)})", what="write")

    def reset(self) -> None:
        if self.board.link is not None:
            with contextlib.suppress(LinkLostError):
                self.board.run(f"{self._pin}.read_digital()", what="reset")


class MicrobitButton(MpyPeripheral):
    def is_pressed(self) -> PendingIO:
        button = "button_a" if self.spec.name.endswith("A") else "button_b"
        return self.board.query(f"microbit.{button}.is_pressed()", what="is_pressed")


class MicrobitDisplay(MpyPeripheral):
    def show(self, text: str) -> PendingIO:
        _need(text, str, "text")
        return self.board.run(f"microbit.display.show({text!r}, wait=False)", what="show")

    def clear(self) -> PendingIO:
        return self.board.run("microbit.display.clear()", what="clear")

    def read(self) -> PendingIO:
        """The 5x5 pixel brightnesses, row by row, as a string of digits."""
        return self.board.query(
            "''.join(str(microbit.display.get_pixel(x, y)) for y in range(5) for x in range(5))",
            what="read",
        )


class MicrobitAccelerometer(MpyPeripheral):
    def read(self) -> PendingIO:
        return self.board.query("list(microbit.accelerometer.get_values())", what="read")


Factory = Callable[[DeviceSpec, LinkBoard], Peripheral]

_KINDS: dict[str, dict[DeviceKind, Factory]] = {
    "machine": {
        DeviceKind.BOARD: BoardDevice,
        DeviceKind.GPIO: MachinePin,
        DeviceKind.LED: MachineLed,
        DeviceKind.BUTTON: MachineButton,
        DeviceKind.ADC: MachineAdc,
        DeviceKind.PWM: MachinePwm,
        DeviceKind.I2C: MachineI2c,
        DeviceKind.SPI: MachineSpi,
        DeviceKind.UART: MachineUart,
    },
    "microbit": {
        DeviceKind.BOARD: BoardDevice,
        DeviceKind.GPIO: MicrobitPin,
        DeviceKind.BUTTON: MicrobitButton,
        DeviceKind.DISPLAY: MicrobitDisplay,
        DeviceKind.ACCELEROMETER: MicrobitAccelerometer,
    },
}


def peripheral_for(spec: DeviceSpec, board: LinkBoard) -> Peripheral:
    """The peripheral of ``spec`` on a board whose API is ``board.api``.

    Raises:
        InvalidArgumentError: the API has no device of that kind.
    """
    kinds = _KINDS[board.api]
    factory = kinds.get(spec.kind)
    if factory is None:
        raise InvalidArgumentError(
            f"{board.board}: device {spec.name} is a {spec.kind.value}, which the "
            f"{board.api} API does not have; valid kinds: " + ", ".join(k.value for k in kinds),
            argument=spec.name,
        )
    return factory(spec, board)
