"""Tests that run once per selected board (the ids are the boards' names)."""

import pytest


def test_each_board_is_active(each_board):
    assert each_board.info().state.name == "ACTIVE"


@pytest.mark.actorhw_needs("i2c")
def test_skipped_without_i2c(each_board):
    """No board of this project has an I2C device: skipped, with the reason."""


def test_any_board_has_ids(actorhw_target):
    assert "BOARD" in actorhw_target.ids.__members__
