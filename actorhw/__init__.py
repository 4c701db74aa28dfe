"""actorhw: an actor-model runtime for driving many hardware boards at once.

The public names are re-exported here and loaded lazily, so importing a lower layer
(``actorhw.links.raw_repl``, a driver plugin) does not load the actor tree.  The
sub-packages hold the detail, one per layer (see docs/decisions/0006-layers.md).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from actorhw.api.handles import (
        Accelerometer,
        Adc,
        Board,
        Button,
        Dac,
        Display,
        Gpio,
        Handle,
        I2c,
        Led,
        Pwm,
        Spi,
        Uart,
    )
    from actorhw.api.runtime import BoardSpec, Runtime
    from actorhw.core.errors import ActorHwError
    from actorhw.core.events import Overflow, Subscription
    from actorhw.core.ids import DeviceId, DeviceKind
    from actorhw.core.lifecycle import DeviceState, SharingPolicy
    from actorhw.core.messages import DeviceInfo, Lease, StateChanged

#: Public name -> the module that holds it.
_HOME = {
    "Accelerometer": "actorhw.api.handles",
    "Adc": "actorhw.api.handles",
    "Board": "actorhw.api.handles",
    "Button": "actorhw.api.handles",
    "Dac": "actorhw.api.handles",
    "Display": "actorhw.api.handles",
    "Gpio": "actorhw.api.handles",
    "Handle": "actorhw.api.handles",
    "I2c": "actorhw.api.handles",
    "Led": "actorhw.api.handles",
    "Pwm": "actorhw.api.handles",
    "Spi": "actorhw.api.handles",
    "Uart": "actorhw.api.handles",
    "BoardSpec": "actorhw.api.runtime",
    "Runtime": "actorhw.api.runtime",
    "ActorHwError": "actorhw.core.errors",
    "Overflow": "actorhw.core.events",
    "Subscription": "actorhw.core.events",
    "DeviceId": "actorhw.core.ids",
    "DeviceKind": "actorhw.core.ids",
    "DeviceState": "actorhw.core.lifecycle",
    "SharingPolicy": "actorhw.core.lifecycle",
    "DeviceInfo": "actorhw.core.messages",
    "Lease": "actorhw.core.messages",
    "StateChanged": "actorhw.core.messages",
}

__all__ = [
    "Accelerometer",
    "ActorHwError",
    "Adc",
    "Board",
    "BoardSpec",
    "Button",
    "Dac",
    "DeviceId",
    "DeviceInfo",
    "DeviceKind",
    "DeviceState",
    "Display",
    "Gpio",
    "Handle",
    "I2c",
    "Lease",
    "Led",
    "Overflow",
    "Pwm",
    "Runtime",
    "SharingPolicy",
    "Spi",
    "StateChanged",
    "Subscription",
    "Uart",
]


def __getattr__(name: str) -> Any:
    home = _HOME.get(name)
    if home is None:
        raise AttributeError(f"module 'actorhw' has no attribute {name!r}")
    value = getattr(importlib.import_module(home), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_HOME))
