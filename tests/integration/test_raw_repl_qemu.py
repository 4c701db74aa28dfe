"""RawReplLink against the real micro:bit MicroPython firmware running in QEMU."""

from __future__ import annotations

import ast
import os
import threading
import time
from typing import TYPE_CHECKING, Any

import pytest
import serial

from actorhw.core.errors import DeviceExceptionError, LinkLostError, TimedOutError
from actorhw.links import ExecResult, QemuMicrobit, RawReplLink

if TYPE_CHECKING:
    from tests.integration.conftest import BootedMicrobit, MicrobitFactory

pytestmark = pytest.mark.qemu


@pytest.mark.timeout(30)
def test_exec_prints_output(microbit: BootedMicrobit) -> None:
    link = microbit.link
    assert link.in_raw_repl
    assert link.raw_paste is False  # MicroPython 1.9.2 answers the probe with the banner
    assert link.exec("print(1+1)", timeout=2) == ExecResult(stdout=b"2\r\n", stderr=b"")
    assert link.exec_checked("for i in range(3):\n    print(i, i * i)", timeout=2) == (
        "0 0\n1 1\n2 4\n"
    )
    assert link.exec_checked("import microbit\nprint(microbit.running_time() >= 0)", timeout=2) == (
        "True\n"
    )


LITERALS: list[Any] = [
    0,
    -7,
    2**40,
    1.5,
    -0.25,
    1e10,
    "",
    "hé 'quoted' \"twice\"\n",
    b"",
    b"\x00\xff raw",
    True,
    False,
    None,
    [],
    [1, "a", [2.5, None]],
    (),
    (1,),
    (1, "two", (3.0,)),
    {},
    {"a": 1, 2: (3,), "nested": {"x": [True]}},
    set(),
    {1, 2, 3},
]


@pytest.mark.timeout(30)
def test_literal_values_round_trip_through_repr(microbit: BootedMicrobit) -> None:
    link = microbit.link
    for value in LITERALS:
        text = link.exec_checked(f"print(repr({value!r}))", timeout=2)
        back = ast.literal_eval(text.strip())
        assert back == value
        assert type(back) is type(value)


@pytest.mark.timeout(30)
def test_device_exception_carries_name_and_traceback(microbit: BootedMicrobit) -> None:
    link = microbit.link
    with pytest.raises(DeviceExceptionError) as info:
        link.exec_checked("print('partial')\nx = 1 / 0", timeout=2)
    err = info.value
    assert err.exc_name == "ZeroDivisionError"  # type: ignore[attr-defined]
    assert err.traceback_text.startswith("Traceback (most recent call last):")  # type: ignore[attr-defined]
    assert "ZeroDivisionError: division by zero" in err.traceback_text  # type: ignore[attr-defined]
    assert err.stdout == "partial\n"  # type: ignore[attr-defined]
    assert link.exec_checked("print('still fine')", timeout=2) == "still fine\n"


@pytest.mark.timeout(30)
def test_memory_error_is_real(microbit: BootedMicrobit) -> None:
    link = microbit.link
    with pytest.raises(DeviceExceptionError) as info:
        link.exec_checked("x = [0] * 100000", timeout=2)
    assert info.value.exc_name == "MemoryError"  # type: ignore[attr-defined]
    assert "400000 bytes" in info.value.traceback_text  # type: ignore[attr-defined]
    assert link.exec_checked("print(len([0] * 10))", timeout=2) == "10\n"


@pytest.mark.timeout(30)
def test_infinite_loop_ends_by_timeout_and_board_is_usable(microbit: BootedMicrobit) -> None:
    link = microbit.link
    start = time.monotonic()
    with pytest.raises(TimedOutError) as info:
        link.exec("while True: pass", timeout=0.5)
    elapsed = time.monotonic() - start
    assert info.value.resynced is True  # type: ignore[attr-defined]
    assert 0.5 <= elapsed < 0.5 + link.resync_timeout + 0.5
    assert link.in_raw_repl
    assert link.exec_checked("print('alive')", timeout=2) == "alive\n"


@pytest.mark.timeout(30)
def test_temperature_hangs_the_firmware_for_good(microbit: BootedMicrobit) -> None:
    link = microbit.link
    link.exec_checked("import microbit", timeout=2)
    start = time.monotonic()
    with pytest.raises(TimedOutError) as info:
        link.exec("microbit.temperature()", timeout=1.0)
    elapsed = time.monotonic() - start
    # The exec deadline, then at most resync_timeout trying Ctrl-C / Ctrl-A in vain.
    assert elapsed < 1.0 + link.resync_timeout + 0.5
    assert info.value.resynced is False  # type: ignore[attr-defined]
    assert not link.in_raw_repl
    with pytest.raises(TimedOutError) as again:
        link.interrupt(timeout=0.3)
    assert again.value.resynced is False  # type: ignore[attr-defined]
    assert microbit.board.alive  # hung, not dead: only a power cycle helps


class _SpyPort:
    """A real pyserial port that signals when code containing ``marker`` was written."""

    def __init__(self, port: serial.Serial, marker: bytes) -> None:
        self._port = port
        self._marker = marker
        self.sent = threading.Event()
        self.name = port.name

    @property
    def timeout(self) -> float | None:
        return self._port.timeout  # type: ignore[no-any-return]

    @timeout.setter
    def timeout(self, value: float | None) -> None:
        self._port.timeout = value

    @property
    def write_timeout(self) -> float | None:
        return self._port.write_timeout  # type: ignore[no-any-return]

    @write_timeout.setter
    def write_timeout(self, value: float | None) -> None:
        self._port.write_timeout = value

    @property
    def in_waiting(self) -> int:
        return self._port.in_waiting  # type: ignore[no-any-return]

    def read(self, size: int = 1) -> bytes:
        return self._port.read(size)  # type: ignore[no-any-return]

    def write(self, data: bytes) -> int | None:
        written = self._port.write(data)
        if self._marker in data:
            self.sent.set()
        return written  # type: ignore[no-any-return]

    def close(self) -> None:
        self._port.close()


