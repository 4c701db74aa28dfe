"""Bringing several boards up: every failing board is reported by name, not the first."""

from __future__ import annotations

import pickle
import textwrap
from pathlib import Path

import pytest

from actorhw import Runtime
from actorhw.core.errors import BoardsNotConnectedError, DeviceUnavailableError, LinkLostError
from actorhw.core.lifecycle import DeviceState

WAIT = 10.0

DRIVERS = '''
from actorhw.core.errors import LinkLostError
from actors.sim.drv_sim import SimBoard

class AbsentBoard(SimBoard):
    """Never found by scan."""

    name = "absent"

    def scan(self, *, timeout):
        return False

class CutBoard(SimBoard):
    """Found, but its link is cut at connect."""

    name = "cut"

    def connect(self, *, timeout):
        raise LinkLostError("the cable is cut", board=self.board)
'''


@pytest.fixture
def dirs(tmp_path: Path) -> tuple[Path, Path]:
    (tmp_path / "drv_failing.py").write_text(textwrap.dedent(DRIVERS))
    boards = tmp_path / "boards"
    boards.mkdir()
    for name in ("absent", "cut"):
        (boards / f"{name}.toml").write_text(
            f'[board]\nname = "{name}"\ntitle = "a board that does not come up"\n'
            f'enum = "{name.title()}"\ndriver = "{name}"\n[devices]\nLED0 = {{ kind = "led" }}\n'
        )
    return boards, tmp_path


def test_every_failing_board_is_named_with_its_own_error(dirs: tuple[Path, Path]) -> None:
    boards, drivers = dirs
    with Runtime.start(boards_dirs=[boards], drivers_dirs=[drivers]) as rt:
        with pytest.raises(BoardsNotConnectedError) as info:
            rt.add_boards(["absent", "microbit", "cut", "absent"], timeout=WAIT)
        error = info.value
        assert error.code == "boards_not_connected"
        assert list(error.failed) == ["absent", "cut", "absent-2"]
        assert isinstance(error.sub_errors["absent"], DeviceUnavailableError)
        assert isinstance(error.sub_errors["absent-2"], DeviceUnavailableError)
        assert isinstance(error.sub_errors["cut"], LinkLostError)
        for name in ("absent:", "cut:", "absent-2:"):
            assert name in str(error)
        assert "3 boards did not come up" in str(error)
        assert error.to_dict()["failed"] == ["absent", "cut", "absent-2"]
        assert error.errors["cut"]["code"] == "link_lost"
        copy = pickle.loads(pickle.dumps(error))
        assert list(copy.failed) == list(error.failed) and str(copy) == str(error)
        # the board that came up stays up
        assert rt.board_status("microbit").state is DeviceState.CONNECTED


def test_one_failing_board_raises_its_own_error(dirs: tuple[Path, Path]) -> None:
    boards, drivers = dirs
    with Runtime.start(boards_dirs=[boards], drivers_dirs=[drivers]) as rt:
        with pytest.raises(LinkLostError, match="the cable is cut"):
            rt.add_boards(["microbit", "cut"], timeout=WAIT)
        assert rt.board_status("microbit").state is DeviceState.CONNECTED


def test_start_reports_every_failing_board_and_stops(dirs: tuple[Path, Path]) -> None:
    boards, drivers = dirs
    with pytest.raises(BoardsNotConnectedError) as info:
        Runtime.start(["cut", "absent"], boards_dirs=[boards], drivers_dirs=[drivers], timeout=WAIT)
    assert list(info.value.failed) == ["cut", "absent"]
