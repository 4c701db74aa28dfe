"""Recovery of real firmware: unplug and hang, back to CONNECTED by the legal path."""

from __future__ import annotations

import threading
import time

import pytest

from actorhw import Board, DeviceState, Runtime, StateChanged
from actorhw.core.errors import DeviceResetError, LinkLostError, TimedOutError
from actorhw.core.messages import BoardEvent

pytestmark = [pytest.mark.qemu, pytest.mark.timeout(90)]
S = DeviceState


def _transitions(events: list[object], device: object) -> list[tuple[S, S]]:
    return [
        (e.from_state, e.to_state)
        for e in events
        if isinstance(e, StateChanged) and e.device is device
    ]


def test_unplug_during_task_link_lost_then_connected(qemu_rt: Runtime) -> None:
    ids = qemu_rt.ids("microbit-qemu")
    with qemu_rt.subscribe() as events, qemu_rt.lease(Board, ids.BOARD, owner="t") as board:
        running = threading.Event()
        outcome: list[BaseException] = []

        def task() -> None:
            running.set()
            try:
                board.exec("while True: pass", timeout=10)
            except BaseException as e:
                outcome.append(e)

        worker = threading.Thread(target=task)
        worker.start()
        assert running.wait(5)
        started = time.monotonic()
        qemu_rt.inject_fault("microbit-qemu", "unplug")
        worker.join(12)
        assert not worker.is_alive()
        assert isinstance(outcome[0], LinkLostError)
        assert time.monotonic() - started < 10  # well within the task's deadline
        seen_events = events.until(
            lambda e: isinstance(e, BoardEvent) and e.what == "recovered", timeout=20
        )
        recovered = seen_events[-1]
        seen = _transitions(seen_events, ids.BOARD)
        assert recovered.attempt == 1
        info = qemu_rt.info(ids.BOARD)
        assert (info.state, info.owners) == (S.CONNECTED, ("t",))  # held, not open: reset
        # the handle opened before the reset must be reopened
        with pytest.raises(DeviceResetError, match="open it again"):
            board.exec("print(1)")
        board.open()
        assert board.exec("print(1)") == "1\n"
    # ACTIVE -> ERROR -> DISCONNECTED -> INITIALIZED -> CONNECTED; the lease survives
    assert seen[0] == (S.CONNECTED, S.ACTIVE)  # the lease opening it
    assert seen[1:5] == [
        (S.ACTIVE, S.ERROR),
        (S.ERROR, S.DISCONNECTED),
        (S.DISCONNECTED, S.INITIALIZED),
        (S.INITIALIZED, S.CONNECTED),
    ]


def test_hang_escalates_to_power_cycle_and_connected(qemu_rt: Runtime) -> None:
    ids = qemu_rt.ids("microbit-qemu")
    with qemu_rt.subscribe() as events, qemu_rt.lease(Board, ids.BOARD, owner="t") as board:
        board.exec("marker = 42")
        with pytest.raises(TimedOutError):
            board.exec("microbit.temperature()", timeout=1.0)
        seen = events.until(
            lambda e: isinstance(e, BoardEvent) and e.what == "recovered", timeout=20
        )
        # The link's Ctrl-C went unanswered: the board has shown it answers nothing, so
        # the ladder skips the reconnect and the soft reset and goes to the power hook.
        ladder = [e for e in seen if isinstance(e, BoardEvent)]
        assert [e.what for e in ladder] == ["fault", "recovering", "recovered"]
        assert "power cycle" in ladder[2].reason
        board.open()
        # a power cycle boots fresh firmware: the board's globals are gone
        assert "NameError" in board.exec(
            "try:\n print(marker)\nexcept NameError:\n print('NameError')"
        )
    status = qemu_rt.board_status("microbit-qemu")
    assert (status.state, status.restarts, status.quarantined) == (S.CONNECTED, 1, False)
