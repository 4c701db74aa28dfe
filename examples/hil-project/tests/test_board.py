"""Tests that need a board that runs code: the QEMU micro:bit, a MicroPython board on a
serial port (``--actorhw-board micropython=/dev/ttyACM0``)."""

import pytest
from hil_counter import Counter


@pytest.mark.actorhw_board("microbit-qemu*")
def test_board_runs_code(board):
    assert board.exec("print(6 * 7)").strip() == "42"


@pytest.mark.actorhw_board("microbit-qemu*", "micropython*")
def test_counter_on_each_board(each_board, actorhw_device):
    counter = actorhw_device(Counter)
    assert counter.bump() == 1
    assert counter.bump(by=4) == 5
    assert counter.value() == 5


@pytest.mark.actorhw_needs("display", "button_a")
def test_display_shows_text(actorhw_target):
    from actorhw import Display

    ids = actorhw_target.ids
    with actorhw_target.runtime.lease(Display, ids.DISPLAY, owner="display") as display:
        display.show("Hi")
