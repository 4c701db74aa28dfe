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


def test_machine_reset_of_the_microbit_through_the_generic_driver(microbit: BootedMicrobit) -> None:
    """``reset = "machine"`` on real firmware: ``machine.reset()`` reboots the micro:bit
    (QEMU resets the chip; the pty, like a UART adapter, stays), the driver sees its
    banner instead of an answer, and reconnects to a board whose state is gone."""
    from actorhw.drivers.definitions import BoardCatalog
    from actorhw.drivers.plugins import DriverCatalog

    pty = microbit.board.pty
    microbit.link.close()
    driver_class = DriverCatalog.discover(entry_points=False).get("micropython")
    driver = driver_class(
        board="mb",
        definition=BoardCatalog.discover().get("microbit-usb"),
        options={"port": pty, "reset": "machine"},
    )
    try:
        assert driver.scan(timeout=5)
        driver.initialize(timeout=5)
        driver.connect(timeout=20)
        driver.run("x = 1", what="set").wait(timeout=5)
        assert driver.query("'x' in globals()", what="before").wait(timeout=5) is True
        driver.reset(timeout=20)
        assert driver.query("'x' in globals()", what="after").wait(timeout=5) is False
        assert driver.query("1 + 1", what="alive").wait(timeout=5) == 2
    finally:
        driver.close()
