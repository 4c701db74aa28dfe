"""Reset kinds the unix-port board cannot do fail clearly: nothing pretends to reset.

The MicroPython unix port has no ``machine.reset`` and its pty has no DTR/RTS lines.
A reset that did not happen must say so (typed, naming the board) and leave the board
as it was, connected and in step; never close the link and reconnect as if the board
had rebooted.  (``machine.reset()`` that works is tested on the QEMU micro:bit,
tests/integration/test_serial_microbit.py; a DTR/RTS pulse needs a USB-serial
adapter with modem lines, which no test here has: docs/boards.md says so.)
"""

from __future__ import annotations

from typing import Any

import pytest

from actorhw.core.errors import DeviceExceptionError, UnsupportedOperationError
from actorhw.drivers.definitions import BoardCatalog
from actorhw.drivers.plugins import DriverCatalog
from actorhw.links import RawReplLink
from tests.integration.serial_boards import UnixBoardFactory

pytestmark = pytest.mark.timeout(60)


def _driver(path: str, reset: str) -> Any:
    driver_class = DriverCatalog.discover(entry_points=False).get("micropython")
    driver = driver_class(
        board="mp",
        definition=BoardCatalog.discover().get("micropython"),
        options={"port": path, "reset": reset},
    )
    driver.scan(timeout=5)
    driver.initialize(timeout=5)
    driver.connect(timeout=10)
    driver.run("x = 1", what="set").wait(timeout=5)
    return driver


def test_machine_reset_without_machine_reset_is_an_error_not_a_pretend_reset(
    unix_boards: UnixBoardFactory,
) -> None:
    b = unix_boards()
    driver = _driver(str(b.path), "machine")
    first_pid = b.pid
    try:
        with pytest.raises(DeviceExceptionError) as info:
            driver.reset(timeout=10)
        assert info.value.exc_name == "AttributeError"  # type: ignore[attr-defined]
        assert "did not reset" in str(info.value) and "mp" in str(info.value)
        # The board is as it was, and the same link still drives it.
        assert b.pid == first_pid
        assert driver.query("x", what="kept").wait(timeout=5) == 1
    finally:
        driver.close()


def test_the_link_says_a_reset_did_not_happen_and_stays_in_step(
    unix_boards: UnixBoardFactory,
) -> None:
    b = unix_boards()
    with RawReplLink.open(str(b.path), timeout=10, name="mp") as link:
        link.exec("y = 2", timeout=5)
        with pytest.raises(DeviceExceptionError) as info:
            link.send_reset("print('not now')", timeout=5)  # returns: no reset
        assert info.value.exc_name == "NotReset"  # type: ignore[attr-defined]
        assert info.value.stdout.strip() == "not now"  # type: ignore[attr-defined]
        assert not link.closed
        assert link.exec_checked("print(y)", timeout=5) == "2\n"


def test_dtr_rts_reset_on_a_pty_is_unsupported_and_changes_nothing(
    unix_boards: UnixBoardFactory,
) -> None:
    b = unix_boards()
    driver = _driver(str(b.path), "dtr_rts")
    try:
        with pytest.raises(UnsupportedOperationError) as info:
            driver.reset(timeout=10)
        assert "no DTR/RTS lines" in str(info.value)
        assert driver.query("x", what="kept").wait(timeout=5) == 1
    finally:
        driver.close()
