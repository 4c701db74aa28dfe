"""Hostile input to the command line (issue 13, items 7, 10 and 11): SIGTERM stops
cleanly, bad numbers and files get a typed error naming what is wrong, never a
traceback, a hang, or a value silently accepted."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from actorhw.cli.main import main

pytestmark = pytest.mark.timeout(60)

BOARD = '[[boards]]\nboard = "same70-xplained"\n\n'
ACQUIRE = '[[steps]]\nacquire = "same70-xplained.UART0"\nas = "u"\n'


def scenario(tmp_path: Path, text: str, name: str = "case.toml") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def error_of(capsys: pytest.CaptureFixture[str], argv: list[str], code: int = 1) -> str:
    assert main(argv) == code
    err = capsys.readouterr().err
    assert "Traceback" not in err
    return err.replace("\n", " ")


# --- item 7: SIGTERM is Ctrl-C ------------------------------------------------------------

ACTORHW = [sys.executable, "-c", "from actorhw.cli import main; raise SystemExit(main())"]


def start(argv: list[str], cwd: Path) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [*ACTORHW, *argv], cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )


def wait_for_line(proc: subprocess.Popen[str], stream: str, needle: str) -> None:
    """Read ``proc``'s stream until a line holds ``needle`` (the test's timeout bounds it)."""
    pipe = proc.stdout if stream == "out" else proc.stderr
    assert pipe is not None
    for line in pipe:
        if needle in line:
            return
    raise AssertionError(f"{needle!r} never came; exit {proc.wait(5)}")


def test_sigterm_during_run_tears_down_and_writes_the_reports(tmp_path: Path) -> None:
    slow = scenario(
        tmp_path,
        BOARD + ACQUIRE + '\n[[steps]]\nopen = "u"\n'
        '\n[[steps]]\nname = "never"\nwait = "ERROR"\non = "u"\ntimeout = 50\n',
    )
    proc = start(["-v", "run", str(slow), "--json", "--junit", "report.xml"], tmp_path)
    try:
        wait_for_line(proc, "err", "CONNECTED -> ACTIVE")  # the open step ran
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=30)
    finally:
        proc.kill()
    assert proc.returncode == 143, err
    assert "terminated (SIGTERM)" in err and "Traceback" not in err
    assert "ACTIVE -> CONNECTED (closed by its last user)" in err  # the teardown ran
    (report,) = json.loads(out)
    assert report["interrupted"] is True
    assert report["steps"][0]["status"] == "passed"
    suite = ET.parse(tmp_path / "report.xml").getroot()[0]
    assert suite.get("errors") == "1"  # the interrupted scenario, reported after teardown


def test_sigterm_during_monitor_exits_143(tmp_path: Path) -> None:
    proc = start(["monitor", "--board", "microbit", "--json", "--interval", "0.2"], tmp_path)
    try:
        wait_for_line(proc, "out", '"devices"')
        proc.send_signal(signal.SIGTERM)
        _out, err = proc.communicate(timeout=30)
    finally:
        proc.kill()
    assert proc.returncode == 143, err
    assert "terminated (SIGTERM)" in err and "Traceback" not in err


# --- item 10 and 11: numbers -------------------------------------------------------------


@pytest.mark.parametrize("value", ["1e308", "inf", "nan", "2e70", "-1", "0"])
@pytest.mark.parametrize("key", ["step_timeout", "bringup_timeout"])
def test_scenario_timeouts_out_of_range_are_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], key: str, value: str
) -> None:
    path = scenario(tmp_path, f"[scenario]\n{key} = {value}\n\n" + BOARD + ACQUIRE)
    err = error_of(capsys, ["run", str(path), "--no-progress"])
    assert f"[invalid_scenario_file] {path}:2: key 'scenario.{key}'" in err
    assert "a positive number of seconds, at most 86400" in err


@pytest.mark.parametrize("value", ["-5", "nan", "1e308", "inf", "0", "soon"])
def test_cli_timeouts_out_of_range_are_usage_errors(
    capsys: pytest.CaptureFixture[str], value: str
) -> None:
    for argv in (
        ["devices", "--board", "same70-xplained", f"--timeout={value}"],
        ["exec", "--board", "microbit", f"--exec-timeout={value}", "print(1)"],
        ["monitor", "--board", "microbit", "--once", f"--timeout={value}"],
    ):
        with pytest.raises(SystemExit) as e:
            main(argv)
        assert e.value.code == 2
        err = capsys.readouterr().err
        assert "seconds" in err and "Traceback" not in err


@pytest.mark.parametrize("value", ["-1", "nan", "inf"])
def test_monitor_interval_out_of_range_is_a_usage_error(
    capsys: pytest.CaptureFixture[str], value: str
) -> None:
    with pytest.raises(SystemExit) as e:
        main(["monitor", "--board", "microbit", "--count", "2", f"--interval={value}"])
    assert e.value.code == 2
    assert "argument --interval" in capsys.readouterr().err


def test_exec_on_a_board_without_board_device(capsys: pytest.CaptureFixture[str]) -> None:
    err = error_of(capsys, ["exec", "--board", "same70-xplained", "print(1)"])
    assert "[operation_not_supported] board same70-xplained has no BOARD device" in err


# --- item 10 and 11: files ---------------------------------------------------------------


def test_deep_nesting_is_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "deep.toml"
    path.write_text("x = " + "[" * 5000 + "]" * 5000 + "\n", encoding="utf-8")
    err = error_of(capsys, ["run", str(path)])
    assert f"[invalid_scenario_file] {path}" in err and "nested more than 64 deep" in err
    path.write_text("x = " + "[" * 100 + "]" * 100 + "\n", encoding="utf-8")  # parses
    err = error_of(capsys, ["run", str(path)])
    assert "nested more than 64 deep" in err


def test_utf16_and_latin1_files_are_named(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    utf16 = tmp_path / "utf16.toml"
    utf16.write_bytes((BOARD + ACQUIRE).encode("utf-16"))
    err = error_of(capsys, ["run", str(utf16)])
    assert f"[invalid_scenario_file] {utf16}:1: is UTF-16 text; save it as UTF-8" in err
    latin = tmp_path / "latin.toml"
    latin.write_bytes(b'[scenario]\nname = "caf\xe9"\n' + (BOARD + ACQUIRE).encode())
    err = error_of(capsys, ["run", str(latin)])
    assert f"{latin}:2: not UTF-8 text (byte 0xe9 at offset 22)" in err
    boards = tmp_path / "boards"
    boards.mkdir()
    (boards / "b.toml").write_bytes(b'[board]\nname = "b\xff"\n')
    err = error_of(capsys, ["--boards-dir", str(boards), "boards"])
    assert f"[invalid_board_file] {boards / 'b.toml'}:2: not UTF-8 text" in err


def test_a_file_over_the_size_limit_is_refused_at_once(capsys: pytest.CaptureFixture[str]) -> None:
    began = time.monotonic()
    err = error_of(capsys, ["run", "/dev/zero"])
    assert "/dev/zero: larger than the 4 MiB limit of a scenario file" in err
    assert time.monotonic() - began < 10


def test_boards_dir_that_does_not_exist(capsys: pytest.CaptureFixture[str]) -> None:
    for argv in (["boards"], ["devices", "--board", "microbit"]):
        err = error_of(capsys, ["--boards-dir", "/nonexistent", *argv])
        assert "[invalid_board_file] /nonexistent: does not exist" in err


def test_run_uses_boards_dir(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    boards = tmp_path / "boards"
    boards.mkdir()
    (boards / "mine.toml").write_text(
        '[board]\nname = "mine"\nenum = "Mine"\ndriver = "sim"\n\n[devices]\n'
        'LED = { kind = "led" }\n',
        encoding="utf-8",
    )
    path = scenario(tmp_path, '[[boards]]\nboard = "mine"\n\n[[steps]]\nacquire = "mine.LED"\n')
    assert main(["--boards-dir", str(boards), "run", str(path), "--no-progress"]) == 0


def board_file(tmp_path: Path, body: str) -> Path:
    folder = tmp_path / "boards"
    folder.mkdir(exist_ok=True)
    (folder / "b.toml").write_text(body, encoding="utf-8")
    return folder


def test_board_that_extends_itself(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    folder = board_file(
        tmp_path,
        '[board]\nname = "selfish"\nenum = "S"\ndriver = "sim"\nextends = "selfish"\n\n'
        '[devices]\nLED = { kind = "led" }\n',
    )
    err = error_of(capsys, ["--boards-dir", str(folder), "boards"])
    assert "b.toml:5: key 'board.extends': board 'selfish' cannot extend itself" in err


def test_pin_out_of_range(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    folder = board_file(
        tmp_path,
        '[board]\nname = "bigpin"\nenum = "B"\ndriver = "sim"\n\n[devices]\n'
        f'PIN0 = {{ kind = "gpio", pin = {10**20} }}\n',
    )
    err = error_of(capsys, ["--boards-dir", str(folder), "boards"])
    assert f"b.toml:7: key 'devices.PIN0.pin': {10**20} is out of range" in err


def test_unknown_driver_names_file_and_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    folder = board_file(
        tmp_path,
        '[board]\nname = "nodrv"\nenum = "N"\ndriver = "nope"\n\n[devices]\n'
        'LED = { kind = "led" }\n',
    )
    err = error_of(capsys, ["--boards-dir", str(folder), "devices", "--board", "nodrv"])
    where = f"{folder / 'b.toml'}:4: key 'board.driver'"
    assert f"[driver_error] {where}: no driver named 'nope'" in err
