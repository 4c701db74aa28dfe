"""A CAN adapter on python-can's virtual bus, after the seeds' SocketCAN reference driver.

The virtual bus lives in this process: every ``can.Bus(interface="virtual")`` on the
same channel sees the frames the others send, which makes it the test double of a
SocketCAN interface (``vcan0``).  The driver connects one bus per board, sends and
receives frames through its commands, and streams every received frame.

A frame travels as plain data: ``{"arbitration_id": int, "data": bytes,
"is_extended_id": bool}`` in commands, ``(arbitration_id, data, is_extended_id, dlc)``
in a stream sample (stream type ``can_frame``, channel ``frames``).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

import can

from actorhw.core.errors import InvalidArgumentError, LinkLostError
from actorhw.drivers.board_driver import BoardDriver, Peripheral
from actorhw.drivers.definitions import DeviceSpec
from actorhw.drivers.streams import StreamWriter

#: Seconds one ``recv`` of the acquisition loop waits, so that stop is seen that fast.
POLL_S = 0.05


class CanAdapter(Peripheral):
    """The adapter itself, the board's one device; frames go through the commands."""


class VirtualCanBoard(BoardDriver):
    """One CAN adapter on a python-can virtual channel (board option ``channel``)."""

    name = "can-virtual"
    supported_commands: ClassVar[Mapping[str, str]] = {
        "send": "send one frame: arbitration_id, data (bytes), is_extended_id=False",
        "receive": "the next frame received within `timeout` s (default 1), or None",
        "status": "the channel and how many frames were sent and received",
    }
    stream_channels: ClassVar[Mapping[str, str]] = {
        "frames": "every frame received on the bus, as (arbitration_id, data, extended, dlc)",
    }

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.channel = str(self.options.get("channel", "vcan0"))
        self.bus: can.BusABC | None = None
        self.sent = 0
        self.received = 0
        self._streaming = False

    # --- lifecycle hooks -------------------------------------------------------------

    def scan(self, *, timeout: float) -> bool:
        """The virtual interface is always there (SocketCAN would list its links)."""
        return "virtual" in can.interfaces.VALID_INTERFACES

    def connect(self, *, timeout: float) -> None:
        """Open a bus on the channel; the other buses of the channel see its frames."""
        self.disconnect()
        self.bus = can.Bus(interface="virtual", channel=self.channel, receive_own_messages=False)

    def disconnect(self) -> None:
        bus, self.bus = self.bus, None
        if bus is not None:
            bus.shutdown()

    def reset(self, *, timeout: float) -> None:
        """Drop the frames waiting and reopen the bus."""
        self.connect(timeout=timeout)

    def close(self) -> None:
        self.disconnect()

    def peripheral(self, spec: DeviceSpec) -> Peripheral:
        return CanAdapter(spec)

    # --- commands --------------------------------------------------------------------

    def command(self, command: str, args: Mapping[str, Any], *, timeout: float) -> Any:
        if command == "send":
            self._bus().send(_frame(args), timeout=timeout)
            self.sent += 1
            return {"sent": self.sent}
        if command == "receive":
            if self._streaming:
                raise InvalidArgumentError(
                    f"{self.board}: frames go to the stream while it runs; stop it first",
                    argument="command",
                )
            wait = args.get("timeout", 1.0)
            if not isinstance(wait, int | float) or isinstance(wait, bool) or wait < 0:
                raise InvalidArgumentError(
                    f"timeout must be a number >= 0, not {wait!r}", argument="timeout"
                )
            message = self._bus().recv(timeout=min(float(wait), timeout))
            if message is None:
                return None
            self.received += 1
            return {
                "arbitration_id": message.arbitration_id,
                "data": bytes(message.data),
                "is_extended_id": message.is_extended_id,
                "timestamp": message.timestamp,
            }
        if command == "status":
            return {"channel": self.channel, "sent": self.sent, "received": self.received}
        return super().command(command, args, timeout=timeout)

    # --- streaming -------------------------------------------------------------------

    def setup_acquisition(
        self, channels: tuple[str, ...], args: Mapping[str, Any], *, timeout: float
    ) -> None:
        self._bus()
        self._streaming = True

    def acquisition_loop(self, stream: StreamWriter) -> None:
        bus = self._bus()
        while stream.running:
            message = bus.recv(timeout=POLL_S)
            if message is None:
                continue
            self.received += 1
            stream.publish(
                "frames",
                (
                    message.arbitration_id,
                    bytes(message.data),
                    message.is_extended_id,
                    message.dlc,
                ),
                stream_type="can_frame",
                timestamp=message.timestamp,
            )

    def cleanup_acquisition(self) -> None:
        self._streaming = False

    def _bus(self) -> can.BusABC:
        if self.bus is None:
            raise LinkLostError(f"{self.board}: the CAN bus is not connected", device=self.board)
        return self.bus


def _frame(args: Mapping[str, Any]) -> can.Message:
    """A can.Message from a command's args; InvalidArgumentError names what is wrong."""
    arbitration_id = args.get("arbitration_id")
    data = args.get("data", b"")
    extended = args.get("is_extended_id", False)
    if not isinstance(arbitration_id, int) or isinstance(arbitration_id, bool):
        raise InvalidArgumentError(
            f"arbitration_id must be an int, not {arbitration_id!r}", argument="arbitration_id"
        )
    if not isinstance(extended, bool):
        raise InvalidArgumentError("is_extended_id must be a bool", argument="is_extended_id")
    limit = 0x1FFFFFFF if extended else 0x7FF
    if not 0 <= arbitration_id <= limit:
        raise InvalidArgumentError(
            f"arbitration_id {arbitration_id:#x} outside 0..{limit:#x} "
            f"({'extended' if extended else 'standard'} id)",
            argument="arbitration_id",
        )
    if isinstance(data, list) and all(isinstance(b, int) and 0 <= b < 256 for b in data):
        data = bytes(data)
    if not isinstance(data, bytes) or len(data) > 8:
        raise InvalidArgumentError(f"data must be at most 8 bytes, not {data!r}", argument="data")
    return can.Message(arbitration_id=arbitration_id, data=data, is_extended_id=extended)
