"""Scale curves of the runtime: devices (200 .. 20,000) and caller threads (1, 8, 64).

    python tests/benchmarks/bench_scale.py            # the full curves (issue 14 targets)
    python tests/benchmarks/bench_scale.py --quick    # short curves, for a smoke run
    python tests/benchmarks/bench_scale.py --json     # the figures as JSON

a. Devices: simulated boards of 20 GPIO pins (10, 100 and 1,000 boards); for each size a
   fresh runtime: start-up (wall and process CPU), stop, RSS and OS threads per device,
   ``devices()``, and an acquire+release pair on one pin (median of interleaved slices).
   Targets at 20,000: start <= 5 s, stop <= 2 s, <= 8 KiB per device, devices() <= 0.3 s,
   the pair within 1.2x of the pair at 200 devices.  The 200-device side runs in its own
   process (a process of 200 devices, as the target means), started before each larger
   size; the two sides' slices of pairs take turns, each while the other waits, so each
   ratio compares like with like on this noisy machine.
b. Lease cycle (acquire, open, read, close, release) from 1, 8 and 64 threads, against a
   bare pykka actor answering the same five asks; interleaved rounds; median and p99
   per cycle. Target: runtime <= 1.3x bare at every thread count.

Exits 1 when any target is missed (MISS), 0 when all PASS.
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import json
import os
import select
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import psutil  # type: ignore[import-untyped]
import pykka

from actorhw import Runtime
from actorhw.core.ids import DeviceId

BOARD = "scale20"
PINS = 20
TARGETS = {
    "start_s": 5.0,
    "stop_s": 2.0,
    "kib_per_device": 8.0,
    "devices_s": 0.3,
    "pair_ratio": 1.2,
    "cycle_ratio": 1.3,
}


def write_board(folder: Path) -> None:
    """A board file of PINS simulated GPIO pins."""
    lines = ["[board]", f'name = "{BOARD}"', 'enum = "Scale20"', 'driver = "sim"', "", "[devices]"]
    lines += [f'PIN{i} = {{ kind = "gpio", pin = {i} }}' for i in range(PINS)]
    (folder / f"{BOARD}.toml").write_text("\n".join(lines) + "\n", encoding="utf-8")


def _rss() -> int:
    gc.collect()
    return int(psutil.Process().memory_info().rss)


def _pairs(rt: Runtime, device: DeviceId, n: int) -> float:
    """Microseconds per acquire+release pair over ``n`` pairs."""
    t0 = time.perf_counter()
    for _ in range(n):
        rt.release(rt.acquire(device, owner="bench"))
    return (time.perf_counter() - t0) / n * 1e6


def base_worker(folder: str, boards: int) -> int:
    """``--base-worker FOLDER BOARDS``: the 200-device side, in its own process.  Says
    ``ready``, then for each line ``n`` on stdin times n pairs and answers their
    microseconds per pair; a line ``0`` (or the end of stdin) ends it."""
    with Runtime.start(boards=[BOARD] * boards, boards_dirs=[folder], timeout=300.0) as rt:
        pin = rt.ids(BOARD)["PIN3"]
        rt.release(rt.acquire(pin, owner="warm-up"))
        print("ready", flush=True)
        for line in sys.stdin:
            n = int(line.strip() or 0)
            if n <= 0:
                break
            print(f"{_pairs(rt, pin, n):.3f}", flush=True)
    return 0


class BaseSide:
    """The other process of :func:`base_worker`, asked for one slice at a time."""

    def __init__(self, folder: str, boards: int, *, timeout: float = 120.0) -> None:
        self._timeout = timeout
        self._proc = subprocess.Popen(
            [sys.executable, __file__, "--base-worker", folder, str(boards)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        if self._line() != "ready":
            raise RuntimeError("the base side did not start")

    def _line(self) -> str:
        assert self._proc.stdout is not None
        ready, _, _ = select.select([self._proc.stdout], [], [], self._timeout)
        if not ready:
            raise TimeoutError(f"the base side said nothing within {self._timeout:g} s")
        return self._proc.stdout.readline().strip()

    def pairs(self, n: int) -> float:
        assert self._proc.stdin is not None
        self._proc.stdin.write(f"{n}\n")
        self._proc.stdin.flush()
        return float(self._line())

    def close(self) -> None:
        if self._proc.stdin is not None:
            with contextlib.suppress(BrokenPipeError):
                self._proc.stdin.write("0\n")
                self._proc.stdin.close()
        try:
            self._proc.wait(timeout=self._timeout)
        except subprocess.TimeoutExpired:
            self._proc.kill()
            self._proc.wait(timeout=10)


def pair_us(
    rt: Runtime, device: DeviceId, base: BaseSide, pairs: int, slices: int = 10
) -> tuple[float, float]:
    """Median microseconds of an acquire+release pair here and on the base side, their
    slices taking turns (the order alternates)."""
    here, there = [], []
    n = max(1, pairs // slices)
    for s in range(slices):
        if s % 2:
            here.append(_pairs(rt, device, n))
            there.append(base.pairs(n))
        else:
            there.append(base.pairs(n))
            here.append(_pairs(rt, device, n))
    return statistics.median(here), statistics.median(there)


def one_size(folder: str, boards: int, pairs: int, base: BaseSide) -> dict[str, float]:
    """Start ``boards`` boards of PINS devices, measure, stop; the figures."""
    process = psutil.Process()
    rss0, threads0 = _rss(), process.num_threads()
    cpu0, t0 = time.process_time(), time.perf_counter()
    rt = Runtime.start(boards=[BOARD] * boards, boards_dirs=[folder], timeout=300.0)
    try:
        start_s, start_cpu = time.perf_counter() - t0, time.process_time() - cpu0
        rss1, threads1 = _rss(), process.num_threads()
        t0 = time.perf_counter()
        listed = rt.devices(timeout=60.0)
        devices_s = time.perf_counter() - t0
        assert len(listed) == boards * PINS, len(listed)
        pin = rt.ids(BOARD)["PIN3"]
        rt.release(rt.acquire(pin, owner="warm-up"))
        pair, base_pair = pair_us(rt, pin, base, pairs)
    finally:
        t0 = time.perf_counter()
        rt.stop(timeout=60.0)
        stop_s = time.perf_counter() - t0
    n = boards * PINS
    return {
        "devices": float(n),
        "start_s": start_s,
        "start_cpu_s": start_cpu,
        "stop_s": stop_s,
        "kib_per_device": (rss1 - rss0) / n / 1024,
        "threads_per_device": (threads1 - threads0) / n,
        "devices_s": devices_s,
        "pair_us": pair,
        "base_pair_us": base_pair,
        "pair_ratio": pair / base_pair,
    }


def devices_curve(board_counts: Sequence[int], pairs: int) -> list[dict[str, float]]:
    """Every size in its own runtime, its pair side by side with the smallest size's
    (in a process of its own)."""
    rows = []
    with tempfile.TemporaryDirectory(prefix="actorhw-scale-") as folder:
        write_board(Path(folder))
        Runtime.start(boards=[BOARD], boards_dirs=[folder]).stop()  # imports, warm-up
        for boards in board_counts:
            base = BaseSide(folder, board_counts[0])  # a process of the smallest size
            try:
                rows.append(one_size(folder, boards, pairs, base))
            finally:
                base.close()
    return rows


class Device(pykka.ThreadingActor):
    """The bare baseline of a lease cycle: a pykka actor answering five asks."""

    def on_receive(self, message: Any) -> Any:
        return message


def _cycles(run_one: Callable[[int], None], threads: int, cycles: int) -> list[float]:
    """Seconds per cycle, from ``threads`` threads doing ``cycles`` cycles each."""
    times: list[list[float]] = [[] for _ in range(threads)]
    go = threading.Barrier(threads + 1)

    def worker(k: int) -> None:
        go.wait(30)
        for _ in range(cycles):
            t0 = time.perf_counter()
            run_one(k)
            times[k].append(time.perf_counter() - t0)

    workers = [threading.Thread(target=worker, args=(k,)) for k in range(threads)]
    for w in workers:
        w.start()
    go.wait(30)
    for w in workers:
        w.join(300)
    return [t for per in times for t in per]


def lease_cycle_curve(
    thread_counts: Sequence[int], cycles: int, rounds: int
) -> list[dict[str, Any]]:
    """Runtime lease cycle against the bare pykka one, at each thread count."""
    rows = []
    most = max(thread_counts)
    with tempfile.TemporaryDirectory(prefix="actorhw-scale-") as folder:
        write_board(Path(folder))
        boards = -(-most // PINS)  # one pin per thread
        with Runtime.start(boards=[BOARD] * boards, boards_dirs=[folder], timeout=60) as rt:
            names = [BOARD] + [f"{BOARD}-{i}" for i in range(2, boards + 1)]
            pins = [rt.ids(b)[f"PIN{i}"] for b in names for i in range(PINS)]
            bare = [Device.start() for _ in range(most)]
            try:

                def runtime_cycle(k: int) -> None:
                    lease = rt.acquire(pins[k], owner=f"t{k}")
                    rt.open(lease)
                    rt.use(lease, "read")
                    rt.close(lease)
                    rt.release(lease)

                def bare_cycle(k: int) -> None:
                    ref = bare[k]
                    for step in ("acquire", "open", "read", "close", "release"):
                        ref.ask(step, timeout=5.0)

                for threads in thread_counts:
                    samples: dict[str, list[float]] = {"runtime": [], "bare": []}
                    ratios = []
                    for r in range(rounds + 1):  # round 0 warms up
                        order = ("runtime", "bare") if r % 2 else ("bare", "runtime")
                        medians = {}
                        for name in order:
                            cycle = runtime_cycle if name == "runtime" else bare_cycle
                            got = _cycles(cycle, threads, cycles)
                            medians[name] = statistics.median(got)
                            if r:
                                samples[name] += got
                        if r:
                            ratios.append(medians["runtime"] / medians["bare"])
                    rows.append(
                        {
                            "threads": threads,
                            "runtime_us": statistics.median(samples["runtime"]) * 1e6,
                            "runtime_p99_us": _p99(samples["runtime"]) * 1e6,
                            "bare_us": statistics.median(samples["bare"]) * 1e6,
                            "bare_p99_us": _p99(samples["bare"]) * 1e6,
                            "ratio": statistics.median(ratios),
                        }
                    )
            finally:
                for ref in bare:
                    ref.stop()
    return rows


def _p99(values: list[float]) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(0.99 * len(ordered)))]


def report(figures: dict[str, Any]) -> tuple[list[str], bool]:
    """The curves as lines with PASS/MISS; and whether every target passed."""
    ok = True

    def verdict(passed: bool) -> str:
        nonlocal ok
        ok &= passed
        return "PASS" if passed else "MISS"

    t = TARGETS
    base = f"{figures['devices'][0]['devices']:.0f}"
    lines = [
        f"a. devices (boards of {PINS} simulated pins; {os.cpu_count()} CPUs, load "
        f"{os.getloadavg()[0]:.1f})",
        f"   {'devices':>8} {'start s':>8} {'(cpu s)':>8} {'stop s':>7} {'KiB/dev':>8} "
        f"{'thr/dev':>8} {'devices() s':>11} {'pair us':>8} {'vs ' + base:>7}",
    ]
    for row in figures["devices"]:
        lines.append(
            f"   {row['devices']:>8.0f} {row['start_s']:>8.2f} {row['start_cpu_s']:>8.2f} "
            f"{row['stop_s']:>7.2f} {row['kib_per_device']:>8.1f} "
            f"{row['threads_per_device']:>8.3f} {row['devices_s']:>11.3f} "
            f"{row['pair_us']:>8.1f} {row['pair_ratio']:>6.2f}x"
        )
    big = figures["devices"][-1]
    n = f"{big['devices']:.0f}"
    checks = [
        (f"start of {n} devices", f"{big['start_s']:.2f} s", f"<= {t['start_s']:g} s",
         big["start_s"] <= t["start_s"]),
        (f"stop of {n} devices", f"{big['stop_s']:.2f} s", f"<= {t['stop_s']:g} s",
         big["stop_s"] <= t["stop_s"]),
        ("memory per device", f"{big['kib_per_device']:.1f} KiB",
         f"<= {t['kib_per_device']:g} KiB", big["kib_per_device"] <= t["kib_per_device"]),
        (f"devices() of {n}", f"{big['devices_s']:.3f} s", f"<= {t['devices_s']:g} s",
         big["devices_s"] <= t["devices_s"]),
        (f"acquire+release at {n} vs at {base}", f"{big['pair_ratio']:.2f}x "
         f"({big['pair_us']:.1f} vs {big['base_pair_us']:.1f} us)",
         f"<= {t['pair_ratio']:g}x", big["pair_ratio"] <= t["pair_ratio"]),
    ]  # fmt: skip
    for label, figure, target, passed in checks:
        lines.append(f"   {label:<36} {figure:<28} target {target:<10} {verdict(passed)}")
    lines.append("b. lease cycle (acquire, open, read, close, release) vs bare pykka, 5 asks")
    lines.append(
        f"   {'threads':>7} {'runtime us':>10} {'p99':>8} {'bare us':>8} {'p99':>8} {'ratio':>7}"
    )
    for row in figures["cycles"]:
        passed = row["ratio"] <= t["cycle_ratio"]
        lines.append(
            f"   {row['threads']:>7} {row['runtime_us']:>10.1f} {row['runtime_p99_us']:>8.1f} "
            f"{row['bare_us']:>8.1f} {row['bare_p99_us']:>8.1f} {row['ratio']:>6.2f}x  "
            f"target <= {t['cycle_ratio']:g}x {verdict(passed)}"
        )
    return lines, ok


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="short curves, for a smoke run")
    parser.add_argument("--json", action="store_true", help="print the figures as JSON")
    parser.add_argument(
        "--base-worker", nargs=2, metavar=("FOLDER", "BOARDS"), help=argparse.SUPPRESS
    )
    args = parser.parse_args(argv)
    if args.base_worker:
        return base_worker(args.base_worker[0], int(args.base_worker[1]))
    if args.quick:
        figures = {
            "devices": devices_curve([2, 20], pairs=200),
            "cycles": lease_cycle_curve([1, 8], cycles=50, rounds=2),
        }
    else:
        figures = {
            "devices": devices_curve([10, 100, 1000], pairs=2000),
            "cycles": lease_cycle_curve([1, 8, 64], cycles=300, rounds=5),
        }
    lines, ok = report(figures)
    print(json.dumps({**figures, "pass": ok}, indent=2) if args.json else "\n".join(lines))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
