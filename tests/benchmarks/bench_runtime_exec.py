"""Exec through the whole runtime against the bare pyserial raw-REPL floor, interleaved.

Two QEMU micro:bits: one driven by a Runtime (Board.exec: ask to the device actor,
PendingIO on the board's I/O thread, raw-REPL link), one by a bare pyserial loop.
Calls alternate, so both see the same machine noise, and which goes first alternates
too.  Host CPU per call is this process's CPU time (every thread: caller, scheduler,
I/O thread; QEMU not included).

Targets (issue 14): runtime <= 1.2x bare for print(1+1) (the median of the calls'
paired ratios: each runtime call against the bare call next to it), host CPU per call
<= 1.5x bare; 1 KiB snippet <= 1.5x bare.  Exits 1 on a MISS.

    python tests/benchmarks/bench_runtime_exec.py [--quick] [calls]
"""

from __future__ import annotations

import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

from bench_exec import Bench, make_snippet

from actorhw import Board, Runtime
from actorhw.links import QemuMicrobit

TARGET_RATIO = 1.2
"""print(1+1): runtime median / bare median."""
TARGET_CPU = 1.5
"""print(1+1): host CPU per call, runtime / bare."""


def _p95(values: list[float]) -> float:
    ordered = sorted(values)
    return ordered[int(0.95 * (len(ordered) - 1))]


def run(calls: int = 600) -> dict[str, float]:
    """Median seconds per call of each client, for print(1+1) and a 1 KiB snippet."""
    figures: dict[str, float] = {}
    with (
        QemuMicrobit(name="bare") as bare_board,
        Runtime.start(boards=["microbit-qemu"], timeout=30) as rt,
    ):
        bench = Bench(bare_board.power_on(timeout=15))
        ids = rt.ids("microbit-qemu")
        with rt.lease(Board, ids.BOARD, owner="bench") as board:
            snippet = make_snippet(1024)
            for label, code, n in (("print(1+1)", b"print(1+1)", calls),
                                   ("1 KiB snippet", snippet, max(30, calls // 5))):  # fmt: skip
                text = code.decode()
                expected_out = board.exec(text, timeout=10)
                expected = b"OK" + expected_out.encode().replace(b"\n", b"\r\n") + b"\x04\x04>"
                rt_times: list[float] = []
                bare_times: list[float] = []
                pairs: list[float] = []  # runtime / bare, call by call
                rt_cpu = bare_cpu = 0.0
                for i in range(n):
                    # Which client goes first alternates: the one that follows the other
                    # finds the machine in another state (measured: three links on three
                    # boards in a fixed order gave 0.68x-1.0x of the bare loop, in a
                    # rotating order 0.95x-0.99x).
                    bare: float | None = None
                    rt_call_cpu = bare_call_cpu = 0.0
                    for client in ("bare", "runtime") if i % 2 else ("runtime", "bare"):
                        c0 = time.process_time()
                        if client == "runtime":
                            t0 = time.perf_counter()
                            out = board.exec(text, timeout=10)
                            rt_times.append(time.perf_counter() - t0)
                            rt_call_cpu = time.process_time() - c0
                            assert out == expected_out, out
                        else:
                            bare = bench.call_bare(code, expected)
                            bare_call_cpu = time.process_time() - c0
                    if bare is not None:
                        bare_times.append(bare)
                        pairs.append(rt_times[-1] / bare)
                        rt_cpu, bare_cpu = rt_cpu + rt_call_cpu, bare_cpu + bare_call_cpu
                figures[f"{label} runtime cpu"] = rt_cpu / max(1, len(bare_times))
                figures[f"{label} bare cpu"] = bare_cpu / max(1, len(bare_times))
                figures[f"{label} runtime median"] = statistics.median(rt_times)
                figures[f"{label} runtime p95"] = _p95(rt_times)
                figures[f"{label} bare median"] = statistics.median(bare_times)
                figures[f"{label} bare p95"] = _p95(bare_times)
                figures[f"{label} paired ratio"] = statistics.median(pairs)
        bench.close()
    return figures


def main(argv: list[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    quick = "--quick" in args
    calls = [a for a in args if a != "--quick"]
    figures = run(int(calls[0]) if calls else 60 if quick else 600)
    print(
        f"{'call':<16}{'client':<28}{'median ms':>10}{'p95 ms':>10}{'vs bare':>9}"
        f"{'CPU us/call':>13}{'vs bare':>9}"
    )
    for label in ("print(1+1)", "1 KiB snippet"):
        floor = figures[f"{label} bare median"]
        cpu_floor = figures[f"{label} bare cpu"]
        for client, key in (("actorhw Board.exec (runtime)", "runtime"), ("bare pyserial", "bare")):
            med = figures[f"{label} {key} median"]
            p95 = figures[f"{label} {key} p95"]
            cpu = figures[f"{label} {key} cpu"]
            print(
                f"{label:<16}{client:<28}{med * 1e3:>10.3f}{p95 * 1e3:>10.3f}{med / floor:>8.2f}x"
                f"{cpu * 1e6:>13.1f}{cpu / cpu_floor:>8.2f}x"
            )
    small = figures["print(1+1) runtime median"]
    # The median of the calls' paired ratios: each runtime call against the bare call
    # next to it, so a slow stretch of the shared machine weighs on both alike.
    small_ratio = figures["print(1+1) paired ratio"]
    medians_ratio = small / figures["print(1+1) bare median"]
    big_ratio = figures["1 KiB snippet runtime median"] / figures["1 KiB snippet bare median"]
    cpu_ratio = figures["print(1+1) runtime cpu"] / figures["print(1+1) bare cpu"]
    checks = [
        (small <= 1e-3, f"runtime median <= 1.0 ms: {small * 1e3:.3f} ms"),
        (cpu_ratio <= TARGET_CPU, f"host CPU per call <= {TARGET_CPU:g}x bare: {cpu_ratio:.2f}x"),
        (
            small_ratio <= TARGET_RATIO,
            f"runtime <= {TARGET_RATIO:g}x bare: {small_ratio:.2f}x (median of paired "
            f"ratios; ratio of medians {medians_ratio:.2f}x)",
        ),
        (big_ratio <= 1.5, f"1 KiB runtime <= 1.5x bare: {big_ratio:.2f}x"),
    ]
    for ok, label in checks:
        print(f"{'PASS' if ok else 'MISS'}  {label}")
    return 0 if all(ok for ok, _ in checks) else 1


if __name__ == "__main__":
    raise SystemExit(main())
