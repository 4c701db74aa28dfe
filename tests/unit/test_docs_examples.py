"""Every example under docs/examples runs, and prints what the docs say it prints."""

from __future__ import annotations

import runpy
from pathlib import Path

import pytest

pytestmark = pytest.mark.timeout(60)

ROOT = Path(__file__).parents[2]
ALL_EXAMPLES = sorted((ROOT / "docs" / "examples").glob("*.py"))
#: An example that needs more than this process (a server, QEMU) names, on a line of its
#: own, the test that runs it instead: ``# example-test: tests/integration/test_x.py``.
MARK = "# example-test: "


def elsewhere(path: Path) -> str | None:
    """The test file that runs ``path``, if it is not run here."""
    for line in path.read_text().splitlines():
        if line.startswith(MARK):
            return line[len(MARK) :].strip()
    return None


EXAMPLES = [p for p in ALL_EXAMPLES if elsewhere(p) is None]


@pytest.mark.parametrize("path", EXAMPLES, ids=[p.name for p in EXAMPLES])
def test_example_runs(path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    runpy.run_path(str(path), run_name="__main__")
    out = capsys.readouterr().out
    assert out.strip(), f"{path.name} printed nothing"


def test_quickstart_output(capsys: pytest.CaptureFixture[str]) -> None:
    runpy.run_path(str(EXAMPLES[0].parent / "quickstart.py"), run_name="__main__")
    out = capsys.readouterr().out
    assert "UART0 loopback read: b'hello'" in out
    assert "module-b refused: device_or_resource_busy" in out
    assert "owners_count=2" in out
    assert "LED_GREEN lit: True" in out


@pytest.mark.parametrize(
    "path",
    [p for p in ALL_EXAMPLES if elsewhere(p)],
    ids=[p.name for p in ALL_EXAMPLES if elsewhere(p)],
)
def test_examples_run_elsewhere_are_run_there(path: Path) -> None:
    test_file = ROOT / str(elsewhere(path))
    assert test_file.is_file(), f"{path.name} names {test_file}, which does not exist"
    assert path.name in test_file.read_text(), f"{test_file.name} never mentions {path.name}"


def run_example(name: str, capsys: pytest.CaptureFixture[str]) -> str:
    runpy.run_path(str(ROOT / "docs" / "examples" / name), run_name="__main__")
    return capsys.readouterr().out


def test_first_script_output(capsys: pytest.CaptureFixture[str]) -> None:
    out = run_example("first_script.py", capsys)
    assert "read back: b'hello'" in out
    assert "after the block: owners_count=0" in out


def test_ownership_output(capsys: pytest.CaptureFixture[str]) -> None:
    out = run_example("ownership.py", capsys)
    assert "use before open: operation_not_permitted" in out
    assert "device not opened - call open() first" in out
    assert "open twice: device_already_opened" in out
    assert "stale lease: stale_lease" in out
    assert "second owner: device_or_resource_busy, owners=['module-a'], owners_count=1" in out
    assert "PIN0 SHARED: owners_count=2, ACTIVE" in out
    assert "PIN0 after both left: CONNECTED" in out


def test_boards_custom_output(capsys: pytest.CaptureFixture[str]) -> None:
    out = run_example("boards_custom.py", capsys)
    assert "ids of my-board: ['UART0', 'PIN3']" in out
    assert "PIN3 policy: SINGLE" in out
    assert "my-board UART0 == same70 UART0: False" in out
    assert "no_such_device: 'my-board.UART0' is not a device id" in out


def test_errors_output(capsys: pytest.CaptureFixture[str]) -> None:
    out = run_example("errors.py", capsys)
    assert "busy: held by ['status']" in out
    assert '"code": "device_or_resource_busy"' in out
    assert "wrong_device_kind: same70-xplained.UART0 is a uart device, not led" in out


def test_threads_output(capsys: pytest.CaptureFixture[str]) -> None:
    out = run_example("threads.py", capsys)
    assert "read back: b'from a worker'" in out
    assert "UART0 ACTIVE -> CONNECTED" in out


def test_aio_output(capsys: pytest.CaptureFixture[str]) -> None:
    out = run_example("aio.py", capsys)
    assert "LED_GREEN toggled: lit=True" in out
    assert "event: same70-xplained.LED_GREEN CONNECTED -> ACTIVE (opened by web)" in out
    assert "exec on a simulated board: operation_not_supported" in out


def test_plugins_guide_output(capsys: pytest.CaptureFixture[str]) -> None:
    out = run_example("plugins_guide.py", capsys)
    assert "drivers: can-virtual, microbit-qemu, micropython, sim, weather" in out
    assert "connect: success, connected after scan, initialize, connect" in out
    assert "calibrate: success {'offset': 0.5}" in out
    assert "launch: operation_not_supported: driver 'weather' has no command 'launch'" in out
    assert "#1 weather-station.temperature = 21.6 (data)" in out
    assert "#3 weather-station.temperature = 21.8 (data)" in out
    assert "stop: success, lost: 0" in out
    assert "close: disconnected" in out
