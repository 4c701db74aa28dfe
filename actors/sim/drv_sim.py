"""The simulated driver: every peripheral kind in-process, the embedded default.

UART and SPI loop back what is written, GPIO keeps levels, ADC reads a deterministic
waveform, LEDs, PWM, DAC and the display keep their state.  Each peripheral is used
only from its own device actor, so its state needs no lock.  ``SimBoard.unplug()``
makes every operation fail as a vanished link would, for fault tests.
"""

from __future__ import annotations

import math
from typing import Any

from actorhw.boards import DeviceSpec
from actorhw.driver import BoardDriver, Peripheral
from actorhw.errors import InvalidArgumentError, LinkLostError, UnsupportedOperationError
from actorhw.ids import DeviceKind


def _need(value: Any, types: type | tuple[type, ...], what: str) -> None:
    allowed = types if isinstance(types, tuple) else (types,)
    if not isinstance(value, types) or (isinstance(value, bool) and bool not in allowed):
        raise InvalidArgumentError(
            f"{what} must be {types}, not {type(value).__name__}", argument=what
        )


class SimPeripheral(Peripheral):
    def __init__(self, spec: DeviceSpec, board: SimBoard) -> None:
        super().__init__(spec)
        self.board = board
        self.reset()

    def perform(self, verb: str, args: tuple[Any, ...]) -> Any:
        if self.board.unplugged:
            raise LinkLostError(
                f"simulated board {self.board.board} is unplugged", board=self.board.board
            )
        try:
            return super().perform(verb, args)
        except TypeError as e:
            raise InvalidArgumentError(f"{self.spec.name}.{verb}: {e}", argument=verb) from e


class SimUart(SimPeripheral):
    def reset(self) -> None:
        self.rx = bytearray()

    def write(self, data: bytes) -> int:
        _need(data, bytes, "data")
        self.rx += data
        return len(data)

    def read(self, size: int) -> bytes:
        _need(size, int, "size")
        out = bytes(self.rx[:size])
        del self.rx[:size]
        return out


class SimGpio(SimPeripheral):
    def reset(self) -> None:
        self.level = False

    def read(self) -> bool:
        return self.level

    def write(self, level: bool) -> None:
        _need(level, bool, "level")
        self.level = level


class SimI2c(SimPeripheral):
    def reset(self) -> None:
        self.memory: dict[int, bytes] = {}

    def write(self, address: int, data: bytes) -> None:
        _need(address, int, "address")
        _need(data, bytes, "data")
        if not 0 <= address < 128:
            raise InvalidArgumentError(f"I2C address {address} is not 7-bit", argument="address")
        self.memory[address] = data

    def read(self, address: int, size: int) -> bytes:
        _need(address, int, "address")
        _need(size, int, "size")
        return (self.memory.get(address, b"") + bytes(size))[:size]


class SimSpi(SimPeripheral):
    def transfer(self, data: bytes) -> bytes:
        _need(data, bytes, "data")
        return data


class SimAdc(SimPeripheral):
    """12-bit readings of a slow sine: deterministic, so tests can predict them."""

    def reset(self) -> None:
        self.sample = 0

    def read(self) -> int:
        self.sample += 1
        return int(2048 + 2047 * math.sin(self.sample / 10))


class SimDac(SimPeripheral):
    def reset(self) -> None:
        self.value = 0

    def write(self, value: int) -> None:
        _need(value, int, "value")
        if not 0 <= value < 4096:
            raise InvalidArgumentError(f"DAC value {value} outside 0..4095", argument="value")
        self.value = value


class SimPwm(SimPeripheral):
    def reset(self) -> None:
        self.duty = 0.0
        self.frequency = 1000

    def set_duty(self, duty: float) -> None:
        _need(duty, (float, int), "duty")
        if not 0 <= duty <= 1:
            raise InvalidArgumentError(f"duty {duty} outside 0..1", argument="duty")
        self.duty = float(duty)

    def set_frequency(self, hz: int) -> None:
        _need(hz, int, "hz")
        if hz <= 0:
            raise InvalidArgumentError(f"frequency {hz} must be positive", argument="hz")
        self.frequency = hz

    def read(self) -> list[float]:
        return [self.duty, float(self.frequency)]


class SimLed(SimPeripheral):
    def reset(self) -> None:
        self.on = False

    def set(self, on: bool) -> None:
        _need(on, bool, "on")
        self.on = on

    def get(self) -> bool:
        return self.on

    def toggle(self) -> bool:
        self.on = not self.on
        return self.on


class SimButton(SimPeripheral):
    def reset(self) -> None:
        self.pressed = False

    def is_pressed(self) -> bool:
        return self.pressed


class SimDisplay(SimPeripheral):
    def reset(self) -> None:
        self.text = ""

    def show(self, text: str) -> None:
        _need(text, str, "text")
        self.text = text

    def clear(self) -> None:
        self.text = ""

    def read(self) -> str:
        return self.text


class SimAccelerometer(SimPeripheral):
    def reset(self) -> None:
        self.sample = 0

    def read(self) -> list[int]:
        self.sample += 1
        return [0, 0, -1024 + self.sample % 8]


class SimBoardDevice(SimPeripheral):
    def exec(self, code: str, timeout: float) -> str:
        raise UnsupportedOperationError(
            f"the simulated board {self.board.board} does not run code; "
            "use a board with a MicroPython driver (microbit-qemu)",
            board=self.board.board,
        )


_KINDS: dict[DeviceKind, type[SimPeripheral]] = {
    DeviceKind.UART: SimUart,
    DeviceKind.GPIO: SimGpio,
    DeviceKind.I2C: SimI2c,
    DeviceKind.SPI: SimSpi,
    DeviceKind.ADC: SimAdc,
    DeviceKind.DAC: SimDac,
    DeviceKind.PWM: SimPwm,
    DeviceKind.LED: SimLed,
    DeviceKind.BUTTON: SimButton,
    DeviceKind.DISPLAY: SimDisplay,
    DeviceKind.ACCELEROMETER: SimAccelerometer,
    DeviceKind.BOARD: SimBoardDevice,
}


class SimBoard(BoardDriver):
    """Attaches any board definition with every device simulated in-process."""

    name = "sim"
    unplugged = False

    def connect(self, *, timeout: float) -> None:
        self.unplugged = False

    def unplug(self) -> None:
        """Make every operation fail with link_lost, as a pulled cable would."""
        self.unplugged = True

    def peripheral(self, spec: DeviceSpec) -> Peripheral:
        return _KINDS[spec.kind](spec, self)
