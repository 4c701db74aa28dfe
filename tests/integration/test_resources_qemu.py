"""Resources on the real micro:bit firmware in QEMU: figures, allocation, MemoryError,
and preemption that interrupts the board."""

from __future__ import annotations

import concurrent.futures
import re
import time

import pytest

from actorhw import Board, Runtime
from actorhw.core.errors import AllocationRefusedError, DeviceExceptionError, PreemptedError
from actorhw.core.messages import Priority, ResourceKind, ResourceThresholdExceeded
from actorhw.tree.books import RESERVE

pytestmark = [pytest.mark.qemu, pytest.mark.timeout(60)]
WAIT = 10.0


def test_memory_figures_agree_with_mem_info_on_the_board(qemu_rt: Runtime) -> None:
    ids = qemu_rt.ids("microbit-qemu")
    status = qemu_rt.monitor.status(ids.BOARD, timeout=WAIT)
    with qemu_rt.lease(Board, ids.BOARD, owner="t") as board:
        out = board.exec("import micropython\nmicropython.mem_info()", timeout=WAIT)
    total, _used, free = (
        int(x) for x in re.search(r"GC: total: (\d+), used: (\d+), free: (\d+)", out).groups()
    )  # type: ignore[union-attr]
    max_free = int(re.search(r"max free sz: (\d+)", out).group(1))  # type: ignore[union-attr]
    memory = status.memory
    assert memory.total == total  # the heap's size does not move
    assert memory.used is not None and memory.free is not None
    assert memory.used + memory.free == memory.total
    # Two execs apart, the heap moves by what the REPL allocated in between: a few blocks.
    assert abs(memory.free - free) <= 0.1 * total, (memory, out)
    assert memory.largest_free_block is not None
    assert abs(memory.largest_free_block - 16 * max_free) <= 0.1 * total
    # micro:bit: no os.statvfs, so the file-system total is unknown, not zero.
    assert status.storage.total is None and status.storage.used is not None
    assert status.cpu.uptime_s is not None and status.cpu.uptime_s > 0
    assert status.cpu.active_threads == 1  # no _thread on this firmware


def test_allocating_past_the_real_free_heap_minus_reserve_is_refused(qemu_rt: Runtime) -> None:
    ids = qemu_rt.ids("microbit-qemu")
    with qemu_rt.session("alloc") as s:
        status = qemu_rt.monitor.status(ids.BOARD, timeout=WAIT)
        assert status.memory.free is not None and status.memory.total is not None
        limit = status.memory.free - RESERVE * status.memory.total
        with pytest.raises(AllocationRefusedError) as info:
            s.allocate(ids.BOARD, ResourceKind.MEMORY, int(limit) + 512)
        assert info.value.allocatable is not None
        assert abs(info.value.allocatable - limit) <= 0.1 * status.memory.total
        granted = s.allocate(ids.BOARD, ResourceKind.MEMORY, info.value.allocatable // 2)
        assert granted.amount == info.value.allocatable // 2


def test_a_memory_error_on_the_board_raises_a_threshold_event(qemu_rt: Runtime) -> None:
    ids = qemu_rt.ids("microbit-qemu")
    with qemu_rt.subscribe() as sub, qemu_rt.lease(Board, ids.BOARD, owner="t") as board:
        with pytest.raises(DeviceExceptionError) as info:
            board.exec("x = bytearray(100000)", timeout=WAIT)
        assert info.value.exc_name == "MemoryError"
        event = sub.wait_for(lambda e: isinstance(e, ResourceThresholdExceeded), timeout=WAIT)
    assert event.device is ids.BOARD and event.metric == "memory.error"
    assert event.value == 100000 and "MemoryError" in event.reason


def test_high_preempts_a_low_exec_and_the_board_is_interrupted(qemu_rt: Runtime) -> None:
    ids = qemu_rt.ids("microbit-qemu")
    qemu_rt.limiter.configure(max_global=1)
    with (
        qemu_rt.lease(Board, ids.BOARD, owner="t") as board,
        concurrent.futures.ThreadPoolExecutor(1) as pool,
    ):
        assert board.lease is not None
        lease = board.lease
        low = pool.submit(
            qemu_rt.use, lease, "exec", ("while True:\n    pass", 30.0),
            timeout=40.0, priority=Priority.LOW,
        )  # fmt: skip
        deadline = time.monotonic() + WAIT
        while qemu_rt.limiter.statistics().active < 1:  # asks with a deadline, no sleep
            assert time.monotonic() < deadline and not low.done()
        started = time.monotonic()
        out = qemu_rt.use(lease, "exec", ("print(6*7)", 5.0), timeout=WAIT, priority=Priority.HIGH)
        took = time.monotonic() - started
        assert out == "42\n"
        # Only an interrupted board answers now: the Low loop would run for 30 s.
        assert took < 5.0
        with pytest.raises(PreemptedError) as info:
            low.result(timeout=WAIT)
        assert info.value.code == "preempted" and info.value.by_priority == "HIGH"
    assert qemu_rt.limiter.statistics().preempted == 1
