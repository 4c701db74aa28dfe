"""Multi-device jobs: limits, priorities, per-target errors, progress, and
all-or-nothing acquire that never deadlocks."""

from __future__ import annotations

import random
import threading
from collections.abc import Iterator

import pytest

from actorhw import Led, Runtime, Uart
from actorhw.api.jobs import JobRunner, acquire_all, global_order, holding, release_all, run_job
from actorhw.core.errors import (
    DeviceBusyError,
    JobCancelledError,
    JobFailedError,
    JobTargetError,
    LinkLostError,
    TimedOutError,
)
from actorhw.core.ids import DeviceId
from actorhw.core.messages import JobProgress

pytestmark = pytest.mark.timeout(60)

WAIT = 20.0


@pytest.fixture
def rt() -> Iterator[Runtime]:
    """Four simulated SAME70 boards."""
    runtime = Runtime.start(boards=["same70-xplained"] * 4, timeout=10.0)
    try:
        yield runtime
    finally:
        runtime.stop()


def uarts(rt: Runtime) -> list[DeviceId]:
    return [rt.ids(b.board)["UART0"] for b in rt.boards()]


def test_results_per_device_and_one_failure_hides_nothing(rt: Runtime) -> None:
    devices = uarts(rt)
    bad = devices[2]

    def echo(uart: Uart) -> bytes:
        if uart.device is bad:
            raise LinkLostError("cable pulled", board=type(bad).board)
        uart.write(uart.device.key.encode())
        return uart.read(64)

    result = run_job(rt, devices, echo, owner="echo", limit=2, timeout=WAIT)
    assert not result.ok
    assert set(result.values) == set(devices) - {bad}
    for device, value in result.values.items():
        assert value == device.key.encode()
    assert isinstance(result.errors[bad], LinkLostError)
    with pytest.raises(JobFailedError) as e:
        result.raise_for_errors()
    assert e.value.failed == [bad.key]
    # every lease was given back
    assert all(rt.info(d).owners_count == 0 for d in devices)


def test_busy_device_is_that_targets_typed_error(rt: Runtime) -> None:
    devices = uarts(rt)
    with rt.lease(Uart, devices[0], owner="someone-else"):
        result = run_job(rt, devices, lambda u: u.write(b"x"), owner="job", timeout=WAIT)
    assert isinstance(result.errors[devices[0]], DeviceBusyError)
    assert result.values == {d: 1 for d in devices[1:]}


def test_foreign_exception_is_wrapped_with_its_cause(rt: Runtime) -> None:
    def boom(_: object) -> None:
        raise ZeroDivisionError("nope")

    result = run_job(rt, uarts(rt)[:1], boom, owner="job", timeout=WAIT)
    (error,) = result.errors.values()
    assert isinstance(error, JobTargetError)
    assert isinstance(error.__cause__, ZeroDivisionError)


def test_concurrency_limit_is_never_exceeded() -> None:
    running = 0
    peak = 0
    lock = threading.Lock()
    both_in = threading.Barrier(2, timeout=WAIT)

    def work(n: int) -> int:
        nonlocal running, peak
        with lock:
            running += 1
            peak = max(peak, running)
        both_in.wait()  # proves two run together; a third would break the limit
        with lock:
            running -= 1
        return n * n

    with JobRunner(workers=8) as runner:
        result = runner.submit(range(6), work, limit=2).wait(timeout=WAIT)
    assert result.values == {n: n * n for n in range(6)}
    assert peak == 2


def test_higher_priority_pending_targets_start_first() -> None:
    gate = threading.Event()
    order: list[str] = []

    def blocker(_: int) -> None:
        assert gate.wait(WAIT)

    with JobRunner(workers=1) as runner:
        first = runner.submit([0], blocker, name="blocker")
        low = runner.submit(["l1", "l2"], order.append, name="low", priority=0)
        high = runner.submit(["h1", "h2"], order.append, name="high", priority=5)
        gate.set()
        for job in (first, low, high):
            job.wait(timeout=WAIT)
    assert order == ["h1", "h2", "l1", "l2"]


