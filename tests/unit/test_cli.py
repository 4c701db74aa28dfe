"""The actorhw command: listings, JSON, and errors as exit codes."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import pytest

from actorhw.cli import run as console
from actorhw.cli.main import main
from actorhw.scenario import StepEvent

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


# --- run, monitor, bench ------------------------------------------------------------------

SCENARIOS = Path(__file__).resolve().parents[2] / "scenarios"


@pytest.mark.parametrize("command", ["boards", "devices", "exec", "run", "monitor", "bench"])
def test_every_subcommand_has_help_with_examples(
    command: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as e:
        main([command, "--help"])
    assert e.value.code == 0
    assert "example" in capsys.readouterr().out


def test_run_quickstart_json_and_junit(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    junit = tmp_path / "report.xml"
    assert main(["run", str(SCENARIOS / "quickstart.toml"), "--json", "--junit", str(junit)]) == 0
    (report,) = json.loads(capsys.readouterr().out)
    assert report["passed"] is True and report["name"] == "quickstart"
    assert all(step["status"] == "passed" for step in report["steps"])
    suite = ET.parse(junit).getroot()[0]
    assert suite.get("failures") == "0" and int(suite.get("tests") or 0) >= len(report["steps"])


def test_run_with_progress_prints_a_summary(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["run", str(SCENARIOS / "quickstart.toml")]) == 0
    captured = capsys.readouterr()
    assert "quickstart" in captured.out and "PASS" in captured.out
    assert "teardown" in captured.err  # the live progress display


def failing(tmp_path: Path) -> Path:
    path = tmp_path / "failing.toml"
    path.write_text(
        '[[boards]]\nboard = "same70-xplained"\n\n[[steps]]\nname = "two owners?"\n'
        'acquire = "same70-xplained.UART0"\nexpect = { owners_count = 2 }\n',
        encoding="utf-8",
    )
    return path


def test_run_exit_code_is_1_when_a_step_fails(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    quickstart = str(SCENARIOS / "quickstart.toml")
    assert main(["run", quickstart, str(failing(tmp_path)), "--no-progress"]) == 1
    out = capsys.readouterr().out
    assert "FAIL" in out and "PASS" in out
    assert "expected same70-xplained.UART0 owners_count 2, got 1" in out.replace("\n", "")


def test_run_checks_every_file_before_running_any(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text('[[boards]]\nboard = "same70-xplained"\n\n[[steps]]\nopen = "u"\n')
    ran: list[object] = []
    monkeypatch.setattr(console, "run_scenario", lambda *a, **k: ran.append(a))
    assert main(["run", str(SCENARIOS / "quickstart.toml"), str(bad)]) == 1
    err = capsys.readouterr().err
    assert err.startswith(f"actorhw: error: [invalid_scenario_file] {bad}:5: key 'steps.0.open'")
    assert not ran


def test_run_ctrl_c_releases_and_exits_130(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    real = console.run_scenario
    seen: list[StepEvent] = []

    def interrupted(scenario: Any, **kwargs: Any) -> Any:
        def on_event(event: StepEvent) -> None:
            seen.append(event)
            if event.index == 2 and event.status == "running":
                raise KeyboardInterrupt

        return real(scenario, **{**kwargs, "on_event": on_event})

    junit = tmp_path / "report.xml"
    quickstart = str(SCENARIOS / "quickstart.toml")
    argv = ["run", quickstart, quickstart, "--no-progress", "--junit", str(junit)]
    calls = iter([real, interrupted])  # the second scenario gets Ctrl-C at its third step
    monkeypatch.setattr(console, "run_scenario", lambda *a, **k: next(calls)(*a, **k))
    assert main(argv) == 130
    captured = capsys.readouterr()
    assert "interrupted" in captured.err
    assert "PASS" in captured.out  # the summary of the scenario that finished
    finished, stopped = ET.parse(junit).getroot()  # both JUnit suites
    assert finished.get("errors") == "0" and stopped.get("errors") == "1"
    assert stopped.find("testcase[@name='scenario']/error").get("message") == "interrupted"
    assert seen[-1].status == "teardown"  # the no_leaks fixture checks the runtime stopped


def test_monitor_once_json(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["monitor", "--board", "same70-xplained", "--once", "--json"]) == 0
    (line,) = capsys.readouterr().out.splitlines()
    rows = {r["device"]: r for r in json.loads(line)["devices"]}
    assert rows["same70-xplained.UART0"]["state"] == "CONNECTED"
    assert set(rows["same70-xplained.UART0"]) >= {"owners", "memory", "last_error"}


def test_monitor_count_prints_tables(capsys: pytest.CaptureFixture[str]) -> None:
    argv = ["monitor", "--board", "microbit", "--count", "2", "--interval", "0"]
    assert main(argv) == 0
    out = capsys.readouterr().out
    assert out.count("boards at") == 2 and "PIN0" in out and "CONNECTED" in out


def test_bench_runs_scripts_and_prints_their_lines(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "bench_fake.py").write_text(
        "import sys\nquick = '--quick' in sys.argv\n"
        "print(f'a. fake op  1.0 us vs 2.0 us  ratio 0.50  target <= 1.0  PASS quick={quick}')\n"
    )
    assert main(["bench", "--dir", str(tmp_path), "--quick", "--json"]) == 0
    (result,) = json.loads(capsys.readouterr().out)
    assert result["script"] == "bench_fake.py" and result["pass"] == 1
    assert result["lines"] == [
        "a. fake op  1.0 us vs 2.0 us  ratio 0.50  target <= 1.0  PASS quick=True"
    ]
    assert main(["bench", "--dir", str(tmp_path)]) == 0
    assert "quick=False" in capsys.readouterr().out


def test_bench_outside_a_checkout_is_a_clear_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["bench", "--dir", str(tmp_path)]) == 1
    err = capsys.readouterr().err
    assert "actorhw: error: [invalid_argument] no benchmarks at" in err
    assert "source checkout" in err.replace("\n", " ")
