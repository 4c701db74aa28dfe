"""Resource management costs, measured side by side in one run (interleaved rounds,
medians), each line with its target and PASS/MISS.

a. Limiter overhead per operation: ``Runtime.use`` (admit + finish at the limiter)
   against the same Use ask without the limiter, on a simulated pin.
b. Monitoring overhead: exec throughput on 8 QEMU micro:bits (issue 14) with the monitor sampling
   each at 1 Hz against none, in rounds of one window each (the order alternating); the
   drop is the median of the rounds' drops.
c. Scheduling: 8 QEMU micro:bits, 10 operations each of a 100 ms board-side sleep, at
   most 4 at once globally: the makespan against the ideal 2 s.

    python tests/benchmarks/bench_resources.py [--quick]

Exits 1 when any target is missed (a MISS line).
"""

from __future__ import annotations

import argparse
import collections
import concurrent.futures
import contextlib
import os
import statistics
import threading
import time
from typing import Any

from actorhw import Board, DeviceState, Runtime
from actorhw.core.errors import ActorHwError
from actorhw.core.messages import Lease, Use
from actorhw.drivers.board_driver import PendingIO


def _plain_use(rt: Runtime, lease: Lease, op: str) -> Any:
    """What Runtime.use did before the limiter: one ask, then the pending I/O."""
    result = rt._ask(lease.device, Use(lease=lease, op=op), 5.0)
    return result.wait(timeout=5.0) if isinstance(result, PendingIO) else result


def limiter_overhead(rounds: int, calls: int) -> dict[str, float]:
    """Median microseconds per operation with and without the limiter."""
    with Runtime.start(boards=["microbit"]) as rt:
        ids = rt.ids("microbit")
        with rt.lease(ids.PIN0, owner="bench") as pin:
            assert pin.lease is not None
            lease = pin.lease
            runs: dict[str, list[float]] = {"limited": [], "plain": []}
            for r in range(rounds + 1):  # round 0 warms up
                for name in ("limited", "plain") if r % 2 else ("plain", "limited"):
                    t0 = time.perf_counter()
                    for _ in range(calls):
                        if name == "limited":
                            rt.use(lease, "read")
                        else:
                            _plain_use(rt, lease, "read")
                    if r:
                        runs[name].append((time.perf_counter() - t0) / calls * 1e6)
    limited, plain = statistics.median(runs["limited"]), statistics.median(runs["plain"])
    return {"limited_us": limited, "plain_us": plain, "overhead_us": limited - plain}


def _exec_loop(
    rt: Runtime, board: str, stop: threading.Event, counts: list[int], errors: list[str], i: int
) -> None:
    """Exec on ``board`` until ``stop``: a failed call is counted (its error code in
    ``errors``), the lease taken again once the board is connected, and the loop goes on."""
    device = rt.ids(board).BOARD  # type: ignore[attr-defined]
    while not stop.is_set():
        try:
            with rt.lease(Board, device, owner=f"bench-{i}") as b:
                while not stop.is_set():
                    b.exec("print(1+1)", timeout=5.0)
                    counts[i] += 1
        except ActorHwError as exc:
            errors.append(exc.code)
            with contextlib.suppress(ActorHwError):
                rt.wait_for_device(device, DeviceState.CONNECTED, timeout=5.0)


def monitoring_overhead(
    rt: Runtime, boards: list[str], rounds: int, seconds: float
) -> dict[str, Any]:
    """Median exec calls per second on ``boards`` with 1 Hz monitoring and without, the
    drop, and the codes of calls that failed (with their counts)."""
    runs: dict[str, list[float]] = {"monitored": [], "none": []}
    errors: list[str] = []
    board_ids = [rt.ids(b).BOARD for b in boards]  # type: ignore[attr-defined]
    for r in range(rounds):
        for name in ("monitored", "none") if r % 2 == 0 else ("none", "monitored"):
            if name == "monitored":
                for device in board_ids:
                    rt.monitor.start(device, interval=1.0)
            counts = [0] * len(boards)
            stop = threading.Event()
            with concurrent.futures.ThreadPoolExecutor(len(boards)) as pool:
                futures = [
                    pool.submit(_exec_loop, rt, b, stop, counts, errors, i)
                    for i, b in enumerate(boards)
                ]
                t0 = time.perf_counter()
                stop.wait(seconds)  # the measuring window itself
                stop.set()
                for f in futures:
                    f.result(timeout=10)
                elapsed = time.perf_counter() - t0
            if name == "monitored":
                for device in board_ids:
                    rt.monitor.stop(device)
            runs[name].append(sum(counts) / elapsed)
    monitored, none = statistics.median(runs["monitored"]), statistics.median(runs["none"])
    # Each round's two windows saw the same machine: the drop is the median of the rounds'
    # (a ratio of medians mixes windows minutes apart on a machine whose load drifts).
    drops = [1 - m / n for m, n in zip(runs["monitored"], runs["none"], strict=True)]
    samples = sum(len(rt.monitor.history(d)) for d in board_ids)
    return {"monitored_cps": monitored, "none_cps": none, "drop": statistics.median(drops),
            "drop_min": min(drops), "drop_max": max(drops), "samples": float(samples),
            "errors": dict(collections.Counter(errors))}  # fmt: skip


