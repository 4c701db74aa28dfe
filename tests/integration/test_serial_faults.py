"""Faults on serial boards: unplug and replug on a new path, a hang Ctrl-C cannot reach.

The boards are the MicroPython unix port behind socat ptys.  The OS's port list
(``serial.tools.list_ports.comports``) is faked: it is the discovery layer's edge, and
a pty has no USB serial number of its own.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import serial.tools.list_ports
from serial.tools.list_ports_common import ListPortInfo

from actorhw import Runtime
from actorhw.api.handles import Board
from actorhw.api.runtime import BoardSpec
from actorhw.core.errors import ActorHwError, DeviceUnavailableError, TimedOutError
from actorhw.core.lifecycle import DeviceState
from actorhw.core.messages import BoardEvent
from actorhw.core.recovery import RecoveryPolicy
from actorhw.programming import MicroPythonDevice, setup, task
from tests.integration.serial_boards import UnixBoardFactory

pytestmark = pytest.mark.timeout(90)

FAST = RecoveryPolicy(
    min_backoff=0.1, max_backoff=0.5, jitter=0.0, step_timeout=3.0, max_restarts=40, window=60
)


class Counter(MicroPythonDevice):
    @setup
    def init(self):  # type: ignore[no-untyped-def]
        global count
        count = 0

    @task
    def bump(self) -> int:
        global count
        count += 1
        return count  # type: ignore[no-any-return]


def usb_port(path: Path, serial_number: str) -> ListPortInfo:
    info = ListPortInfo(str(path), skip_link_detection=True)
    info.vid, info.pid, info.serial_number = 0x2E8A, 0x0005, serial_number
    return info


def board_events(rt: Runtime, what: str) -> Callable[[Any], bool]:
    return lambda e: isinstance(e, BoardEvent) and e.what == what


def test_unplug_and_replug_on_a_new_path(
    unix_boards: UnixBoardFactory, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    b = unix_boards()
    listed = [usb_port(b.path, "UNIX0001")]
    monkeypatch.setattr(serial.tools.list_ports, "comports", lambda include_links=False: listed)
    spec = BoardSpec("micropython", "mp", port="serial:UNIX0001")
    with Runtime.start(boards=[spec], recovery=FAST) as rt:
        ids = rt.ids("mp")
        with Counter(rt, ids.BOARD, owner="lab") as dev, rt.events.subscribe() as events:
            assert dev.bump() == 1
            assert dev.bump() == 2
            b.kill()  # the cable is pulled: the port and its USB entry vanish
            listed.clear()
            with pytest.raises(ActorHwError) as lost:
                dev.bump()
            assert lost.value.code in ("link_lost", "device_unavailable")
            events.wait_for(board_events(rt, "recovery_failed"), timeout=10)
            # While it is gone, calls fail at once.
            started = time.monotonic()
            with pytest.raises(DeviceUnavailableError):
                dev.bump()
            with pytest.raises(DeviceUnavailableError), rt.lease(Board, ids.BOARD, owner="t"):
                pass
            assert time.monotonic() - started < 1.0
            # It comes back on another path with the same serial number.
            b.start(tmp_path / "ttyACM7")
            listed.append(usb_port(b.path, "UNIX0001"))
            status = rt.wait_for_board("mp", DeviceState.CONNECTED, timeout=30, restarts=1)
            assert not status.quarantined
            # The setups ran again before CONNECTED: the fresh board counts from 0.
            assert dev.bump() == 1
        info = rt.manager.execute_command("micropython", "link_info", "mp", timeout=5)
        assert info["result"]["device"] == str(tmp_path / "ttyACM7")


def test_a_hang_ctrl_c_cannot_reach_ends_in_a_power_cycle(unix_boards: UnixBoardFactory) -> None:
    b = unix_boards(ctty=False)  # no controlling terminal: Ctrl-C never reaches the code
    spec = BoardSpec("micropython", "mp", port=str(b.path), options={"power_hook": b.power_hook})
    first_pid = b.pid
    with Runtime.start(boards=[spec], recovery=FAST) as rt, rt.events.subscribe() as events:
        ids = rt.ids("mp")
        with rt.lease(Board, ids.BOARD, owner="t") as board:
            board.exec("x = 41")
            with pytest.raises(TimedOutError) as hung:
                board.exec("while True:\n pass", timeout=0.5)
            assert hung.value.resynced is False  # type: ignore[attr-defined]
        recovered = events.wait_for(board_events(rt, "recovered"), timeout=30)
        status = rt.wait_for_board("mp", DeviceState.CONNECTED, timeout=10, restarts=1)
        assert "power cycle" in status.reason, status.reason
        assert recovered.board == "mp"
        assert b.pid != first_pid  # the hook restarted the firmware
        with rt.lease(Board, ids.BOARD, owner="t") as board:
            assert board.exec("print('x' in globals())") == "False\n"  # a fresh board
            assert board.exec("print(6 * 7)") == "42\n"


def test_a_hung_board_without_power_hook_needs_a_hand(unix_boards: UnixBoardFactory) -> None:
    b = unix_boards(ctty=False)
    spec = BoardSpec("micropython", "mp", port=str(b.path))
    with Runtime.start(boards=[spec], recovery=FAST) as rt, rt.events.subscribe() as events:
        ids = rt.ids("mp")
        with rt.lease(Board, ids.BOARD, owner="t") as board, pytest.raises(TimedOutError):
            board.exec("while True:\n pass", timeout=0.5)
        hand = events.wait_for(board_events(rt, "needs_hand"), timeout=30)
        assert "needs a hand" in hand.reason and "power hook" in hand.reason
        status = rt.board_status("mp")
        assert status.quarantined
        assert "needs a hand" in status.reason
        # A person power-cycles it, then an operator reset brings it back.
        b.kill()
        b.start()
        assert rt.reset_board("mp", timeout=20).state is DeviceState.CONNECTED


def test_a_soft_reset_that_ends_the_board_is_a_power_cycle(unix_boards: UnixBoardFactory) -> None:
    """The unix port exits on a soft reset (Ctrl-D): for this board the driver's reset
    powers it on again through its hook and reconnects."""
    from actorhw.drivers.definitions import BoardCatalog
    from actorhw.drivers.plugins import DriverCatalog

    b = unix_boards()
    first_pid = b.pid
    driver_class = DriverCatalog.discover(entry_points=False).get("micropython")
    driver = driver_class(
        board="mp",
        definition=BoardCatalog.discover().get("micropython"),
        options={"port": str(b.path), "power_hook": b.power_hook},
    )
    try:
        assert driver.scan(timeout=5)
        driver.initialize(timeout=5)
        driver.connect(timeout=10)
        driver.run("x = 1", what="set").wait(timeout=5)
        driver.reset(timeout=15)
        assert b.pid != first_pid  # the hook started a fresh firmware
        assert driver.query("'x' in globals()", what="fresh").wait(timeout=5) is False
        assert driver.power_hook is not None and driver.power_hook.runs == 1
    finally:
        driver.close()
