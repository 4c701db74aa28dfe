"""Status and ownership answer at once while a board's driver works (issue 13 item 6).

A driver command that runs for 2 s must not make ``manager.device_state()`` or
``rt.board_status()`` wait for it: they answer at once, and say ACTIVE.
"""

from __future__ import annotations

import concurrent.futures
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from actorhw import Runtime
from actorhw.core.lifecycle import DeviceState

pytestmark = pytest.mark.timeout(30)
S = DeviceState
#: "At once": far below the 2 s the command runs, yet far above a mailbox round trip.
AT_ONCE = 0.5

SLOW_DRIVER = '''
import threading
from typing import Any, ClassVar, Mapping

from actors.sim.drv_sim import SimBoard


class SlowBoard(SimBoard):
    """A sim board whose ``slow`` command blocks its caller until released (<= 2 s)."""

    name = "slow"
    supported_commands: ClassVar[Mapping[str, str]] = {"slow": "runs until released"}
    started = threading.Event()
    release = threading.Event()

    def command(self, command: str, args: Mapping[str, Any], *, timeout: float) -> Any:
        if command == "slow":
            type(self).started.set()
            type(self).release.wait(min(timeout, 2.0))
            return "done"
        return super().command(command, args, timeout=timeout)
'''


@pytest.fixture
def rt(tmp_path: Path) -> Iterator[Runtime]:
    (tmp_path / "drv_slow.py").write_text(textwrap.dedent(SLOW_DRIVER))
    boards = tmp_path / "boards"
    boards.mkdir()
    (boards / "slow.toml").write_text(
        '[board]\nname = "slow"\ntitle = "a board with a slow command"\n'
        'enum = "Slow"\ndriver = "slow"\n[devices]\nBOARD = { kind = "board" }\n'
        'LED0 = { kind = "led" }\n'
    )
    with Runtime.start(["slow"], boards_dirs=[boards], drivers_dirs=[tmp_path]) as rt:
        yield rt


def test_status_answers_at_once_and_says_active_while_a_command_runs(rt: Runtime) -> None:
    driver = rt.drivers.get("slow")
    started, release = driver.started, driver.release  # type: ignore[attr-defined]
    started.clear()
    release.clear()
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        command = pool.submit(rt.manager.execute_command, "slow", "slow", "slow", timeout=5)
        try:
            assert started.wait(5), "the command never started"
            t0 = time.monotonic()
            board = rt.board_status("slow", timeout=AT_ONCE)
            state = rt.manager.device_state("slow", "slow")
            info = rt.info(rt.ids("slow").LED0, timeout=AT_ONCE)
            took = time.monotonic() - t0
            assert board.state is S.ACTIVE, board
            assert state is S.ACTIVE
            assert info.state is S.CONNECTED and info.owners == ()
            assert took < AT_ONCE, f"status waited {took:.2f} s for the command"
        finally:
            release.set()
        assert command.result(timeout=5)["result"] == "done"
    assert rt.board_status("slow").state is S.CONNECTED
