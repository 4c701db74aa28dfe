"""The machine-API peripherals of MicroPython boards (rp2-pico, esp32-devkit, pyboard).

No real Pico here: the fake raw-REPL board (tests/fakes_serial.py) runs the code the
peripherals send as host Python, against a small ``machine`` module that records what
the code did.  What is checked is the code each operation sends and how its answer is
read back; the unix port has no ``machine.Pin`` to run it on.
"""

from __future__ import annotations

import sys
import time
import types
from collections.abc import Iterator
from typing import Any, ClassVar

import pytest

from actorhw.core.errors import InvalidArgumentError, TimedOutError
from actorhw.drivers.definitions import BoardCatalog
from actorhw.drivers.io_lane import TURN
from actorhw.drivers.mpy_board import MicroPythonBoard, ReplLink
from actorhw.links import RawReplLink
from tests.fakes_serial import make_link_port

pytestmark = pytest.mark.timeout(30)


class FakeMachine(types.ModuleType):
    """Just enough of MicroPython's ``machine`` to record what the peripherals do."""

    def __init__(self) -> None:
        super().__init__("machine")
        levels: dict[Any, int] = {}
        self.levels = levels
        self.i2c: dict[int, bytes] = {}
        self.uart_tx = bytearray()
        i2c_memory = self.i2c
        uart_tx = self.uart_tx

        class Pin:
            IN, OUT, PULL_UP = 0, 1, 2

            def __init__(self, pin: Any, mode: int = -1, pull: int = -1) -> None:
                self.pin = pin
                if pull == Pin.PULL_UP:
                    levels.setdefault(pin, 1)

            def value(self, level: Any = None) -> int | None:
                if level is None:
                    return levels.get(self.pin, 0)
                levels[self.pin] = int(bool(level))
                return None

        class ADC:
            def __init__(self, pin: Pin) -> None:
                self.pin = pin

            delay = 0.0  # seconds a read takes (a slow board)

            def read_u16(self) -> int:
                time.sleep(ADC.delay)
                return 12345

        class PWM:
            state: ClassVar[dict[Any, list[int]]] = {}

            def __init__(self, pin: Pin) -> None:
                self.key = pin.pin
                PWM.state.setdefault(self.key, [0, 1000])

            def duty_u16(self, value: int | None = None) -> int | None:
                if value is None:
                    return PWM.state[self.key][0]
                PWM.state[self.key][0] = value
                return None

            def freq(self, hz: int | None = None) -> int | None:
                if hz is None:
                    return PWM.state[self.key][1]
                PWM.state[self.key][1] = hz
                return None

        class I2C:
            def __init__(self, bus: int, **kw: Any) -> None:
                self.bus = bus

            def writeto(self, address: int, data: bytes) -> None:
                i2c_memory[address] = bytes(data)

            def readfrom(self, address: int, size: int) -> bytes:
                return (i2c_memory.get(address, b"") + bytes(size))[:size]

        class SPI:
            def __init__(self, bus: int, **kw: Any) -> None:
                pass

            def write_readinto(self, data: bytes, into: bytearray) -> None:
                into[:] = bytes(b ^ 0xFF for b in data)

        class UART:
            def __init__(self, bus: int, **kw: Any) -> None:
                pass

            def write(self, data: bytes) -> int:
                uart_tx.extend(data)
                return len(data)

            def read(self, size: int) -> bytes | None:
                return None

        self.Pin, self.ADC, self.PWM, self.I2C, self.SPI, self.UART = Pin, ADC, PWM, I2C, SPI, UART


class FakeLinkBoard(MicroPythonBoard):
    """The generic MicroPython board over the fake port (what a plugin would do)."""

    name = "fake-mpy"

    def open_link(self, *, timeout: float) -> ReplLink:
        port, _board = make_link_port()
        return RawReplLink.open(port, timeout=timeout, resync_timeout=0.05)


@pytest.fixture
def pico() -> Iterator[tuple[FakeLinkBoard, FakeMachine]]:
    machine = FakeMachine()
    sys.modules["machine"] = machine
    board = FakeLinkBoard(board="pico", definition=BoardCatalog.discover().get("rp2-pico"))
    board.connect(timeout=5)
    try:
        yield board, machine
    finally:
        board.close()
        sys.modules.pop("machine", None)


