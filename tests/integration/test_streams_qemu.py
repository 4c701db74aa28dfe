"""Streams from the real micro:bit firmware in QEMU: accelerometer and pins."""

from __future__ import annotations

import ast
import itertools

import pytest

from actorhw import Board, Display, Runtime
from actorhw.core.events import Overflow
from actorhw.core.lifecycle import DeviceState
from actorhw.core.messages import StateChanged, StreamAction, StreamData

pytestmark = [pytest.mark.qemu, pytest.mark.timeout(90)]

BOARD = DRIVER = "microbit-qemu"
T = 10.0


def command(rt: Runtime, name: str, **args: object) -> object:
    result = rt.manager.execute_command(DRIVER, name, device_id=BOARD, args=args)
    assert result["status"] == "success", result
    return result["result"]


def data_of(events: list[StreamData], channel: str) -> list[tuple[object, ...]]:
    return [e.data for e in events if e.channel == f"{BOARD}.{channel}"]


def test_accelerometer_and_pins_stream_what_the_firmware_reads(qemu_rt: Runtime) -> None:
    ids = qemu_rt.ids(BOARD)
    with qemu_rt.stream(BOARD, overflow=Overflow.BLOCK, block_timeout=T) as sub:
        channels = ["accelerometer", "pin0", "pin1"]
        assert command(qemu_rt, "start", channels=channels) == {"channels": channels}
        assert qemu_rt.board_status(BOARD).state is DeviceState.ACTIVE
        assert sub.get(timeout=T).action is StreamAction.START
        # the board's control path works while the stream runs: its I/O interleaves
        with qemu_rt.lease(Board, ids.BOARD, owner="t") as board:
            firmware = board.exec(
                "print((microbit.accelerometer.get_values(),"
                "microbit.pin0.read_analog(),microbit.pin1.read_analog()))"
            )
        with qemu_rt.lease(Display, ids.DISPLAY, owner="t") as display:
            display.show("S")
        events = sub.until(lambda e: e.seq >= 300, timeout=T)
        published = command(qemu_rt, "stop")
        stop = sub.wait_for(lambda e: e.action is StreamAction.STOP, timeout=T)
    accel, pin0, pin1 = ast.literal_eval(firmware)
    assert set(data_of(events, "accelerometer")) == {tuple(accel)}
    assert set(data_of(events, "pin0")) == {(pin0,)} and set(data_of(events, "pin1")) == {(pin1,)}
    # each sample is one exec of the sampler: the three channels of a sample share a time
    assert [e.seq for e in events] == list(range(1, len(events) + 1))
    times = [e.timestamp for e in events]
    assert times[0] == times[1] == times[2] and times == sorted(times)
    assert {e.stream_type for e in events} == {"accelerometer", "analog"}
    assert stop.data == (published["published"],)  # type: ignore[index]
    assert qemu_rt.board_status(BOARD).state is DeviceState.CONNECTED
    with qemu_rt.lease(Board, ids.BOARD, owner="t") as board:
        # the sampler is gone, the board is as it was
        assert board.exec("print('_ahs' in dir())") == "False\n"


def test_an_interval_paces_the_samples(qemu_rt: Runtime) -> None:
    with qemu_rt.stream(BOARD) as sub:
        command(qemu_rt, "start", channels=["accelerometer"], interval=0.02)
        events = sub.until(lambda e: e.seq >= 11, timeout=T)[1:]
        command(qemu_rt, "stop")
    gaps = [b.timestamp - a.timestamp for a, b in itertools.pairwise(events)]
    assert min(gaps) >= 0.02


def test_a_board_lost_while_streaming_ends_the_stream_with_an_error(qemu_rt: Runtime) -> None:
    with qemu_rt.stream(BOARD) as sub, qemu_rt.subscribe() as events:
        command(qemu_rt, "start", channels=["accelerometer"])
        sub.wait_for(lambda e: e.seq >= 10, timeout=T)
        qemu_rt.inject_fault(BOARD, "unplug")
        error = sub.wait_for(lambda e: e.action is StreamAction.ERROR, timeout=T)
        assert error.data[0] in ("link_lost", "timed_out")
        events.wait_for(
            lambda e: isinstance(e, StateChanged) and e.to_state is DeviceState.DISCONNECTED,
            timeout=T,
        )
