"""An unplugged or hung board is noticed while nobody uses it (issue 13 item 5).

Real faults on the QEMU micro:bit, from outside the runtime or as hardware does: its
QEMU process killed with SIGKILL (the port closes), and ``microbit.temperature()``,
which hangs the firmware for good.  No caller touches the board: the board's own watch
must notice, a closed port within 1 s, a hang at the next idle probe.
"""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Iterator
from typing import Any

import psutil
import pytest

from actorhw import Runtime
from actorhw.core.lifecycle import DeviceState
from actorhw.core.messages import BoardEvent
from actorhw.core.recovery import RecoveryPolicy
from actorhw.links import qemu_available

pytestmark = [pytest.mark.qemu, pytest.mark.timeout(90)]
BOARD = "microbit-qemu"
#: A closed port is noticed within this many seconds.
CLOSED_PORT_NOTICED = 1.0


def _fault(e: object) -> bool:
    return isinstance(e, BoardEvent) and e.board == BOARD and e.what == "fault"


def _qemu_pids() -> set[int]:
    me = psutil.Process()
    return {p.pid for p in me.children(recursive=True) if "qemu" in p.name()}


@pytest.fixture
def rt() -> Iterator[Runtime]:
    reason = qemu_available()
    if reason is not None:
        pytest.fail(f"QEMU micro:bit is required for this test: {reason}", pytrace=False)
    policy = RecoveryPolicy(probe_every=0.5)
    with Runtime.start([BOARD], timeout=30, recovery=policy) as rt:
        yield rt


def test_a_killed_qemu_is_noticed_within_a_second_with_nobody_using_the_board(
    rt: Runtime,
) -> None:
    (pid,) = _qemu_pids()
    with rt.subscribe() as sub:
        os.kill(pid, signal.SIGKILL)
        killed = time.monotonic()
        event: Any = sub.wait_for(_fault, timeout=CLOSED_PORT_NOTICED)
        took = time.monotonic() - killed
    print(f"\nclosed port noticed after {took:.3f} s: {event.reason}")
    assert rt.wait_for_board(BOARD, DeviceState.CONNECTED, timeout=30, restarts=1)


def test_a_hung_idle_board_is_found_by_the_probe_before_any_call(rt: Runtime) -> None:
    with rt.subscribe() as sub:
        rt.inject_fault(BOARD, "hang")  # the firmware stops answering, Ctrl-C included
        hung = time.monotonic()
        event: Any = sub.wait_for(_fault, timeout=10)
        took = time.monotonic() - hung
    print(f"\nhang found by the idle probe after {took:.3f} s: {event.reason}")
    assert event.reason.startswith("idle probe:")  # no call met it: the probe did
    status = rt.wait_for_board(BOARD, DeviceState.CONNECTED, timeout=30, restarts=1)
    assert status.restarts >= 1