@pytest.mark.timeout(30)
def test_power_off_during_exec_is_link_lost(microbit_factory: MicrobitFactory) -> None:
    (booted,) = microbit_factory(1)
    board = booted.board
    booted.link.close()  # use our own handle, wrapped in a spy
    spy = _SpyPort(serial.Serial(board.pty, timeout=0.05), b"while True")
    link = RawReplLink.open(spy, timeout=5)
    outcome: list[BaseException | ExecResult] = []

    def run() -> None:
        try:
            outcome.append(link.exec("while True: pass", timeout=20))
        except BaseException as exc:
            outcome.append(exc)

    worker = threading.Thread(target=run)
    worker.start()
    try:
        assert spy.sent.wait(5)
        start = time.monotonic()
        board.power_off(timeout=5)
        worker.join(5)
        lost_after = time.monotonic() - start
    finally:
        link.close()
        worker.join(5)
    assert not worker.is_alive()
    (result,) = outcome
    assert isinstance(result, LinkLostError), result
    assert isinstance(result.__cause__, OSError)  # serial.SerialException or EIO
    assert lost_after < 1.0  # well within the 20 s deadline
    assert not board.alive
    assert board.pid is None


@pytest.mark.timeout(60)
def test_four_boards_from_four_threads_never_cross(microbit_factory: MicrobitFactory) -> None:
    boards = microbit_factory(4)
    start = threading.Barrier(len(boards))
    errors: list[BaseException] = []
    counts = [0] * len(boards)

    def drive(index: int, link: RawReplLink) -> None:
        token = f"board-{index}-{id(link)}"
        try:
            link.exec_checked(f"token = {token!r}", timeout=5)
            start.wait(10)
            for i in range(100):
                out = link.exec_checked(f"print(token, {i})", timeout=5)
                assert out == f"{token} {i}\n"
                counts[index] += 1
        except BaseException as exc:
            errors.append(exc)

    threads = [
        threading.Thread(target=drive, args=(i, b.link), name=f"drive-{i}")
        for i, b in enumerate(boards)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join(50)
    assert errors == []
    assert counts == [100] * len(boards)


@pytest.mark.timeout(30)
def test_soft_reset_clears_python_state(microbit: BootedMicrobit) -> None:
    link = microbit.link
    link.exec_checked("kept = 41", timeout=2)
    assert link.exec_checked("print(kept + 1)", timeout=2) == "42\n"
    link.soft_reset(timeout=5)
    assert link.in_raw_repl
    with pytest.raises(DeviceExceptionError) as info:
        link.exec_checked("print(kept)", timeout=2)
    assert info.value.exc_name == "NameError"  # type: ignore[attr-defined]
    assert link.exec_checked("print('fresh')", timeout=2) == "fresh\n"


@pytest.mark.timeout(30)
def test_power_cycle_gives_a_fresh_board(microbit: BootedMicrobit) -> None:
    board = microbit.board
    old_pid = board.pid
    microbit.link.close()
    start = time.monotonic()
    board.power_cycle(timeout=10)
    with board.open_link(timeout=10) as link:
        boot = time.monotonic() - start
        assert board.pid != old_pid
        assert link.exec_checked("print('again')", timeout=2) == "again\n"
    assert boot < 5


@pytest.mark.timeout(30)
def test_power_off_kills_and_reaps_qemu() -> None:
    board = QemuMicrobit(name="reap-check")
    board.power_on(timeout=10)
    pid = board.pid
    assert pid is not None
    assert board.alive
    assert os.path.exists(f"/proc/{pid}")
    board.power_off()
    board.power_off()  # idempotent
    assert not board.alive
    assert board.pid is None
    # Killed and reaped (by its watchdog shell, which we reaped): no zombie left.
    assert not os.path.exists(f"/proc/{pid}")


@pytest.mark.timeout(60)
def test_long_code_always_arrives_intact(microbit: BootedMicrobit) -> None:
    """The firmware drops input bytes past its 64-byte ring: long code goes verified."""
    link = microbit.link
    assert link.verify_over is not None
    payload = "".join(f"{i:04d}" for i in range(200))  # position-coded: a gap would show
    # 'del s': with its 10 KB heap the board cannot also hold the previous copy of s
    # (verified code costs one more copy of the source while it runs).
    code = f"s = '{payload}'\nprint(len(s))\nprint(s)\ndel s"
    for _ in range(40):
        link.exec_checked("junk = [j for j in range(30)]", timeout=5)  # keep the GC busy
        assert link.exec_checked(code, timeout=5) == f"800\n{payload}\n"
    # A device exception in verified code keeps its name and message.
    with pytest.raises(DeviceExceptionError) as info:
        link.exec_checked("# " + "padding " * 20 + "\nx = 1 / 0", timeout=5)
    assert info.value.exc_name == "ZeroDivisionError"  # type: ignore[attr-defined]
    assert "division by zero" in info.value.traceback_text  # type: ignore[attr-defined]
