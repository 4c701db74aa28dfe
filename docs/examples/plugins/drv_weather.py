"""A driver plugin for a weather station, from an empty file to streaming.

The station is simulated in-process (``Sensor``), so the guide runs anywhere; a real
driver keeps the same shape and opens a serial port or a socket in ``connect``.
"""

# --8<-- [start:skeleton]
from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any, ClassVar

from actorhw.boards import DeviceSpec
from actorhw.driver import BoardDriver, Peripheral
from actorhw.errors import InvalidArgumentError, LinkLostError
from actorhw.streams import StreamWriter


class WeatherStation(BoardDriver):
    """Attaches a weather station; board files name it with ``driver = "weather"``."""

    name = "weather"
    # --8<-- [end:skeleton]

    # --8<-- [start:lifecycle]
    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.base = float(self.options.get("base_temperature", 20.0))
        self.powered = False
        self.sensor: Sensor | None = None

    def scan(self, *, timeout: float) -> bool:
        return True  # a real driver looks for its port or its address here

    def initialize(self, *, timeout: float) -> None:
        self.powered = True

    def connect(self, *, timeout: float) -> None:
        self.sensor = Sensor(self.base)

    def disconnect(self) -> None:
        self.sensor = None

    def reset(self, *, timeout: float) -> None:
        self.connect(timeout=timeout)

    def close(self) -> None:
        self.disconnect()
        self.powered = False

    def peripheral(self, spec: DeviceSpec) -> Peripheral:
        return TemperatureInput(spec, self) if spec.name == "TEMP" else StatusLed(spec)

    def link(self) -> Sensor:
        if self.sensor is None:
            raise LinkLostError(f"{self.board} is not connected", device=self.board)
        return self.sensor

    # --8<-- [end:lifecycle]

    # --8<-- [start:commands]
    supported_commands: ClassVar[Mapping[str, str]] = {
        "status": "the sensor's calibration",
        "calibrate": "set the temperature offset: offset=<degrees>",
    }

    def command(self, command: str, args: Mapping[str, Any], *, timeout: float) -> Any:
        sensor = self.link()
        if command == "status":
            return {"offset": sensor.offset}
        if command == "calibrate":
            offset = args.get("offset")
            if not isinstance(offset, int | float) or isinstance(offset, bool):
                raise InvalidArgumentError(
                    f"offset must be a number, not {offset!r}", argument="offset"
                )
            sensor.offset = float(offset)
            return {"offset": sensor.offset}
        return super().command(command, args, timeout=timeout)

    # --8<-- [end:commands]

    # --8<-- [start:streaming]
    stream_channels: ClassVar[Mapping[str, str]] = {
        "temperature": "degrees Celsius, one sample every `interval` s",
        "humidity": "relative humidity in percent",
    }

    def setup_acquisition(
        self, channels: tuple[str, ...], args: Mapping[str, Any], *, timeout: float
    ) -> None:
        interval = args.get("interval", 0.01)
        if not isinstance(interval, int | float) or interval <= 0:
            raise InvalidArgumentError(
                f"interval must be a positive number, not {interval!r}", argument="interval"
            )
        self.link()  # refuse to start on a board that is not connected
        self.acquisition = (channels, float(interval))

    def acquisition_loop(self, stream: StreamWriter) -> None:
        channels, interval = self.acquisition
        while stream.running:
            temperature, humidity = self.link().sample()
            if "temperature" in channels:
                stream.publish("temperature", (temperature,), stream_type="temperature")
            if "humidity" in channels:
                stream.publish("humidity", (humidity,), stream_type="humidity")
            if stream.wait(interval):
                return

    def cleanup_acquisition(self) -> None:
        del self.acquisition

    # --8<-- [end:streaming]


class TemperatureInput(Peripheral):
    """TEMP as an ADC: tenths of a degree."""

    def __init__(self, spec: DeviceSpec, station: WeatherStation) -> None:
        super().__init__(spec)
        self.station = station

    def read(self) -> int:
        return round(self.station.link().sample()[0] * 10)


class StatusLed(Peripheral):
    def reset(self) -> None:
        self.lit = False

    def set(self, on: bool) -> None:
        self.lit = on

    def get(self) -> bool:
        return getattr(self, "lit", False)

    def toggle(self) -> bool:
        self.lit = not self.get()
        return self.lit


class Sensor:
    """The station's sensor, simulated: a slow, deterministic daily swing."""

    def __init__(self, base: float) -> None:
        self.base = base
        self.offset = 0.0
        self.samples = 0

    def sample(self) -> tuple[float, float]:
        self.samples += 1
        swing = math.sin(self.samples / 10)
        return round(self.base + self.offset + swing, 2), round(55.0 - 5 * swing, 1)
