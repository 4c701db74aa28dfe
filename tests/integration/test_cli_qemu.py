"""The command line against the micro:bit firmware in QEMU: a board exception shows the
board's traceback with its line numbers, as mpremote does (issue 16); a scenario step
that raised shows it in the summary too."""

from __future__ import annotations

from pathlib import Path

import pytest

from actorhw.cli.main import main
from actorhw.links import qemu_available

pytestmark = [pytest.mark.qemu, pytest.mark.timeout(150)]

CODE = "def f():\n    return 1/0\nf()\n"


@pytest.fixture(autouse=True)
def _qemu() -> None:
    reason = qemu_available()
    if reason is not None:
        pytest.fail(f"QEMU micro:bit is required: {reason}", pytrace=False)


def test_exec_shows_the_boards_traceback(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["exec", "--board", "microbit-qemu", CODE]) == 4
    err = capsys.readouterr().err
    assert 'File "<stdin>", line 3, in <module>' in err
    assert 'File "<stdin>", line 2, in f' in err
    assert "ZeroDivisionError" in err
    assert err.rstrip().splitlines()[-1].startswith("actorhw: error: [device_exception]")
    assert main(["exec", "--board", "microbit-qemu", CODE, "--json"]) == 4
    assert '"traceback_text"' in capsys.readouterr().out  # JSON keeps it as data


def test_run_summary_shows_the_boards_traceback(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "raises.toml"
    path.write_text(
        '[[boards]]\nboard = "microbit-qemu"\n\n[[steps]]\nname = "divide"\n'
        f'exec = """{CODE}"""\non = "microbit-qemu.BOARD"\n',
        encoding="utf-8",
    )
    assert main(["run", str(path), "--no-progress"]) == 1
    out = capsys.readouterr().out
    assert "FAILED" in out and "ZeroDivisionError" in out
    assert 'File "<stdin>", line 2, in f' in out
