"""Device ids and device kinds.

Each board's ids are their own enum class, a subclass of
[`DeviceId`][actorhw.core.ids.DeviceId], built from the board's definition file (see
`actorhw.boards`). Ids of two boards never compare equal, even when their names match,
and lookup by id hashes the member: no string comparison is involved."""

from __future__ import annotations

import enum
from typing import ClassVar


class DeviceKind(enum.Enum):
    """What a device is; each kind has a typed handle in `actorhw.handles`."""

    UART = "uart"
    GPIO = "gpio"
    I2C = "i2c"
    SPI = "spi"
    ADC = "adc"
    DAC = "dac"
    PWM = "pwm"
    LED = "led"
    BUTTON = "button"
    DISPLAY = "display"
    ACCELEROMETER = "accelerometer"
    BOARD = "board"
    """The board itself: code execution and power, for boards that run code."""

    #: Hashed by identity, in C (Enum's own hash is a Python call hashing the name; the
    #: kind keys the operation tables that every device start reads).
    __hash__ = object.__hash__


class DeviceId(enum.Enum):
    """Base of every board's id enum. Members are the board's devices.

    A board's enum class carries ``board`` (the board instance's name); the member's
    ``key`` is ``"<board>.<NAME>"``, for display and for the wire.
    """

    board: ClassVar[str]

    #: Members are singletons compared by identity; Enum's own hash is its name's, so
    #: PIN3 of 1,000 boards would share one hash and every dict of ids (the registry,
    #: the runtime's routes) would probe through 1,000 collisions: a scan in disguise.
    __hash__ = object.__hash__

    @property
    def key(self) -> str:
        """``"<board>.<NAME>"``: unique across the boards of one runtime."""
        return f"{type(self).board}.{self.name}"

    def __str__(self) -> str:
        return self.key

    def __repr__(self) -> str:
        return f"<{type(self).__name__}.{self.name} of {type(self).board}>"


def make_id_enum(enum_name: str, board: str, names: list[str]) -> type[DeviceId]:
    """Build the id enum of one board instance: a new class, so ids never collide.

    Plain names (no leading underscore, no repeats: every board file's) are built by the
    standard library's own fast constructor of simple enums (``enum._simple_enum``,
    which the stdlib uses for its enums), about 2x faster than Enum's functional API:
    1,000 boards of 20 devices start with 1,000 of these.  Anything else, or a Python
    without it, takes the functional API, which also checks the names.
    """
    simple = getattr(enum, "_simple_enum", None)
    if simple is None or len(set(names)) != len(names) or any(n[:1] == "_" for n in names):
        cls: type[DeviceId] = DeviceId(enum_name, [(n, n) for n in names])  # type: ignore[call-arg, assignment]
    else:
        members = type(enum_name, (), {n: n for n in names})
        cls = simple(DeviceId)(members)
        cls.__module__, cls.__doc__ = __name__, None  # as the functional API's
    cls.board = board
    return cls
