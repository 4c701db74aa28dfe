"""The pytest plugin on the real micro:bit firmware in QEMU, alone and under pytest-xdist.

Each project runs in a pytest subprocess; the example project outside the tree
(examples/hil-project) runs from the built wheel in tests/integration/test_wheel.py.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from actorhw.links import qemu_available
from tests.plugin_runs import run_pytest, write_project

pytestmark = [pytest.mark.qemu, pytest.mark.timeout(240)]


@pytest.fixture(autouse=True)
def _require_qemu() -> None:
    reason = qemu_available()
    if reason is not None:
        pytest.fail(f"QEMU micro:bit is required for this test: {reason}", pytrace=False)


def test_a_failed_test_reports_its_board_transcript(tmp_path: Path) -> None:
    write_project(tmp_path, {"test_q.py": """
        def test_divides(board):
            board.exec("x = 5")
            assert board.exec("print(x)").strip() == "5"
            board.exec("def f(a):\\n    return a / 0\\nf(x)")
    """})  # fmt: skip
    run = run_pytest(tmp_path, "--actorhw-board", "microbit-qemu")
    assert run.outcomes == {"test_divides": "failed"}, run
    assert "DeviceExceptionError" in run.messages["test_divides"]
    section = run.stdout.split("actorhw transcript: microbit-qemu", 1)[1]
    lines = [line.strip() for line in section.splitlines()]
    expected = [
        "exec   >>> x = 5",
        "exec   >>> print(x)",
        "output 5",
        "exec   >>> def f(a):",
        "...     return a / 0",
        "... f(x)",
        "error  !! Traceback (most recent call last):",
    ]
    found = [next(i for i, line in enumerate(lines) if line.endswith(e)) for e in expected]
    assert found == sorted(found), section
    assert "ZeroDivisionError" in section
    assert "[BOARD] CONNECTED -> ACTIVE" in section


HOLD_PROJECT = {
    "test_hold.py": """
        import json, os, time
        import pytest

        def note(board, what):
            line = {"worker": os.environ.get("PYTEST_XDIST_WORKER"), "board": board.name,
                    "what": what, "at": time.time()}
            with open(os.environ.get("HOLD_LOG", "hold.log"), "a") as f:
                f.write(json.dumps(line) + "\\n")

        @pytest.mark.parametrize("i", range(6))
        def test_hold(board, i):
            note(board, "start")
            board.exec("x = %d" % i)
            assert board.exec("print(x)").strip() == str(i)  # nobody else wrote x
            note(board, "end")
    """,
}


def test_xdist_workers_share_one_board_one_test_at_a_time(tmp_path: Path) -> None:
    write_project(tmp_path, HOLD_PROJECT)
    run = run_pytest(tmp_path, "-n", "2", "--actorhw-board", "microbit-qemu")
    assert run.returncode == 0, run
    assert len(run.outcomes) == 6 and set(run.outcomes.values()) == {"passed"}, run
    notes = [json.loads(line) for line in (tmp_path / "hold.log").read_text().splitlines()]
    assert {n["worker"] for n in notes} == {"gw0", "gw1"}, notes  # both got the board
    ordered = sorted(notes, key=lambda n: n["at"])
    # Never two tests on the board at once: starts and ends alternate.
    assert [n["what"] for n in ordered] == ["start", "end"] * 6, ordered
    for start, end in zip(ordered[::2], ordered[1::2], strict=True):
        assert start["worker"] == end["worker"], ordered


def test_xdist_workers_take_distinct_boards(tmp_path: Path) -> None:
    write_project(tmp_path, HOLD_PROJECT)
    run = run_pytest(
        tmp_path, "-n", "2", "--actorhw-board", "microbit-qemu",
        "--actorhw-board", "microbit-qemu",
    )  # fmt: skip
    assert run.returncode == 0, run
    notes = [json.loads(line) for line in (tmp_path / "hold.log").read_text().splitlines()]
    by_board: dict[str, list[dict[str, object]]] = {}
    for n in sorted(notes, key=lambda n: n["at"]):
        by_board.setdefault(str(n["board"]), []).append(n)
    assert set(by_board) <= {"microbit-qemu", "microbit-qemu-2"}, by_board
    for board_notes in by_board.values():  # each board: one test at a time
        assert [n["what"] for n in board_notes] == ["start", "end"] * (len(board_notes) // 2)