def device(board: FakeLinkBoard, name: str) -> Any:
    spec = next(s for s in board.definition.devices if s.name == name)
    return board.peripheral(spec)


def test_pins_led_and_button(pico: tuple[FakeLinkBoard, FakeMachine]) -> None:
    board, machine = pico
    gp0 = device(board, "GP0")
    gp0.perform("write", (True,)).wait(timeout=5)
    assert machine.levels[0] == 1
    assert gp0.perform("read", ()).wait(timeout=5) is True
    led = device(board, "LED")
    led.perform("set", (True,)).wait(timeout=5)
    assert machine.levels["LED"] == 1
    assert led.perform("toggle", ()).wait(timeout=5) is False
    assert led.perform("get", ()).wait(timeout=5) is False
    with pytest.raises(InvalidArgumentError):
        gp0.perform("write", (1,))  # a bool, not an int


def test_adc_pwm_buses(pico: tuple[FakeLinkBoard, FakeMachine]) -> None:
    board, machine = pico
    assert device(board, "ADC0").perform("read", ()).wait(timeout=5) == 12345
    pwm = device(board, "PWM16")
    pwm.perform("set_duty", (0.5,)).wait(timeout=5)
    pwm.perform("set_frequency", (2000,)).wait(timeout=5)
    duty, freq = pwm.perform("read", ()).wait(timeout=5)
    assert (round(duty, 3), freq) == (0.5, 2000)
    i2c = device(board, "I2C0")
    i2c.perform("write", (0x3C, b"\x00\xaf'\\")).wait(timeout=5)
    assert machine.i2c[0x3C] == b"\x00\xaf'\\"
    assert i2c.perform("read", (0x3C, 3)).wait(timeout=5) == b"\x00\xaf'"
    with pytest.raises(InvalidArgumentError):
        i2c.perform("write", (200, b"x"))  # not a 7-bit address
    assert device(board, "SPI0").perform("transfer", (b"\x0f\xf0",)).wait(timeout=5) == b"\xf0\x0f"
    uart = device(board, "UART1")
    assert uart.perform("write", (b"hi",)).wait(timeout=5) == 2
    assert machine.uart_tx == b"hi"
    assert uart.perform("read", (4,)).wait(timeout=5) == b""


def test_board_exec_and_kinds_the_api_lacks(pico: tuple[FakeLinkBoard, FakeMachine]) -> None:
    board, _machine = pico
    assert device(board, "BOARD").perform("exec", ("print(6 * 7)", 2.0)).wait(timeout=5) == "42\n"
    microbit = BoardCatalog.discover().get("microbit")
    display = next(s for s in microbit.devices if s.name == "DISPLAY")
    with pytest.raises(InvalidArgumentError, match="machine API does not have"):
        board.peripheral(display)


def test_an_operation_has_the_callers_deadline_not_the_drivers_own(
    pico: tuple[FakeLinkBoard, FakeMachine],
) -> None:
    # The runtime's fast dispatch performs an operation in the caller's thread with the
    # caller's deadline in TURN.deadline (tree.device.fast_use); the exchange must get
    # what is left of it.  Before, it always got the driver's 2 s: a caller who gave a
    # slow board 10 s failed at 2 s (test_peripherals_act_through_the_board on QEMU at
    # load 14: "gave no complete answer within 2 s"), and one who gave 0.5 s waited 2 s.
    board, machine = pico
    machine.ADC.delay = 2.4  # longer than the driver's own bound (OP_TIMEOUT, 2 s)
    adc = device(board, "ADC0")
    try:
        TURN.deadline = time.monotonic() + 10
        pending = adc.perform("read", ())
    finally:
        TURN.deadline = None
    assert pending.wait(timeout=10) == 12345
    machine.ADC.delay = 3.0
    try:
        TURN.deadline = time.monotonic() + 0.5
        pending = adc.perform("read", ())
    finally:
        TURN.deadline = None
    with pytest.raises(TimedOutError, match=r"within 0\.(49|5)"):
        pending.wait(timeout=10)  # the caller's 0.5 s, not the driver's 2 s
