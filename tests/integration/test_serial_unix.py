"""MicroPython boards on serial ports, driven only through ``port=`` and the generic driver.

The boards are the MicroPython 1.29 unix port behind socat ptys (real firmware nobody
here wrote; ../shared/MICROPYTHON_UNIX.md): several at once, each a device path as a
USB board has.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from actorhw import Runtime
from actorhw.api.handles import Board
from actorhw.api.runtime import BoardSpec
from actorhw.core.errors import DeviceExceptionError, ResultParseError
from actorhw.core.lifecycle import DeviceState
from actorhw.programming import MicroPythonDevice, setup, task
from actorhw.scenario import load_scenario, run_scenario
from tests.integration.serial_boards import UnixBoardFactory

pytestmark = pytest.mark.timeout(60)


def link_info(rt: Runtime, board: str) -> dict[str, object]:
    answer = rt.manager.execute_command("micropython", "link_info", board, timeout=5)
    assert answer["status"] == "success", answer
    result = answer["result"]
    assert isinstance(result, dict)
    return result


def test_three_boards_at_once_by_path(unix_boards: UnixBoardFactory) -> None:
    # Line endings vary: \r\r\n banners and \r\n lines, or \r\n banners and bare \n.
    boards = [unix_boards(onlcr=i != 1) for i in range(3)]
    specs = [BoardSpec("micropython", f"mp{i}", port=str(b.path)) for i, b in enumerate(boards)]
    with Runtime.start(boards=specs, timeout=30) as rt:
        for i in range(3):
            ids = rt.ids(f"mp{i}")
            with rt.lease(Board, ids.BOARD, owner="t") as board:
                board.exec(f"n = {i}")
                assert board.exec("import sys\nprint(sys.platform, n * 10)") == f"linux {i * 10}\n"
        # Each board kept its own state: they never cross.
        for i in range(3):
            with rt.lease(Board, rt.ids(f"mp{i}").BOARD, owner="t") as board:
                assert board.exec("print(n)") == f"{i}\n"
        info = link_info(rt, "mp0")
        assert info["platform"] == "linux"
        assert info["device"] == str(boards[0].path)


def test_long_code_goes_through_raw_paste(unix_boards: UnixBoardFactory) -> None:
    b = unix_boards()
    with Runtime.start(boards=[BoardSpec("micropython", port=str(b.path))]) as rt:
        before = link_info(rt, "micropython")
        assert before["raw_paste"] is True
        assert before["raw_paste_window"] == 128  # the window this firmware offers
        code = "total = 0\n" + "total += 1\n" * 400 + "print(total)"  # 4.4 KB
        with rt.lease(Board, rt.ids("micropython").BOARD, owner="t") as board:
            assert board.exec(code) == "400\n"
        after = link_info(rt, "micropython")
        assert after["raw_paste_sends"] == before["raw_paste_sends"] + 1  # type: ignore[operator]


def test_memory_error_with_a_64k_heap_and_marker_output(unix_boards: UnixBoardFactory) -> None:
    b = unix_boards(heap="64K")
    with Runtime.start(boards=[BoardSpec("micropython", "mp", port=str(b.path))]) as rt:
        with rt.lease(Board, rt.ids("mp").BOARD, owner="t") as board:
            with pytest.raises(DeviceExceptionError) as info:
                board.exec("x = bytearray(100000)")
            assert info.value.exc_name == "MemoryError"  # type: ignore[attr-defined]
            # Output holding the raw REPL's own markers comes back exactly (issue 13.4).
            assert board.exec("print('1\\x04\\x04>'); print('2')") == "1\x04\x04>\n2\n"
            assert board.exec("print('\\x04\\x04>OK')") == "\x04\x04>OK\n"
            with pytest.raises(ResultParseError):
                board.exec("print('\\x04Traceback (most recent call last):')\nraise ValueError")
            assert board.exec("print('still here')") == "still here\n"
        assert rt.board_status("mp").state is DeviceState.CONNECTED
        assert rt.board_status("mp").restarts == 0  # no reset for any of it


class Counter(MicroPythonDevice):
    @setup
    def init(self):  # type: ignore[no-untyped-def]
        global count
        count = 0

    @task
    def bump(self, by: int = 1) -> int:
        global count
        count += by
        return count  # type: ignore[no-any-return]


def test_belay_style_class_on_a_serial_board(unix_boards: UnixBoardFactory) -> None:
    b = unix_boards()
    with (
        Runtime.start(boards=[BoardSpec("micropython", port=str(b.path))]) as rt,
        Counter(rt, rt.ids("micropython").BOARD, owner="lab") as dev,
    ):
        assert dev.bump() == 1
        assert dev.bump(by=41) == 42


def test_scenario_with_a_port(unix_boards: UnixBoardFactory, tmp_path: Path) -> None:
    b = unix_boards()
    path = tmp_path / "serial.toml"
    path.write_text(
        f"""
[scenario]
description = "a board on a serial port"
step_timeout = 5

[[boards]]
board = "micropython"
name = "mp"
port = "{b.path}"

[[steps]]
exec = "print(6 * 7)"
on = "mp.BOARD"
expect = {{ output = "42" }}

[[steps]]
exec = "x = [0] * 100000"
on = "mp.BOARD"
expect = {{ raises = "MemoryError" }}
""",
        encoding="utf-8",
    )
    report = run_scenario(load_scenario(path))
    assert report.passed, report


def test_mpremote_drives_the_same_kind_of_board(unix_boards: UnixBoardFactory) -> None:
    """mpremote (the comparison in bench_serial) works on a unix-port board with
    ``resume`` (its soft reset would end this firmware) and a pty without newline
    translation (it insists on the banner's ``\r\n``; actorhw takes any ending)."""
    import subprocess
    import sys

    b = unix_boards(onlcr=False)
    mpremote = Path(sys.executable).parent / "mpremote"
    done = subprocess.run(
        [str(mpremote), "connect", str(b.path), "resume", "exec", "print(6 * 7)"],
        capture_output=True,
        timeout=30,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == b"42"


def test_docs_example_serial_board(
    unix_boards: UnixBoardFactory,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """docs/examples/serial_board.py, the three lines of docs/boards.md, on a real board."""
    import runpy

    b = unix_boards()
    example = Path(__file__).resolve().parents[2] / "docs" / "examples" / "serial_board.py"
    monkeypatch.setattr("sys.argv", [str(example), str(b.path)])
    runpy.run_path(str(example), run_name="__main__")
    assert capsys.readouterr().out.strip() == "linux 2"


def test_resources_of_a_serial_board_from_a_sampler_defined_once(
    unix_boards: UnixBoardFactory,
) -> None:
    b = unix_boards()
    with Runtime.start(boards=[BoardSpec("micropython", "mp", port=str(b.path))]) as rt:
        ids = rt.ids("mp")
        first = rt.monitor.status(ids.BOARD, timeout=10)
        assert first.memory.total is not None and first.memory.total > 0
        with rt.lease(Board, ids.BOARD, owner="t") as board:
            # The sampler function stays defined on the board between samples.
            assert board.exec("print(_actorhw_res.__name__)") == "_actorhw_res\n"
            board.exec("del _actorhw_res")  # forgotten, as after a soft reset
        second = rt.monitor.status(ids.BOARD, timeout=10)  # defined again, answered
        assert second.cpu.uptime_s is not None and first.cpu.uptime_s is not None
        assert second.cpu.uptime_s >= first.cpu.uptime_s
