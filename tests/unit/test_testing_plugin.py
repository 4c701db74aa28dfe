"""The pytest plugin on simulated boards: options, markers, fixtures, transcripts, locks.

Each project runs in a pytest subprocess (tests/plugin_runs.py); the QEMU and xdist
runs are in tests/integration/test_pytest_plugin_qemu.py.
"""

from __future__ import annotations

import concurrent.futures
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import attrs
import pytest

from actorhw.api.runtime import BoardSpec, Runtime
from actorhw.core.lifecycle import DeviceState
from actorhw.core.messages import BoardEvent, StateChanged
from actorhw.drivers.definitions import BoardCatalog
from actorhw.testing.locks import BoardLock
from actorhw.testing.options import Settings, check_cluster_support, select_boards
from actorhw.testing.pool import BoardPool
from actorhw.testing.transcript import Transcript
from tests.plugin_runs import run_pytest, write_project

pytestmark = pytest.mark.timeout(120)


# --- options --------------------------------------------------------------------------------


def test_board_arguments_name_instances_and_refuse_bad_ones() -> None:
    catalog = BoardCatalog.discover()
    boards = select_boards(["microbit", "microbit", "same70-xplained"], catalog)
    assert [b.name for b in boards] == ["microbit", "microbit-2", "same70-xplained"]
    assert boards[1].spec() == BoardSpec("microbit", name="microbit-2")
    assert boards[0].has_board_device and not boards[2].has_board_device
    assert boards[0].missing(["display", "BUTTON_A", "i2c"]) == ["i2c"]
    assert boards[0].matches(["micro*"]) and not boards[2].matches(["micro*"])

    with pytest.raises(pytest.UsageError, match=r"no board named 'nosuch'; known boards: .*micro"):
        select_boards(["nosuch"], catalog)
    with pytest.raises(pytest.UsageError, match="expected NAME or NAME=PORT"):
        select_boards(["microbit="], catalog)


def test_a_port_goes_into_the_board_spec() -> None:
    catalog = BoardCatalog.discover()
    (board,) = select_boards(["micropython=/dev/ttyACM0"], catalog)
    assert board.port == "/dev/ttyACM0"
    assert board.spec() == BoardSpec("micropython", name="micropython", port="/dev/ttyACM0")
    assert str(board) == "micropython=/dev/ttyACM0"


def test_cluster_option_says_when_cluster_support_is_missing(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setitem(sys.modules, "actorhw.cluster", None)  # import fails
    with pytest.raises(pytest.UsageError, match="cluster support not installed"):
        check_cluster_support()


# --- locks ----------------------------------------------------------------------------------


def test_a_board_lock_has_one_holder_and_serves_waiters_in_order(tmp_path: Path) -> None:
    a = BoardLock(tmp_path, "microbit-qemu", holder="gw0 (pid 1)")
    b = BoardLock(tmp_path, "microbit-qemu", holder="gw1 (pid 2)")
    c = BoardLock(tmp_path, "microbit-qemu", holder="gw2 (pid 3)")
    assert a.try_acquire()
    assert not b.try_acquire()  # flock: exclusive even within one process
    assert b.who().startswith("gw0 (pid 1) since ")
    assert not a.wanted()
    b.want()
    time.sleep(0.01)  # distinct want times; not a synchronisation
    c.want()
    assert a.wanted()
    assert b.my_turn() and not c.my_turn() and not a.my_turn()
    a.release()
    assert b.my_turn() and not c.my_turn()  # free now: b waited first
    assert b.try_acquire()
    b.unwant()
    assert c.my_turn()
    b.release()
    c.unwant()
    assert not a.wanted()


def test_a_dead_waiters_want_is_ignored(tmp_path: Path) -> None:
    holder = BoardLock(tmp_path, "board", holder="gw0")
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True, check=True, timeout=30)  # fmt: skip
    want = tmp_path / "board.want-gw9"
    want.write_text(f"{dead.stdout.strip()} 1.0\n")
    assert not holder.wanted()
    assert holder.my_turn()
    assert not want.exists()


# --- transcripts ----------------------------------------------------------------------------


