"""The simulated driver: every peripheral kind in-process, the embedded default.

UART and SPI loop back what is written, GPIO keeps levels, ADC reads a deterministic
waveform, LEDs, PWM, DAC and the display keep their state.  Each peripheral is used
only from its own device actor, so its state needs no lock.  ``SimBoard.unplug()``
makes every operation fail as a vanished link would, for fault tests.
"""

from __future__ import annotations

import math
import random
from collections.abc import Mapping
from typing import Any, ClassVar

from actorhw.core.errors import (
    InvalidArgumentError,
    LinkLostError,
    TimedOutError,
    UnsupportedOperationError,
)
from actorhw.core.ids import DeviceKind
from actorhw.drivers.board_driver import BoardDriver, Peripheral
from actorhw.drivers.definitions import DeviceSpec
from actorhw.drivers.streams import StreamWriter


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
        if self.board.hung:
            raise TimedOutError(
                f"simulated board {self.board.board} is hung: no answer, Ctrl-C included",
                board=self.board.board,
                resynced=False,
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

    def resources(self) -> dict[str, Any]:
        """Plausible figures of a small MicroPython board; the heap use grows with each
        query (and falls back every 64), so trends and thresholds have something to see.
        No file-system total: like the micro:bit, the sim cannot tell it."""
        self.queries = getattr(self, "queries", 0) + 1
        used = SIM_HEAP_BASE + 256 * (self.queries % 64)
        free = SIM_HEAP_TOTAL - used
        return {
            "memory.total": SIM_HEAP_TOTAL,
            "memory.used": used,
            "memory.free": free,
            "memory.largest_free_block": free * 3 // 4,
            "storage.used": 4096,
            "cpu.uptime_s": float(self.queries),
            "cpu.active_threads": 1,
        }

    def interrupt(self) -> bool:
        """Nothing runs long on the sim: there is nothing to interrupt."""
        return False


#: The simulated board's heap, in bytes, and what the firmware itself uses of it.
SIM_HEAP_TOTAL = 65536
SIM_HEAP_BASE = 8192


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
    hung = False

    def connect(self, *, timeout: float) -> None:
        if self.hung:
            raise TimedOutError(
                f"simulated board {self.board} is hung; it needs a power cycle",
                board=self.board,
                resynced=False,
            )
        self.unplugged = False

    def reset(self, *, timeout: float) -> None:
        """A soft reset does not reach a hung board; it reconnects an unplugged one."""
        self.connect(timeout=timeout)

    def power_cycle(self, *, timeout: float) -> None:
        """Clear every simulated fault, as cutting the power would."""
        self.unplugged = self.hung = False

    def unplug(self) -> None:
        """Make every operation fail with link_lost, as a pulled cable would."""
        self.unplugged = True

    def hang(self) -> None:
        """Make every operation time out until a power cycle, as a hung firmware would."""
        self.hung = True

    def exhaust_memory(self, *, timeout: float) -> str:
        """The simulated board has no heap; report what a MicroPython board says."""
        return "MemoryError: memory allocation failed (simulated board)"

    def peripheral(self, spec: DeviceSpec) -> Peripheral:
        return _KINDS[spec.kind](spec, self)

    # --- commands and streaming --------------------------------------------------------

    supported_commands: ClassVar[Mapping[str, str]] = {
        "status": "the board's link state and stream settings",
        "echo": "answer the command's args (a round trip through the board's mailbox)",
    }
    stream_channels: ClassVar[Mapping[str, str]] = {
        "sine": "a sine wave in -1..1, `period` samples long (default 100)",
        "counter": "1, 2, 3, ... one per sample",
        "noise": "uniform noise in 0..1 from a seeded generator (`seed`, default 0)",
    }

    def command(self, command: str, args: Mapping[str, Any], *, timeout: float) -> Any:
        self._check_link()
        if command == "echo":
            return dict(args)
        if command == "status":
            return {"board": self.board, "unplugged": self.unplugged, "hung": self.hung}
        return super().command(command, args, timeout=timeout)

    def setup_acquisition(
        self, channels: tuple[str, ...], args: Mapping[str, Any], *, timeout: float
    ) -> None:
        self._check_link()
        interval, period = args.get("interval", 0.0), args.get("period", 100)
        _need(interval, (float, int), "interval")
        _need(period, int, "period")
        if interval < 0 or period < 1:
            raise InvalidArgumentError(
                f"interval must be >= 0 and period >= 1, not {interval!r}, {period!r}",
                argument="interval" if interval < 0 else "period",
            )
        self._acq = (channels, float(interval), period, random.Random(args.get("seed", 0)))

    def acquisition_loop(self, stream: StreamWriter) -> None:
        channels, interval, period, rng = self._acq
        step = 2 * math.pi / period
        publish, n = stream.publish, 0
        while stream.running:
            if self.unplugged or self.hung:
                self._check_link()
            n += 1
            for channel in channels:
                if channel == "counter":
                    publish("counter", (n,), stream_type="counter")
                elif channel == "sine":
                    publish("sine", (math.sin(n * step),), stream_type="sine")
                else:
                    publish("noise", (rng.random(),), stream_type="noise")
            if interval and stream.wait(interval):
                return

    def _check_link(self) -> None:
        if self.unplugged:
            raise LinkLostError(f"simulated board {self.board} is unplugged", board=self.board)
        if self.hung:
            raise TimedOutError(
                f"simulated board {self.board} is hung", board=self.board, resynced=False
            )