def scheduling(rt: Runtime, boards: list[str], ops: int) -> dict[str, float]:
    """Makespan of ``ops`` 100 ms board-side sleeps on each board, 4 at once globally."""
    rt.limiter.configure(max_global=4)
    peak = [0]
    lock = threading.Lock()

    def device_ops(board: str) -> None:
        ids = rt.ids(board)
        with rt.lease(Board, ids.BOARD, owner=f"sched-{board}") as b:
            for _ in range(ops):
                b.exec("import utime\nutime.sleep_ms(100)", timeout=30.0)

    def watch(stop: threading.Event) -> None:
        while not stop.wait(0.02):
            with lock:
                peak[0] = max(peak[0], rt.limiter.statistics().active)

    stop = threading.Event()
    watcher = threading.Thread(target=watch, args=(stop,))
    watcher.start()
    t0 = time.perf_counter()
    with concurrent.futures.ThreadPoolExecutor(len(boards)) as pool:
        for f in [pool.submit(device_ops, b) for b in boards]:
            f.result(timeout=120)
    makespan = time.perf_counter() - t0
    stop.set()
    watcher.join()
    ideal = len(boards) * ops * 0.1 / 4
    return {"makespan_s": makespan, "ideal_s": ideal, "ratio": makespan / ideal,
            "peak_active": float(peak[0])}  # fmt: skip


def _line(label: str, figure: str, target: str, ok: bool) -> str:
    return f"{label:<48} {figure:<40} target {target:<12} {'PASS' if ok else 'MISS'}"


TARGET_LIMITER_US = 15.0
"""a: limiter admission + finish per operation when no limit is reached (issue 14)."""


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a short run")
    quick = parser.parse_args().quick
    print(f"cores: {os.cpu_count()}  mode: {'quick' if quick else 'full'}")
    lines = []
    lim = limiter_overhead(rounds=3 if quick else 9, calls=1000 if quick else 3000)
    figure = f"{lim['overhead_us']:.1f} us ({lim['limited_us']:.1f} vs {lim['plain_us']:.1f})"
    target = f"<= {TARGET_LIMITER_US:g} us"
    passed = lim["overhead_us"] <= TARGET_LIMITER_US
    lines.append(_line("a. limiter overhead per operation", figure, target, passed))
    print(lines[-1])
    names = ["microbit-qemu"] + [f"microbit-qemu-{i}" for i in range(2, 9)]
    with Runtime.start(boards=["microbit-qemu"] * 8, timeout=60) as rt:
        mon = monitoring_overhead(rt, names, rounds=2 if quick else 12,
                                  seconds=1.5 if quick else 3.0)  # fmt: skip
        lines.append(_line("b. exec throughput, 8 boards, 1 Hz monitoring",
                    f"{mon['monitored_cps']:.0f}/s vs {mon['none_cps']:.0f}/s ({mon['drop']:+.1%} "
                    f"lower, paired by round [{mon['drop_min']:+.1%} .. {mon['drop_max']:+.1%}]"
                    + (f"; calls failed: {mon['errors']}" if mon["errors"] else "") + ")",
                    "<= 2% lower, no call failed",
                    mon["drop"] <= 0.02 and not mon["errors"]))  # fmt: skip
        print(lines[-1])
        sched = scheduling(rt, names, ops=2 if quick else 10)
        lines.append(_line("c. 8 boards x ops of 100 ms sleep, max 4 at once",
                    f"{sched['makespan_s']:.2f} s vs ideal {sched['ideal_s']:.1f} s "
                    f"({sched['ratio']:.2f}x, peak {sched['peak_active']:.0f})",
                    "<= 1.1x", sched["ratio"] <= 1.1))  # fmt: skip
        print(lines[-1])
    return 1 if any(line.endswith("MISS") for line in lines) else 0


if __name__ == "__main__":
    raise SystemExit(main())
