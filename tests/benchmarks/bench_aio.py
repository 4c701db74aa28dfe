"""What the asyncio facade costs, measured side by side in one run.

    python tests/benchmarks/bench_aio.py            # full run
    python tests/benchmarks/bench_aio.py --quick    # a few seconds, for a smoke check

a. ``await art.info(id)`` on the event loop vs ``rt.info(id)`` called directly, on the
   same runtime and device. The await adds a hand-off to a worker thread and a wake-up
   of the loop, two thread wake-ups the blocking call does not pay; the target is on
   that added time: <= 200 us per call (a small part of one HTTP request, and nothing
   next to a board round trip, which is milliseconds);
b. an event published on a thread and awaited through ``AsyncSubscription.get`` vs the
   same event read by a thread blocked in ``Subscription.get`` (the pump thread adds one
   wake-up): target <= 100 us added per event.

The ratios are printed too. On a shared 2-vCPU VM a thread wake-up costs tens of us,
so against a 25 us ask the ratio is large (about 4x) while the added time is small.

Rounds interleave the measures in a rotating order on the same machine; figures are
medians over rounds, and ratios medians of per-round ratios.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import threading
import time
from typing import Any

from actorhw.api.aio import AsyncRuntime

TARGET_CALL_ADDED_US = 200.0
"""a: microseconds an await may add to the blocking call it wraps."""
TARGET_EVENT_ADDED_US = 100.0
"""b: microseconds the pump may add to an event's delivery."""


async def _call_aio(art: AsyncRuntime, device: Any, n: int) -> int:
    start = time.perf_counter_ns()
    for _ in range(n):
        await art.info(device)
    return time.perf_counter_ns() - start


def _call_sync(art: AsyncRuntime, device: Any, n: int) -> int:
    start = time.perf_counter_ns()
    for _ in range(n):
        art.runtime.info(device)
    return time.perf_counter_ns() - start


async def _event_aio(art: AsyncRuntime, n: int) -> int:
    """n events, each published from a thread once the previous one arrived."""
    total = 0
    async with art.subscribe() as sub:
        go = threading.Semaphore(0)
        sent: list[int] = []

        def publisher() -> None:
            for i in range(n):
                if not go.acquire(timeout=10):
                    return
                sent.append(time.perf_counter_ns())
                art.runtime.events.publish(("bench", i))

        thread = threading.Thread(target=publisher)
        thread.start()
        for _ in range(n):
            go.release()
            await sub.get(timeout=10)
            total += time.perf_counter_ns() - sent[-1]
        thread.join(timeout=10)
    return total


def _event_sync(art: AsyncRuntime, n: int) -> int:
    total = 0
    with art.runtime.subscribe() as sub:
        go = threading.Semaphore(0)
        sent: list[int] = []

        def publisher() -> None:
            for i in range(n):
                if not go.acquire(timeout=10):
                    return
                sent.append(time.perf_counter_ns())
                art.runtime.events.publish(("bench", i))

        thread = threading.Thread(target=publisher)
        thread.start()
        for _ in range(n):
            go.release()
            sub.get(timeout=10)
            total += time.perf_counter_ns() - sent[-1]
        thread.join(timeout=10)
    return total


async def measure(*, rounds: int, calls: int, events: int) -> dict[str, Any]:
    """Run every measure ``rounds`` times, interleaved; ns per operation per round."""
    samples: dict[str, list[float]] = {
        k: [] for k in ("call_aio", "call_sync", "ev_aio", "ev_sync")
    }
    async with AsyncRuntime.start(boards=["same70-xplained"]) as art:
        device = (await art.ids("same70-xplained")).UART0
        loop = asyncio.get_running_loop()
        steps = {
            "call_aio": lambda: _call_aio(art, device, calls),
            "call_sync": lambda: loop.run_in_executor(None, _call_sync, art, device, calls),
            "ev_aio": lambda: _event_aio(art, events),
            "ev_sync": lambda: loop.run_in_executor(None, _event_sync, art, events),
        }
        names = list(steps)
        for r in range(rounds + 1):  # the first round warms up and is dropped
            order = names[r % len(names) :] + names[: r % len(names)]
            for name in order:
                ns = await steps[name]()
                if r:
                    samples[name].append(ns / (calls if name.startswith("call") else events))
    return samples


def report(samples: dict[str, list[float]]) -> list[str]:
    def med(name: str) -> float:
        return statistics.median(samples[name]) / 1000

    def ratio(a: str, b: str) -> float:
        return statistics.median(x / y for x, y in zip(samples[a], samples[b], strict=True))

    call_ratio = ratio("call_aio", "call_sync")
    ev_ratio = ratio("ev_aio", "ev_sync")
    call_added = med("call_aio") - med("call_sync")
    ev_added = med("ev_aio") - med("ev_sync")
    return [
        f"a. await art.info() {med('call_aio'):7.1f} us | rt.info() {med('call_sync'):7.1f} us"
        f" | ratio {call_ratio:4.2f}x | added {call_added:6.1f} us"
        f" (target <= {TARGET_CALL_ADDED_US:.0f} us) "
        + ("PASS" if call_added <= TARGET_CALL_ADDED_US else "MISS"),
        f"b. event via AsyncSubscription {med('ev_aio'):7.1f} us | via Subscription"
        f" {med('ev_sync'):7.1f} us | ratio {ev_ratio:4.2f}x | added {ev_added:6.1f} us"
        f" (target <= {TARGET_EVENT_ADDED_US:.0f} us) "
        + ("PASS" if ev_added <= TARGET_EVENT_ADDED_US else "MISS"),
    ]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a short run")
    args = parser.parse_args(argv)
    if args.quick:
        samples = asyncio.run(measure(rounds=3, calls=50, events=20))
    else:
        samples = asyncio.run(measure(rounds=15, calls=500, events=200))
    lines = report(samples)
    for line in lines:
        print(line)
    return 1 if any(line.endswith("MISS") for line in lines) else 0


if __name__ == "__main__":
    sys.exit(main())
