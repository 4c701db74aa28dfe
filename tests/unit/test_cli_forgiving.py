"""A CLI that forgives (issue 16): --version, help about the tool, "did you mean",
every problem of every scenario file at once, JSON errors everywhere, logs printed once,
--boards-dir/--drivers-dir on every subcommand, a monitor that fits the terminal, and
step counts that agree between progress, summary and JUnit."""

from __future__ import annotations

import json
import os
import pty
import select
import subprocess
import sys
import time
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
from rich.console import Console

from actorhw.cli.main import main
from actorhw.cli.monitor_view import MonitorView, board_rows

pytestmark = pytest.mark.timeout(60)

ROOT = Path(__file__).resolve().parents[2]
PLUGINS = ROOT / "docs" / "examples" / "plugins"
ACTORHW = [sys.executable, "-c", "from actorhw.cli import main; raise SystemExit(main())"]


def usage_error(capsys: pytest.CaptureFixture[str], argv: list[str]) -> str:
    with pytest.raises(SystemExit) as e:
        main(argv)
    assert e.value.code == 2
    return capsys.readouterr().err


def test_version(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as e:
        main(["--version"])
    assert e.value.code == 0
    assert capsys.readouterr().out.strip() == "actorhw 0.1.0"


def test_top_level_help_describes_the_tool(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["--help"])
    out = capsys.readouterr().out
    assert "drives many hardware boards at once" in out
    assert "main() is" not in out and "``" not in out  # about the tool, not the code
    for name in ("boards", "devices", "exec", "run", "monitor", "bench"):
        assert f"    {name}" in out


def test_did_you_mean_for_subcommands_options_and_boards(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert "did you mean 'monitor'?" in usage_error(capsys, ["monitr", "--board", "x"])
    err = usage_error(capsys, ["devices", "--baord", "same70-xplained"])
    assert "did you mean '--board'" in err
    assert main(["devices", "--board", "same70-xplaind"]) == 1
    assert "did you mean 'same70-xplained'?" in capsys.readouterr().err


def test_every_problem_of_every_file_in_one_run(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    head = '[[boards]]\nboard = "same70-xplained"\n\n'
    one = tmp_path / "one.toml"
    one.write_text(head + '[[steps]]\nopen = "u"\n\n[[steps]]\nwait = "UP"\nboard = "x"\n')
    two = tmp_path / "two.toml"
    two.write_text(head + '[[steps]]\nacquire = "same70-xplained.UART0"\nexpekt = {}\n')
    assert main(["run", str(one), str(two)]) == 1
    err = capsys.readouterr().err
    assert f"{one}:5: key 'steps.0.open'" in err
    assert f"{one}:8: key 'steps.1.wait'" in err or f"{one}:9: key 'steps.1.board'" in err
    assert f"{two}:6: key 'steps.0.expekt': unknown key; did you mean 'expect'?" in err
    assert main(["run", str(one), str(two), "--json"]) == 1
    error = json.loads(capsys.readouterr().out)["error"]
    assert error["code"] == "invalid_scenario_file"
    assert {p["file"] for p in error["problems"]} == {str(one), str(two)}
    assert all(p["line"] and p["key"] for p in error["problems"])


@pytest.mark.parametrize(
    ("argv", "code"),
    [
        (["boards", "--boards-dir", "/nonexistent"], "invalid_board_file"),
        (["devices", "--board", "nope"], "no_such_board"),
        (["exec", "--board", "same70-xplained", "print(1)"], "operation_not_supported"),
        (["run", "/nonexistent.toml"], "invalid_scenario_file"),
        (["monitor", "--board", "nope", "--once"], "no_such_board"),
        (["bench", "--dir", "/nonexistent"], "invalid_argument"),
        (["monitor", "--board", "microbit", "--state", "ACTIV", "--once"], "invalid_argument"),
    ],
)
def test_json_errors_on_every_subcommand(
    capsys: pytest.CaptureFixture[str], argv: list[str], code: str
) -> None:
    assert main([*argv, "--json"]) == 1
    captured = capsys.readouterr()
    error = json.loads(captured.out)["error"]
    assert error["code"] == code and error["message"]
    assert "Traceback" not in captured.err


def test_json_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as e:
        main(["devices", "--json"])
    assert e.value.code == 2
    error = json.loads(capsys.readouterr().out)["error"]
    assert error["code"] == "usage" and "--board" in error["message"]


def test_verbose_prints_each_log_line_once(tmp_path: Path) -> None:
    done = subprocess.run(
        [*ACTORHW, "-v", "devices", "--board", "same70-xplained", "--json"],
        capture_output=True, text=True, timeout=50, check=False, cwd=tmp_path,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    lines = [line for line in done.stderr.splitlines() if "UART0 UNKNOWN -> DISCOVERED" in line]
    assert len(lines) == 1, done.stderr


def test_common_options_after_the_subcommand_and_drivers_dir(
    capsys: pytest.CaptureFixture[str],
) -> None:
    argv = ["devices", "--board", "weather-station", "--json"]
    assert main(argv) == 1  # neither the board file nor its driver is found by default
    capsys.readouterr()
    assert main([*argv, "--boards-dir", str(PLUGINS), "--drivers-dir", str(PLUGINS)]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert rows and all(r["board"] == "weather-station" for r in rows)
    assert main(["--boards-dir", str(PLUGINS), "--drivers-dir", str(PLUGINS), *argv]) == 0


def test_run_counts_agree_between_progress_summary_and_junit(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "multi.toml"
    path.write_text(
        '[[boards]]\nboard = "microbit"\ncount = 3\n\n'
        '[[steps]]\nparallel = "*"\n[[steps.steps]]\nacquire = "${board}.PIN0"\n'
        '[[steps.steps]]\nexpect = { state = "CONNECTED" }\nboard = "${board}"\n'
        '\n[[steps]]\nexpect = { state = "CONNECTED" }\nboard = "microbit-1"\n',
        encoding="utf-8",
    )
    junit = tmp_path / "r.xml"
    assert main(["run", str(path), "--junit", str(junit)]) == 0
    captured = capsys.readouterr()
    assert "7/7" in captured.err  # progress: 3 boards x 2 steps + 1
    assert "│ 7      │ 0      │ 0       │" in captured.out  # summary: passed, failed, skipped
    assert ET.parse(junit).getroot()[0].get("tests") == "7"


# --- the monitor fits the terminal --------------------------------------------------------


def rows(n: int) -> list[dict[str, object]]:
    return [
        {
            "device": f"microbit-qemu-12.DEVICE_{i:03d}", "kind": "gpio",
            "state": "ACTIVE" if i % 2 else "CONNECTED", "owners": ["scenario:nightly", "web"],
            "owners_count": 2, "memory": None, "last_error": "x" * 200 if i == 3 else None,
        }
        for i in range(n)
    ]  # fmt: skip


class Status:
    def __init__(self, board: str) -> None:
        self.board = board
        self.state = type("S", (), {"name": "CONNECTED"})()
        self.quarantined = False
        self.restarts = 0


def test_monitor_view_fits_80_columns_and_pages() -> None:
    devices = rows(50)
    view = MonitorView()
    view.update(board_rows([Status("microbit-qemu-12")], devices, {}), devices)
    console = Console(width=80, height=24, record=True, color_system=None)
    console.print(view.render(80, 24))
    text = console.export_text()
    lines = text.splitlines()
    assert max(len(line) for line in lines) <= 80
    assert len(lines) <= 24
    assert "2: scenario:nightly, web" in text  # owners readable
    assert "25 CONNECTED, 25 ACTIVE" in text  # the board's summary row
    assert "devices 1-" in text and "of 50" in text and "q quits" in text
    first = view.visible(24)
    view.key("page_down", 24)
    assert view.offset == first
    view.key("end", 24)
    assert view.offset == 50 - first
    view.key("home", 24)
    assert view.offset == 0


def test_monitor_state_filter(capsys: pytest.CaptureFixture[str]) -> None:
    argv = ["monitor", "--board", "microbit", "--once", "--json", "--state", "active"]
    assert main(argv) == 0
    line = json.loads(capsys.readouterr().out)
    assert line["devices"] == []  # nothing is ACTIVE on an idle board
    board = line["boards"][0]
    assert board["board"] == "microbit" and board["devices"] > 20
    assert board["states"] == {"CONNECTED": board["devices"]}


def test_monitor_on_a_terminal_quits_with_q(tmp_path: Path) -> None:
    pid, fd = pty.fork()
    if pid == 0:  # the child: the monitor on a pty of 80x24
        os.environ.update(COLUMNS="80", LINES="24", TERM="xterm")
        os.chdir(tmp_path)
        os.execv(sys.executable, [*ACTORHW, "monitor", "--board", "microbit", "--interval", "0.2"])
    seen = b""
    deadline = time.monotonic() + 40
    exited = False
    try:
        while b"q quits" not in seen:
            assert time.monotonic() < deadline, seen[-500:]
            if select.select([fd], [], [], 0.5)[0]:
                seen += os.read(fd, 65536)
        os.write(fd, b"q")
        while True:
            assert time.monotonic() < deadline, "q did not quit"
            if select.select([fd], [], [], 0.5)[0]:
                try:
                    if not os.read(fd, 65536):
                        break
                except OSError:  # the child closed the pty
                    break
        _, status = os.waitpid(pid, 0)
        exited = True
        assert os.waitstatus_to_exitcode(status) == 0
    finally:
        if not exited:
            os.kill(pid, 9)
            os.waitpid(pid, 0)
        os.close(fd)
