"""Tests that run once per selected board (the ids are the boards' names)."""

import pytest


def test_each_board_is_connected(each_board):
    info = each_board.info()
    assert info.state.name == "ACTIVE"
    assert each_board.name in ("microbit-qemu", "microbit")


@pytest.mark.actorhw_needs("i2c")
def test_skipped_without_i2c(each_board):
    """The micro:bit definitions have no I2C device: this is skipped with the reason."""


def test_leds_of_any_board(actorhw_target):
    ids = actorhw_target.ids
    assert "DISPLAY" in ids.__members__
