"""actorhw: an actor-model runtime for driving many hardware boards at once.

The public names are re-exported here; the modules hold the detail.
"""

from actorhw.errors import ActorHwError
from actorhw.events import Overflow, Subscription
from actorhw.handles import (
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
from actorhw.ids import DeviceId, DeviceKind
from actorhw.lifecycle import DeviceState, SharingPolicy
from actorhw.messages import DeviceInfo, Lease, StateChanged
from actorhw.runtime import BoardSpec, Runtime

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
