"""Data streams: one message of a board's stream, where it comes from and what it says."""

from __future__ import annotations

import enum
from typing import Any

import attrs


class StreamSource(enum.Enum):
    """Where a stream message comes from."""

    DEVICE = "device"
    """Sampled from hardware by a driver's acquisition loop."""
    SERVER = "server"
    """Made by the runtime (start, stop and error notices)."""
    CLIENT = "client"
    """Sent by a subscriber (reserved for services that relay streams)."""


class StreamAction(enum.Enum):
    """What a stream message says."""

    DATA = "data"
    """A sample; ``data`` holds it."""
    START = "start"
    """The acquisition started; ``data`` lists the channels."""
    STOP = "stop"
    """The acquisition stopped; ``data`` holds the number of samples published."""
    ERROR = "error"
    """The acquisition loop failed and stopped; ``data`` holds (code, message)."""


@attrs.frozen(kw_only=True)
class StreamData:
    """One message of a data stream (the seeds' StreamData)."""

    stream_type: str
    """What the samples are (``sine``, ``accelerometer``, ``can_frame``...), per driver."""
    channel: str
    """``"<board>.<channel>"``: the board instance and the driver's channel name."""
    timestamp: float
    """Wall-clock time of the sample (seconds since the epoch)."""
    source: StreamSource
    """DEVICE for samples, SERVER for the runtime's notices."""
    action: StreamAction
    """DATA, START, STOP or ERROR."""
    data: tuple[Any, ...]
    """The sample: msgpack values (a reading, (x, y, z), a CAN frame's fields...)."""
    seq: int = 0
    """Per board and acquisition, 1 for the first sample: a gap shows a loss."""
