"""The actorhw command: listings, JSON, and errors as exit codes."""

from __future__ import annotations

import json

import pytest

from actorhw.cli import main

pytestmark = pytest.mark.timeout(30)


def test_boards_json(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["boards", "--json"]) == 0
    rows = {r["name"]: r for r in json.loads(capsys.readouterr().out)}
    assert rows["same70-xplained"]["devices"] == 14
    assert rows["microbit-qemu"]["driver"] == "microbit-qemu"


def test_boards_table(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["boards"]) == 0
    assert "same70-xplained" in capsys.readouterr().out


def test_devices_json(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["devices", "--board", "same70-xplained", "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    uart0 = next(r for r in rows if r["id"] == "UART0")
    assert uart0 == {
        "id": "UART0", "board": "same70-xplained", "kind": "uart", "state": "CONNECTED",
        "policy": "SINGLE", "owners": [], "owners_count": 0, "open_count": 0,
        "generation": 0, "last_error": None,
    }  # fmt: skip
    assert len(rows) == 14


def test_devices_table(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["devices", "--board", "stm32f4-discovery"]) == 0
    out = capsys.readouterr().out
    assert "USART1" in out and "SHARED" in out


def test_unknown_board_is_exit_1_with_clear_error(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["devices", "--board", "nope"]) == 1
    err = capsys.readouterr().err
    assert err.startswith("actorhw: error: [no_such_board] no board named 'nope'")
    assert "Traceback" not in err


def test_debug_shows_traceback(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--debug", "devices", "--board", "nope"]) == 1
    assert "Traceback" in capsys.readouterr().err


def test_exec_on_simulated_board_is_a_clear_error(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["exec", "--board", "microbit", "print(1)"]) == 1
    assert "does not run code" in capsys.readouterr().err


def test_usage_error_is_exit_2() -> None:
    with pytest.raises(SystemExit) as e:
        main(["devices"])
    assert e.value.code == 2
