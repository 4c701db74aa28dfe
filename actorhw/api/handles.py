"""Typed handles: what a caller holds to use a device of one kind.

A handle is got with ``Runtime.get(Kind, id)`` (not yet acquired) or
``Runtime.lease(Kind, id, owner=...)`` (acquired and opened; a context manager that
closes and releases on exit, also on an exception).  The usage order is
acquire -> open -> use -> close -> release.  A handle belongs to the thread that uses
it; see docs/thread-safety.md.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar, Self

from actorhw.api.protocols import DeviceCalls
from actorhw.core.errors import InvalidArgumentError, NotOwnerError
from actorhw.core.ids import DeviceId, DeviceKind
from actorhw.core.messages import DeviceInfo, Lease, Priority


class Handle:
    """Base of every typed handle."""

    kind: ClassVar[DeviceKind]

    def __init__(self, runtime: DeviceCalls, device: DeviceId, *, timeout: float) -> None:
        self._rt = runtime
        self.device = device
        self.timeout = timeout
        self.lease: Lease | None = None

    def __repr__(self) -> str:
        held = f"held by {self.lease.owner!r}" if self.lease else "not acquired"
        return f"<{type(self).__name__} {self.device.key} {held}>"

    def acquire(self, owner: str) -> Self:
        """Become an owner of the device (device_or_resource_busy if SINGLE and held)."""
        if not isinstance(owner, str) or not owner:
            raise InvalidArgumentError("owner must be a non-empty string", argument="owner")
        if self.lease is not None:
            raise InvalidArgumentError(
                f"this handle already holds {self.device.key}; "
                "get another handle for another owner",
                device=self.device.key,
            )
        self.lease = self._rt.acquire(self.device, owner=owner, timeout=self.timeout)
        return self

    def open(self) -> Self:
        """Open the device for this handle's lease (device_already_opened if open)."""
        self._rt.open(self._lease(), timeout=self.timeout)
        return self

    def take(self, owner: str) -> Self:
        """Acquire and open: what ``Runtime.lease`` does; if the open fails, the device
        is released again and nothing is held."""
        self.acquire(owner)
        try:
            self.open()
        except BaseException:
            self.release()
            raise
        return self

    def close(self) -> None:
        """Close the device for this handle's lease; it stays acquired."""
        self._rt.close(self._lease(), timeout=self.timeout)

    def release(self) -> int:
        """Give the device back; returns the owners left. Closes it first if open."""
        remaining = self._rt.release(self._lease(), timeout=self.timeout)
        self.lease = None
        return remaining

    def info(self) -> DeviceInfo:
        """The device's state, policy and owners now."""
        return self._rt.info(self.device, timeout=self.timeout)

    def _lease(self) -> Lease:
        if self.lease is None:
            raise NotOwnerError(
                f"{self.device.key}: this handle holds no lease - call acquire() first",
                device=self.device.key,
            )
        return self.lease

    def _call(self, op: str, *args: Any, timeout: float | None = None, **limits: Any) -> Any:
        # limits: priority, wait, exclusive for the operation limiter (Runtime.use).
        return self._rt.use(
            self.lease or self._lease(), op, args, timeout=timeout or self.timeout, **limits
        )

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        if self.lease is not None:
            self.release()


def _bytes(value: Any, name: str) -> bytes:
    if not isinstance(value, bytes | bytearray | memoryview):
        raise InvalidArgumentError(
            f"{name} must be bytes, not {type(value).__name__}", argument=name
        )
    return bytes(value)


def _int(value: Any, name: str) -> int:
    if not isinstance(value, int) or isinstance(value, bool):
        raise InvalidArgumentError(
            f"{name} must be an int, not {type(value).__name__}", argument=name
        )
    return value


class Uart(Handle):
    """A serial port. SINGLE by default."""

    kind = DeviceKind.UART

    def write(self, data: bytes) -> int:
        """Send ``data``; returns the number of bytes written."""
        return int(self._call("write", _bytes(data, "data")))

    def read(self, size: int) -> bytes:
        """Up to ``size`` bytes that arrived."""
        return bytes(self._call("read", _int(size, "size")))


class Gpio(Handle):
    """A digital pin. SHARED by default: many readers."""

    kind = DeviceKind.GPIO

    def read(self) -> bool:
        """The pin's level."""
        return bool(self._call("read"))

    def write(self, level: bool) -> None:
        """Drive the pin high (True) or low (False)."""
        if not isinstance(level, bool):
            raise InvalidArgumentError("level must be a bool", argument="level")
        self._call("write", level)


