"""The micro:bit firmware (MicroPython 1.9.2) through the generic serial driver.

QEMU is only the board's power supply here: the board is attached by its pty path with
``BoardSpec("microbit-usb", port=...)``, as a real micro:bit on /dev/ttyACM0 would be.
This proves the generic path on 1.9.2: no raw-paste (plain raw REPL, verified sends for
its 64-byte receive ring), no ``os.stat``.
"""

from __future__ import annotations

import pytest

from actorhw import Runtime
from actorhw.api.handles import Board, Display
from actorhw.api.runtime import BoardSpec
from actorhw.core.errors import DeviceExceptionError
from tests.integration.conftest import BootedMicrobit

pytestmark = [pytest.mark.qemu, pytest.mark.timeout(90)]


def test_microbit_by_its_pty_through_the_generic_driver(microbit: BootedMicrobit) -> None:
    pty = microbit.board.pty
    microbit.link.close()  # the generic driver opens the port itself
    spec = BoardSpec("microbit-usb", "mb", port=pty)
    with Runtime.start(boards=[spec], timeout=30) as rt:
        info = rt.manager.execute_command("micropython", "link_info", "mb", timeout=5)["result"]
        assert info["platform"] == "microbit"
        assert info["raw_paste"] is False  # 1.9.2 has no raw-paste: the plain raw REPL
        assert info["verify_over"] == 60  # its ring drops bytes: long code goes verified
        ids = rt.ids("mb")
        with rt.lease(Board, ids.BOARD, owner="t") as board:
            assert board.exec("print(1+1)") == "2\n"
            long_code = "total = 0\n" + "total += 1\n" * 60 + "print(total)"
            assert board.exec(long_code) == "60\n"
            with pytest.raises(DeviceExceptionError) as info_exc:
                board.exec("x = [0] * 100000")
            assert info_exc.value.exc_name == "MemoryError"  # type: ignore[attr-defined]
            assert board.exec("print('1\\x04\\x04>')") == "1\x04\x04>\n"
        with rt.lease(Display, ids.DISPLAY, owner="t") as display:
            display.show("A")
            assert display.read() != "0" * 25
