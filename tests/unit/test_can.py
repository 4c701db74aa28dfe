"""The CAN driver on python-can's virtual bus: scan, connect, send, receive, stream."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import can
import pytest

from actorhw import Runtime
from actorhw.core.errors import InvalidArgumentError
from actorhw.core.events import Overflow
from actorhw.core.lifecycle import DeviceState
from actorhw.core.messages import StreamAction

pytestmark = pytest.mark.timeout(30)

DRIVER = BOARD = "can-virtual"
T = 5.0


@pytest.fixture
def rt() -> Iterator[Runtime]:
    runtime = Runtime.start()
    try:
        yield runtime
    finally:
        runtime.stop()


@pytest.fixture
def peer() -> Iterator[can.BusABC]:
    """Another node on the board's channel (vcan0)."""
    bus = can.Bus(interface="virtual", channel="vcan0", receive_own_messages=False)
    try:
        yield bus
    finally:
        bus.shutdown()


def command(rt: Runtime, name: str, **args: Any) -> Any:
    result = rt.manager.execute_command(DRIVER, name, device_id=BOARD, args=args)
    assert result["status"] == "success", result
    return result["result"]


def test_scan_and_connect(rt: Runtime) -> None:
    scan = rt.manager.scan_devices(DRIVER)
    assert [d["device_id"] for d in scan["devices"]] == [BOARD]
    assert rt.manager.connect_device(DRIVER, BOARD)["state"] == "connected"
    assert command(rt, "status") == {"channel": "vcan0", "sent": 0, "received": 0}


def test_send_reaches_the_other_nodes(rt: Runtime, peer: can.BusABC) -> None:
    rt.manager.connect_device(DRIVER, BOARD)
    assert command(rt, "send", arbitration_id=0x123, data=b"\x01\x02\x03") == {"sent": 1}
    command(rt, "send", arbitration_id=0x1ABCDEF0, data=[9, 8], is_extended_id=True)
    first, second = peer.recv(T), peer.recv(T)
    assert first is not None and second is not None
    assert (first.arbitration_id, bytes(first.data), first.is_extended_id) == (
        0x123,
        b"\x01\x02\x03",
        False,
    )
    assert (second.arbitration_id, bytes(second.data), second.is_extended_id) == (
        0x1ABCDEF0,
        b"\x09\x08",
        True,
    )


def test_receive_returns_a_frame_or_none(rt: Runtime, peer: can.BusABC) -> None:
    rt.manager.connect_device(DRIVER, BOARD)
    assert command(rt, "receive", timeout=0.01) is None
    peer.send(can.Message(arbitration_id=0x42, data=b"hi", is_extended_id=False))
    frame = command(rt, "receive", timeout=T)
    assert {k: frame[k] for k in ("arbitration_id", "data", "is_extended_id")} == {
        "arbitration_id": 0x42,
        "data": b"hi",
        "is_extended_id": False,
    }


def test_received_frames_are_streamed(rt: Runtime, peer: can.BusABC) -> None:
    rt.manager.connect_device(DRIVER, BOARD)
    with rt.stream(BOARD, overflow=Overflow.BLOCK) as sub:
        assert command(rt, "start") == {"channels": ["frames"]}
        assert sub.get(timeout=T).action is StreamAction.START
        for i in range(20):
            peer.send(can.Message(arbitration_id=0x100 + i, data=bytes([i]), is_extended_id=False))
        frames = [sub.get(timeout=T) for _ in range(20)]
        with pytest.raises(InvalidArgumentError, match="frames go to the stream while it runs"):
            rt.manager.execute_command(DRIVER, "receive", device_id=BOARD)
        # sending still works while the stream runs
        command(rt, "send", arbitration_id=0x7FF)
        assert command(rt, "stop") == {"published": 20}
    assert [f.data for f in frames] == [(0x100 + i, bytes([i]), False, 1) for i in range(20)]
    assert {(f.stream_type, f.channel) for f in frames} == {("can_frame", "can-virtual.frames")}
    assert [f.seq for f in frames] == list(range(1, 21))
    peer_frame = peer.recv(T)
    assert peer_frame is not None and peer_frame.arbitration_id == 0x7FF


@pytest.mark.parametrize(
    ("args", "problem"),
    [
        ({}, "arbitration_id must be an int, not None"),
        ({"arbitration_id": 0x800}, r"arbitration_id 0x800 outside 0..0x7ff \(standard id\)"),
        ({"arbitration_id": 1, "data": b"123456789"}, "data must be at most 8 bytes"),
        ({"arbitration_id": 1, "data": "text"}, "data must be at most 8 bytes, not 'text'"),
        ({"arbitration_id": 1, "is_extended_id": 1}, "is_extended_id must be a bool"),
    ],
)
def test_a_bad_frame_is_refused_and_the_bus_stays_connected(
    rt: Runtime, peer: can.BusABC, args: dict[str, Any], problem: str
) -> None:
    rt.manager.connect_device(DRIVER, BOARD)
    with pytest.raises(InvalidArgumentError, match=problem):
        rt.manager.execute_command(DRIVER, "send", device_id=BOARD, args=args)
    assert rt.board_status(BOARD).state is DeviceState.CONNECTED
    assert peer.recv(0.01) is None  # nothing half-sent


def test_close_shuts_the_bus_and_connect_reopens_it(rt: Runtime, peer: can.BusABC) -> None:
    rt.manager.connect_device(DRIVER, BOARD)
    rt.manager.close_device(DRIVER, BOARD)
    peer.send(can.Message(arbitration_id=1, is_extended_id=False))  # nobody listens
    assert rt.manager.connect_device(DRIVER, BOARD)["state"] == "connected"
    assert command(rt, "receive", timeout=0.01) is None