def test_progress_is_observable(rt: Runtime) -> None:
    seen: list[JobProgress] = []
    devices = uarts(rt)
    with rt.subscribe() as events, JobRunner(rt, workers=2) as runner:
        job = runner.submit_devices(
            devices, lambda u: u.write(b"1"), owner="prog", on_progress=seen.append
        )
        result = job.wait(timeout=WAIT)
        last = events.wait_for(
            lambda e: isinstance(e, JobProgress) and e.succeeded == len(devices), timeout=WAIT
        )
    assert result.ok
    assert last.job == "prog" and last.total == len(devices) and last.running == 0
    assert [p.what for p in seen].count("started") == len(devices)
    assert [p.what for p in seen].count("succeeded") == len(devices)
    assert job.progress().succeeded == len(devices)


def test_wait_deadline_and_cancel() -> None:
    gate = threading.Event()
    with JobRunner(workers=1) as runner:
        job = runner.submit([1, 2, 3], lambda _: gate.wait(WAIT), limit=1)
        with pytest.raises(TimedOutError):
            job.wait(timeout=0.05)
        job.cancel()
        gate.set()
        result = job.wait(timeout=WAIT)
    cancelled = [t for t, e in result.errors.items() if isinstance(e, JobCancelledError)]
    assert len(cancelled) == 2 and len(result.values) == 1


def test_acquire_all_is_all_or_nothing(rt: Runtime) -> None:
    ids = rt.ids(rt.boards()[0].board)
    wanted = [ids.UART1, ids.LED_RED, ids.UART0]
    with rt.lease(Led, ids.LED_RED, owner="holder"):
        with pytest.raises(TimedOutError) as e:
            acquire_all(rt, wanted, owner="greedy", timeout=0.2)
        assert isinstance(e.value.__cause__, DeviceBusyError)
        # nothing stays held by the loser
        assert rt.info(ids.UART0).owners_count == 0
        assert rt.info(ids.UART1).owners_count == 0
    with holding(rt, wanted, owner="greedy") as leases:
        assert {d for d in leases.leases} == set(wanted)
        assert all(rt.info(d).owners == ("greedy",) for d in wanted)
    assert all(rt.info(d).owners_count == 0 for d in wanted)


def test_global_order_is_independent_of_the_callers_order(rt: Runtime) -> None:
    ids = rt.ids(rt.boards()[0].board)
    a = [ids.UART2, ids.SPI0, ids.UART0]
    assert global_order(a) == global_order(list(reversed(a)))


def test_many_jobs_over_overlapping_sets_never_deadlock(rt: Runtime) -> None:
    """24 jobs, each wanting 3-5 of 12 SINGLE devices in a random order, all at once."""
    pool = [
        rt.ids(b.board)[name] for b in rt.boards() for name in ("UART0", "UART1", "SPI0")
    ]  # fmt: skip
    rng = random.Random(7)
    sets = [rng.sample(pool, rng.randint(3, 5)) for _ in range(24)]
    inside: dict[DeviceId, str] = {}
    clashes: list[str] = []
    lock = threading.Lock()
    start = threading.Barrier(len(sets), timeout=WAIT)

    def job(n: int) -> int:
        owner = f"job-{n}"
        start.wait()
        for _ in range(5):
            leases = acquire_all(rt, sets[n], owner=owner, timeout=WAIT)
            with lock:
                for d in sets[n]:
                    if d in inside:
                        clashes.append(f"{owner} and {inside[d]} both hold {d.key}")
                    inside[d] = owner
            with lock:
                for d in sets[n]:
                    del inside[d]
            release_all(rt, leases)
        return n

    with JobRunner(workers=len(sets)) as runner:
        result = runner.submit(range(len(sets)), job, limit=len(sets)).wait(timeout=WAIT * 2)
    assert result.ok, result.errors
    assert not clashes
    assert all(rt.info(d).owners_count == 0 for d in pool)