def test_a_transcript_orders_code_output_errors_and_state_changes() -> None:
    ids = BoardCatalog.discover().get("microbit").ids()
    other = BoardCatalog.discover().get("microbit").ids("microbit-2")
    t = Transcript("microbit", owner="pytest:t")
    start = t.started
    t.add("exec", "for i in range(2):\n    print(i)", who="lab", at=start + 0.1)
    t.add("output", "0\n1\n", who="pytest:t", at=start + 0.2)
    t.add("error", "Traceback ...\nZeroDivisionError: divide by zero", at=start + 0.4)
    change = StateChanged(
        device=ids.BOARD, from_state=DeviceState.CONNECTED, to_state=DeviceState.ACTIVE,
        reason="opened by lab", attempt=0, at=start + 0.05,
    )  # fmt: skip
    t.observe(change)
    t.observe(attrs.evolve(change, device=other.BOARD))  # another board: not recorded
    t.observe(BoardEvent(board="microbit", what="fault", reason="unplugged", attempt=1,
                         at=start + 0.3))  # fmt: skip
    assert t.render().splitlines() == [
        "  +0.050s state  [BOARD] CONNECTED -> ACTIVE (opened by lab)",
        "  +0.100s exec   [lab] >>> for i in range(2):",
        "                       ...     print(i)",
        "  +0.200s output 0",
        "                 1",
        "  +0.300s board  fault: unplugged",
        "  +0.400s error  !! Traceback ...",
        "                 ZeroDivisionError: divide by zero",
    ]
    assert Transcript("x").render() == "(nothing happened on the board)"


# --- whole sessions on simulated boards -------------------------------------------------------

SIM_PROJECT = {
    "pyproject.toml": """
        [tool.pytest.ini_options]
        addopts = "--strict-markers -ra"
        actorhw_boards = ["microbit", "stm32f4-discovery"]
        actorhw_lease_timeout = "20"
    """,
    "test_sim.py": """
        import pytest
        from actorhw import Led

        def test_each(each_board):
            assert each_board.info().state.name == "ACTIVE"

        @pytest.mark.actorhw_board("stm32*")
        def test_led(actorhw_target):
            ids = actorhw_target.ids
            with actorhw_target.runtime.lease(Led, ids.LED_GREEN, owner="t") as led:
                led.on()
            assert actorhw_target.name == "stm32f4-discovery"

        @pytest.mark.actorhw_needs("accelerometer", "i2c1")
        def test_needs(actorhw_target):
            assert actorhw_target.name == "stm32f4-discovery"

        @pytest.mark.actorhw_needs("can")
        def test_needs_missing(actorhw_target):
            pass

        @pytest.mark.actorhw_board("same70*")
        def test_glob_missing(board):
            pass

        @pytest.mark.actorhw_board("microbit")
        def test_fails_with_transcript(board):
            board.exec("print('hello')")

        @pytest.mark.actorhw_board("microbit")
        def test_released_after_a_failure(board):
            assert board.info().owners == ("pytest:test_released_after_a_failure",)

        def test_session_runtime(actorhw_runtime):
            names = sorted(s.board for s in actorhw_runtime.boards())
            assert names == ["microbit", "stm32f4-discovery"]

        def test_session_runtime_fails_with_transcripts(actorhw_runtime):
            ids = actorhw_runtime.ids("stm32f4-discovery")
            with actorhw_runtime.lease(Led, ids.LED_RED, owner="lamp") as led:
                led.on()
            assert led.lease, "released"
    """,
}


def test_a_session_on_simulated_boards(tmp_path: Path) -> None:
    write_project(tmp_path, SIM_PROJECT)
    run = run_pytest(tmp_path)
    assert run.outcomes == {
        "test_each[microbit]": "passed",
        # stm32f4-discovery has no BOARD device: the board fixture cannot serve it
        "test_each[stm32f4-discovery]": "skipped",
        "test_led": "passed",
        "test_needs": "passed",
        "test_needs_missing": "skipped",
        "test_glob_missing": "skipped",
        "test_fails_with_transcript": "failed",
        "test_released_after_a_failure": "passed",
        "test_session_runtime": "passed",
        "test_session_runtime_fails_with_transcripts": "failed",
    }, run
    assert (
        "stm32f4-discovery has none; use actorhw_target"
        in run.messages["test_each[stm32f4-discovery]"]
    )
    assert run.messages["test_needs_missing"] == (
        "needs can: microbit lacks can; stm32f4-discovery lacks can"
    )
    assert run.messages["test_glob_missing"] == (
        "no selected board matches same70* (selected: microbit, stm32f4-discovery)"
    )
    # The failed test's report carries its board's transcript: state, code, the error.
    section = run.stdout.split("actorhw transcript: microbit", 1)[1]
    assert "[BOARD] CONNECTED -> ACTIVE (opened by pytest:test_fails_with_transcript)" in (section)
    assert ">>> print('hello')" in section
    assert "!! [operation_not_supported] the simulated board microbit does not run code" in (
        section
    )
    # A test of the session runtime: every board's state changes.
    runtime_part = run.stdout.split("test_session_runtime_fails_with_transcripts", 1)[1]
    stm32 = runtime_part.split("actorhw transcript: stm32f4-discovery", 1)[1]
    assert "[LED_RED] CONNECTED -> ACTIVE (opened by lamp)" in stm32
    assert "[LED_RED] ACTIVE -> CONNECTED" in stm32
    assert "actorhw transcript: microbit" in runtime_part
    assert run.stdout.count("actorhw transcript:") == 3, run  # only the failed tests'


