"""Fixtures that boot real micro:bit firmware in QEMU.

A board boots in about 0.1 s (QEMU start, pty, first raw-REPL prompt), so every test
gets fresh boards.  When QEMU or the firmware is missing the fixtures FAIL with the
reason: these tests are never skipped.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import attrs
import pytest

from actorhw import Runtime
from actorhw.links import QemuMicrobit, RawReplLink, qemu_available
from tests.integration.serial_boards import UnixBoardFactory, unix_boards_in

BOOT_TIMEOUT = 15.0
RESYNC_TIMEOUT = 1.5
"""How long the links wait for the prompt after a Ctrl-C.  A board that is not hung
answers in milliseconds, but on a loaded CI machine QEMU can go unscheduled for longer
than the link's 0.5 s default, and a busy emulator would be taken for a hung board
(seen once: ``resynced`` False after an infinite loop's timeout)."""


@attrs.frozen
class BootedMicrobit:
    """One emulated micro:bit and the open raw-REPL link to it."""

    board: QemuMicrobit
    link: RawReplLink


MicrobitFactory = Callable[[int], list[BootedMicrobit]]


def _require_qemu() -> None:
    reason = qemu_available()
    if reason is not None:
        pytest.fail(f"QEMU micro:bit is required for this test: {reason}", pytrace=False)


@pytest.fixture
def microbit_factory() -> Iterator[MicrobitFactory]:
    """Boot N micro:bits (each with its link in the raw REPL); all are powered off after."""
    _require_qemu()
    booted: list[BootedMicrobit] = []

    def boot(count: int = 1) -> list[BootedMicrobit]:
        fresh = []
        for _ in range(count):
            board = QemuMicrobit(name=f"microbit{len(booted)}")
            board.power_on(timeout=BOOT_TIMEOUT)
            try:
                link = board.open_link(timeout=BOOT_TIMEOUT, resync_timeout=RESYNC_TIMEOUT)
            except BaseException:
                board.power_off()
                raise
            item = BootedMicrobit(board=board, link=link)
            booted.append(item)
            fresh.append(item)
        return fresh

    try:
        yield boot
    finally:
        for item in booted:
            item.link.close()
            item.board.power_off()


@pytest.fixture
def microbit(microbit_factory: MicrobitFactory) -> BootedMicrobit:
    """One freshly booted micro:bit with its link in the raw REPL."""
    (item,) = microbit_factory(1)
    return item


@pytest.fixture
def qemu_rt() -> Iterator[Runtime]:
    """A Runtime with one QEMU micro:bit board, ``microbit-qemu``; stopped after."""
    _require_qemu()
    rt = Runtime.start(boards=["microbit-qemu"], timeout=30)
    try:
        yield rt
    finally:
        rt.stop()


@pytest.fixture
def unix_boards(tmp_path: Path) -> Iterator[UnixBoardFactory]:
    """Start MicroPython unix-port boards on ptys (``make(heap="64K", ctty=True)``)."""
    yield from unix_boards_in(tmp_path)
