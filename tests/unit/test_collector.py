"""The collector's pause around a bulk start: counted, restored, and only for bulk."""

from __future__ import annotations

import gc
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from actorhw import Runtime
from actorhw.api import runtime as runtime_module
from actorhw.core.collector import BULK_DEVICES, collector_paused
from actorhw.tree.board import BoardActor

PINS = 20


@pytest.fixture
def collector_on() -> Iterator[None]:
    was = gc.isenabled()
    gc.enable()
    yield
    if not was:
        gc.disable()


@pytest.fixture
def board_dir(tmp_path: Path) -> Path:
    lines = ["[board]", 'name = "pins20"', 'enum = "Pins20"', 'driver = "sim"', "", "[devices]"]
    lines += [f'PIN{i} = {{ kind = "gpio", pin = {i} }}' for i in range(PINS)]
    (tmp_path / "pins20.toml").write_text("\n".join(lines) + "\n", encoding="utf-8")
    return tmp_path


def test_pause_switches_the_collector_off_and_back(collector_on: None) -> None:
    with collector_paused():
        assert not gc.isenabled()
    assert gc.isenabled()
    with collector_paused(False):
        assert gc.isenabled()


def test_nested_pauses_count_and_an_error_restores(collector_on: None) -> None:
    with pytest.raises(RuntimeError), collector_paused():
        with collector_paused():
            assert not gc.isenabled()
        assert not gc.isenabled()  # the outer pause still holds
        raise RuntimeError("inside")
    assert gc.isenabled()


def test_a_collector_switched_off_before_stays_off(collector_on: None) -> None:
    gc.disable()
    with collector_paused():
        assert not gc.isenabled()
    assert not gc.isenabled()


def test_concurrent_pauses_resume_when_the_last_ends(collector_on: None) -> None:
    inside, leave = threading.Event(), threading.Event()

    def other() -> None:
        with collector_paused():
            inside.set()
            leave.wait(10)

    thread = threading.Thread(target=other)
    thread.start()
    assert inside.wait(10)
    with collector_paused():
        pass
    assert not gc.isenabled()  # the other thread's pause still holds
    leave.set()
    thread.join(10)
    assert gc.isenabled()


def _collections_while_adding(rt: Runtime, boards: list[str]) -> list[int]:
    runs: list[int] = []

    def count(phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            runs.append(info["generation"])

    gc.callbacks.append(count)
    try:
        rt.add_boards(boards)
    finally:
        gc.callbacks.remove(count)
    return runs


def test_a_bulk_start_runs_no_collection_and_a_small_one_is_left_alone(
    collector_on: None, board_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    seen: list[bool] = []  # whether the collector was on as each board built its devices
    started = BoardActor.started

    def recording(self: BoardActor) -> None:
        seen.append(gc.isenabled())
        started(self)

    monkeypatch.setattr(BoardActor, "started", recording)
    bulk = ["pins20"] * (BULK_DEVICES // PINS)
    with Runtime.start(boards_dirs=[board_dir]) as rt:
        paused = _collections_while_adding(rt, bulk)
        assert seen == [False] * len(bulk)
        assert gc.isenabled()
        assert len(rt.devices()) == BULK_DEVICES
        rt.add_boards(["pins20"])
        assert seen[-1] is True  # 20 devices: left alone
    with Runtime.start(boards_dirs=[board_dir]) as rt:
        monkeypatch.setattr(runtime_module, "BULK_DEVICES", 10 * BULK_DEVICES)
        unpaused = _collections_while_adding(rt, bulk)
    # Some 20 tracked objects per device: unpaused, the collector runs dozens of times
    # (rescanning what it cannot free); paused, hardly (only what other threads, or the
    # checks before the pause, allocate).
    assert len(unpaused) >= 10 and len(paused) * 3 < len(unpaused), (unpaused, paused)