def test_no_boards_and_bad_options_are_clear_errors(tmp_path: Path) -> None:
    write_project(tmp_path, {"test_b.py": "def test_b(board):\n    pass\n"})
    run = run_pytest(tmp_path)
    assert run.outcomes == {"test_b": "error"}, run
    assert "no boards selected: pass --actorhw-board NAME[=PORT]" in run.messages["test_b"]

    run = run_pytest(tmp_path, "--actorhw-board", "nosuch")
    assert run.returncode == 4, run  # pytest's usage error
    assert "actorhw: --actorhw-board 'nosuch': no board named 'nosuch'" in run.stderr

    run = run_pytest(tmp_path, "--actorhw-board", "microbit", "--actorhw-boards-dir", "nodir")
    assert run.returncode == 4, run
    assert "actorhw: nodir is not a folder" in run.stderr


def test_a_busy_board_is_waited_for_within_the_deadline(tmp_path: Path) -> None:
    """Another session holds the only board: the test waits, then says who has it."""
    lock_dir = tmp_path / "locks"
    holder = BoardLock(lock_dir, "microbit", holder=f"other session (pid {os.getpid()})")
    assert holder.try_acquire()
    write_project(tmp_path, {"test_b.py": "def test_b(board):\n    pass\n"})
    try:
        start = time.monotonic()
        run = run_pytest(
            tmp_path, "--actorhw-board", "microbit", f"--actorhw-lock-dir={lock_dir}",
            "--actorhw-lease-timeout", "1.5",
        )  # fmt: skip
        waited = time.monotonic() - start
    finally:
        holder.release()
    assert run.outcomes == {"test_b": "error"}, run
    message = run.messages["test_b"]
    assert "[timed_out] no board free within 1.5 s: microbit held by other session" in message
    assert waited >= 1.5


def test_a_board_that_fails_to_come_up_fails_its_tests_at_once(tmp_path: Path) -> None:
    write_project(tmp_path, {"test_b.py": """
        def test_first(board):
            pass

        def test_second(board):
            pass
    """})  # fmt: skip
    port = tmp_path / "no-such-tty"
    run = run_pytest(tmp_path, f"--actorhw-board=micropython={port}")
    assert run.outcomes == {"test_first": "error", "test_second": "error"}, run
    assert f"port {port} does not exist" in run.messages["test_first"]
    assert "failed to come up earlier in this session" in run.messages["test_second"]
    assert f"port {port} does not exist" in run.messages["test_second"]


def test_an_idle_board_goes_to_the_process_that_waits_for_it(tmp_path: Path) -> None:
    """Two pools (two xdist workers): B waits for A's idle board; A's next give-back
    (after any test) hands it over, and B's runtime brings it up."""
    (microbit,) = select_boards(["microbit"], BoardCatalog.discover())
    settings = Settings(
        boards=(microbit,), boards_dirs=(), drivers_dirs=(), cluster=None,
        lease_timeout=20.0, bringup_timeout=20.0, lock_dir=tmp_path,
    )  # fmt: skip
    a, b = BoardPool(settings, worker="gw0"), BoardPool(settings, worker="gw1")
    try:
        holding, board = a.take([microbit])
        a.done(board)
        assert a.held() == [microbit]  # nobody waits: A keeps it between tests
        got: concurrent.futures.Future[Runtime] = concurrent.futures.Future()

        def wait_in_b() -> None:
            try:
                got.set_result(b.take([microbit])[0].runtime)
            except BaseException as e:
                got.set_exception(e)

        waiter = threading.Thread(target=wait_in_b, name="gw1-take")
        waiter.start()
        lock = a.lock_of(microbit)
        deadline = time.monotonic() + 10
        while not lock.wanted():  # B's want file: written by another thread
            assert time.monotonic() < deadline, "B never said it waits"
            threading.Event().wait(0.01)
        assert not got.done()  # A holds it still
        a.give_back(only_wanted=True)  # what the plugin does after every test
        runtime = got.result(timeout=20)
        waiter.join(5)
        assert a.held() == [] and b.held() == [microbit]
        assert not holding.runtime.running and runtime.running
        assert [s.board for s in runtime.boards()] == ["microbit"]
    finally:
        b.close()
        a.close()