class I2c(Handle):
    """An I2C bus."""

    kind = DeviceKind.I2C

    def write(self, address: int, data: bytes) -> None:
        """Write ``data`` to the 7-bit ``address``."""
        self._call("write", _int(address, "address"), _bytes(data, "data"))

    def read(self, address: int, size: int) -> bytes:
        """Read ``size`` bytes from the 7-bit ``address``."""
        return bytes(self._call("read", _int(address, "address"), _int(size, "size")))


class Spi(Handle):
    """An SPI bus."""

    kind = DeviceKind.SPI

    def transfer(self, data: bytes) -> bytes:
        """Clock ``data`` out and return what was clocked in."""
        return bytes(self._call("transfer", _bytes(data, "data")))


class Adc(Handle):
    """An analog input."""

    kind = DeviceKind.ADC

    def read(self) -> int:
        """One raw reading."""
        return int(self._call("read"))


class Dac(Handle):
    """An analog output."""

    kind = DeviceKind.DAC

    def write(self, value: int) -> None:
        """Set the raw output value."""
        self._call("write", _int(value, "value"))


class Pwm(Handle):
    """A PWM output."""

    kind = DeviceKind.PWM

    def set_duty(self, duty: float) -> None:
        """Duty cycle in 0..1."""
        if not isinstance(duty, int | float) or isinstance(duty, bool):
            raise InvalidArgumentError("duty must be a number in 0..1", argument="duty")
        self._call("set_duty", float(duty))

    def set_frequency(self, hz: int) -> None:
        """Frequency in Hz."""
        self._call("set_frequency", _int(hz, "hz"))

    def read(self) -> tuple[float, float]:
        """(duty, frequency)."""
        duty, hz = self._call("read")
        return float(duty), float(hz)


class Led(Handle):
    """An LED."""

    kind = DeviceKind.LED

    def on(self) -> None:
        """Light it."""
        self._call("set", True)

    def off(self) -> None:
        """Put it out."""
        self._call("set", False)

    def toggle(self) -> bool:
        """Flip it; returns whether it is now lit."""
        return bool(self._call("toggle"))

    def is_on(self) -> bool:
        """Whether it is lit."""
        return bool(self._call("get"))


class Button(Handle):
    """A push button."""

    kind = DeviceKind.BUTTON

    def is_pressed(self) -> bool:
        """Whether it is held down now."""
        return bool(self._call("is_pressed"))


class Display(Handle):
    """A small display (the micro:bit's 5x5 LEDs)."""

    kind = DeviceKind.DISPLAY

    def show(self, text: str) -> None:
        """Show ``text``."""
        if not isinstance(text, str):
            raise InvalidArgumentError("text must be a str", argument="text")
        self._call("show", text)

    def clear(self) -> None:
        """Blank it."""
        self._call("clear")

    def read(self) -> str:
        """What it shows, as far as the driver can tell."""
        return str(self._call("read"))


class Accelerometer(Handle):
    """A 3-axis accelerometer."""

    kind = DeviceKind.ACCELEROMETER

    def read(self) -> tuple[int, int, int]:
        """(x, y, z) in milli-g."""
        x, y, z = self._call("read")
        return int(x), int(y), int(z)


class Board(Handle):
    """A board that runs code (MicroPython)."""

    kind = DeviceKind.BOARD

    def exec(
        self, code: str, *, timeout: float = 10.0, priority: Any = None, exclusive: bool = False
    ) -> str:
        """Run ``code`` on the board and return what it printed.

        ``priority`` (a `Priority`, default NORMAL) and
        ``exclusive`` (run alone on the board) go to the operation limiter.

        Raises DeviceExceptionError (with the board's traceback) if the code raised,
        TimedOutError if it did not finish within ``timeout`` s (the board is
        interrupted), PreemptedError if a higher priority preempted it.
        """
        if not isinstance(code, str):
            raise InvalidArgumentError("code must be a str", argument="code")
        return str(
            self._rt.use(
                self.lease or self._lease(), "exec", (code, float(timeout)), timeout=timeout + 2.0,
                priority=Priority.NORMAL if priority is None else priority, exclusive=exclusive,
            )
        )  # fmt: skip


#: The handle class of every kind.
HANDLES: Mapping[DeviceKind, type[Handle]] = {
    h.kind: h
    for h in (Uart, Gpio, I2c, Spi, Adc, Dac, Pwm, Led, Button, Display, Accelerometer, Board)
}
