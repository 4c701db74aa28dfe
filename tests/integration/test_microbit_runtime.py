"""The QEMU micro:bit as a board of the runtime: exec, peripherals, many boards, the CLI."""

from __future__ import annotations

import concurrent.futures
import json
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest

from actorhw import Accelerometer, Board, BoardSpec, Button, Display, Gpio, Runtime
from actorhw.cli.main import main
from actorhw.core.errors import (
    ActorHwError,
    DeviceExceptionError,
    InvalidArgumentError,
    TimedOutError,
)
from actorhw.core.messages import BoardEvent

pytestmark = [pytest.mark.qemu, pytest.mark.timeout(90)]
#: A call's deadline where only the answer matters (the emulated board is slow under load).
SLOW = 10.0


def test_exec_output_and_device_exception(qemu_rt: Runtime) -> None:
    ids = qemu_rt.ids("microbit-qemu")
    with qemu_rt.lease(Board, ids.BOARD, owner="t") as board:
        assert board.exec("print(1+1)") == "2\n"
        with pytest.raises(DeviceExceptionError) as e:
            board.exec("x=[0]*100000")
        assert e.value.exc_name == "MemoryError"
        assert "allocating 400000 bytes" in e.value.traceback_text
        assert board.exec("print('still here')") == "still here\n"


def test_peripherals_act_through_the_board(qemu_rt: Runtime) -> None:
    # Each call's deadline is generous: the emulated board runs slowly on a loaded
    # 2-core host (display.clear missed a 2 s deadline there); what is checked is the
    # answers, not their speed (bench_runtime_exec measures that).
    ids = qemu_rt.ids("microbit-qemu")
    with qemu_rt.lease(Display, ids.DISPLAY, owner="t", timeout=SLOW) as display:
        display.clear()
        assert display.read() == "0" * 25
        display.show("I")
        assert display.read() != "0" * 25
    with qemu_rt.lease(Accelerometer, ids.ACCELEROMETER, owner="t", timeout=SLOW) as acc:
        assert len(acc.read()) == 3
    with qemu_rt.lease(Button, ids.BUTTON_A, owner="t", timeout=SLOW) as button:
        assert button.is_pressed() is False
    with (
        qemu_rt.lease(Gpio, ids.PIN1, owner="t", timeout=SLOW) as pin,
        qemu_rt.lease(Board, ids.BOARD, owner="t", timeout=SLOW) as board,
    ):
        pin.write(True)
        assert board.exec("print(microbit.pin1.read_digital())") in ("0\n", "1\n")


def test_hang_times_out_within_deadline_and_board_is_reported(qemu_rt: Runtime) -> None:
    ids = qemu_rt.ids("microbit-qemu")
    with qemu_rt.subscribe() as events, qemu_rt.lease(Board, ids.BOARD, owner="t") as board:
        started = time.monotonic()
        with pytest.raises(TimedOutError):
            board.exec("microbit.temperature()", timeout=1.0)
        assert time.monotonic() - started < 1.0 + 1.5  # the deadline plus the resync try
        fault = events.wait_for(lambda e: isinstance(e, BoardEvent), timeout=5)
        assert fault.what == "fault"
        assert "hung" in fault.reason


def test_device_status_answers_while_a_long_exec_runs(qemu_rt: Runtime) -> None:
    ids = qemu_rt.ids("microbit-qemu")
    with qemu_rt.lease(Board, ids.BOARD, owner="t") as board:
        done = threading.Event()

        def long_exec() -> None:
            board.exec("import utime\nutime.sleep_ms(1500)", timeout=5)
            done.set()

        with ThreadPoolExecutor(1) as pool:
            future = pool.submit(long_exec)
            started = time.monotonic()
            info = qemu_rt.info(ids.BOARD, timeout=1.0)
            assert time.monotonic() - started < 0.5
            assert not done.is_set()
            assert info.owners == ("t",)
            future.result(timeout=10)


def test_four_boards_from_four_threads_never_cross() -> None:
    specs = [BoardSpec("microbit-qemu", name=f"mb{i}") for i in range(4)]
    with Runtime.start(boards=specs, timeout=60) as rt:

        def drive(i: int) -> list[str]:
            ids = rt.ids(f"mb{i}")
            with rt.lease(Board, ids.BOARD, owner=f"thread-{i}") as board:
                board.exec(f"me = {i}")
                return [board.exec("print(me)") for _ in range(25)]

        with ThreadPoolExecutor(4) as pool:
            results = list(pool.map(drive, range(4), timeout=60))
    for i, outputs in enumerate(results):
        assert outputs == [f"{i}\n"] * 25


def test_cli_exec_json_and_exit_codes(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["exec", "--board", "microbit-qemu", "--json", "print(1+1)"]) == 0
    assert json.loads(capsys.readouterr().out) == {"ok": True, "output": "2\n"}
    assert main(["exec", "--board", "microbit-qemu", "1/0"]) == 4
    err = capsys.readouterr().err
    assert "ZeroDivisionError" in err and "actorhw: error: [device_exception]" in err


def test_unplug_gives_a_typed_error_never_a_result(qemu_rt: Runtime) -> None:
    ids = qemu_rt.ids("microbit-qemu")
    with qemu_rt.subscribe() as events, qemu_rt.lease(Board, ids.BOARD, owner="t") as board:
        qemu_rt.inject_fault("microbit-qemu", "unplug")
        with pytest.raises(ActorHwError) as e:
            board.exec("print(1)", timeout=2)
        assert e.value.code in ("link_lost", "device_unavailable")
        events.wait_for(lambda e: isinstance(e, BoardEvent) and e.what == "recovered", timeout=20)


def test_start_use_starts_an_opened_lease_s_exec_without_blocking(qemu_rt: Runtime) -> None:
    ids = qemu_rt.ids("microbit-qemu")
    lease = qemu_rt.acquire(ids.BOARD, owner="t")
    try:
        # Not opened: nothing is started (use() goes through the actor, which says why).
        assert qemu_rt.start_use(lease, "exec", ("print(1)", 5.0)) is None
        qemu_rt.open(lease)
        started = qemu_rt.start_use(lease, "exec", ("print(3*3)", 5.0))
        assert started is not None
        concurrent.futures.wait(started.futures, 10, concurrent.futures.FIRST_COMPLETED)
        assert started.ready()
        assert started.result(0.0) == "9\n"
        with pytest.raises(InvalidArgumentError):
            started.result(0.0)  # a result is taken once: the slot was given back
        failing = qemu_rt.start_use(lease, "exec", ("raise ValueError('x')", 5.0))
        assert failing is not None
        with pytest.raises(DeviceExceptionError) as e:
            failing.result(10.0)
        assert e.value.exc_name == "ValueError"
        assert qemu_rt.limiter.statistics().active == 0
        assert qemu_rt.use(lease, "exec", ("print(2)", 5.0)) == "2\n"
    finally:
        qemu_rt.release(lease)
