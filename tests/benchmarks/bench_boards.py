"""Many boards: aggregate exec throughput through the runtime against bare pyserial loops.

    python tests/benchmarks/bench_boards.py            # N = 1, 2, 4, 8, 16 QEMU micro:bits
    python tests/benchmarks/bench_boards.py --quick    # N = 1, 2

For each N: N QEMU micro:bits in one Runtime (one caller thread per board, each looping
``Board.exec("print(1+1)")``) and N more QEMU micro:bits driven by bare pyserial raw-REPL
loops (one thread per board).  Both sets stay up for the whole size, and windows of
``seconds`` alternate between them (rounds), so both see the same machine; the figure is
calls per second summed over the boards, the ratio the median of per-round ratios.
Target (issue 14): runtime >= 0.85x bare at every N.  Exits 1 on a MISS.
"""

from __future__ import annotations

import argparse
import contextlib
import statistics
import sys
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

from bench_exec import Bench

from actorhw import Board, Runtime
from actorhw.links import QemuMicrobit

TARGET = 0.85
CODE = b"print(1+1)"
EXPECTED = b"OK2\r\n\x04\x04>"


def _window(loops: Sequence[Callable[[threading.Event], int]], seconds: float) -> float:
    """Run every loop in its own thread for ``seconds``; calls per second in all."""
    stop = threading.Event()
    counts = [0] * len(loops)

    def run(i: int) -> None:
        counts[i] = loops[i](stop)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(loops))]
    t0 = time.perf_counter()
    for t in threads:
        t.start()
    stop.wait(seconds)
    stop.set()
    for t in threads:
        t.join(30)
    return sum(counts) / (time.perf_counter() - t0)


def one_size(n: int, rounds: int, seconds: float) -> dict[str, float]:
    """Calls per second through the runtime and bare, with ``n`` boards each."""
    with contextlib.ExitStack() as stack:
        rt = stack.enter_context(Runtime.start(boards=["microbit-qemu"] * n, timeout=120))
        names = ["microbit-qemu"] + [f"microbit-qemu-{i}" for i in range(2, n + 1)]
        boards = [
            stack.enter_context(rt.lease(Board, rt.ids(name)["BOARD"], owner="bench"))
            for name in names
        ]
        benches = []
        for i in range(n):
            qemu = stack.enter_context(QemuMicrobit(name=f"bare-{i}"))
            bench = Bench(qemu.power_on(timeout=60))
            stack.callback(bench.close)
            benches.append(bench)

        def runtime_loop(board: Board) -> Callable[[threading.Event], int]:
            def loop(stop: threading.Event) -> int:
                calls = 0
                while not stop.is_set():
                    out = board.exec("print(1+1)", timeout=10)
                    assert out == "2\n", out
                    calls += 1
                return calls

            return loop

        def bare_loop(bench: Bench) -> Callable[[threading.Event], int]:
            def loop(stop: threading.Event) -> int:
                calls = 0
                while not stop.is_set():
                    if bench.call_bare(CODE, EXPECTED) is not None:
                        calls += 1
                return calls

            return loop

        runtime_loops = [runtime_loop(b) for b in boards]
        bare_loops = [bare_loop(b) for b in benches]
        _window(runtime_loops, 0.3)  # warm-up
        _window(bare_loops, 0.3)
        runs: dict[str, list[float]] = {"runtime": [], "bare": []}
        ratios = []
        for r in range(rounds):
            order = ("runtime", "bare") if r % 2 else ("bare", "runtime")
            got = {}
            for name in order:
                got[name] = _window(runtime_loops if name == "runtime" else bare_loops, seconds)
                runs[name].append(got[name])
            ratios.append(got["runtime"] / got["bare"])
    return {
        "boards": float(n),
        "runtime_cps": statistics.median(runs["runtime"]),
        "bare_cps": statistics.median(runs["bare"]),
        "ratio": statistics.median(ratios),
    }


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="N = 1, 2 and short windows")
    args = parser.parse_args(argv)
    sizes = (1, 2) if args.quick else (1, 2, 4, 8, 16)
    rounds, seconds = (2, 0.5) if args.quick else (4, 2.0)
    print(f"aggregate print(1+1) calls/s, QEMU micro:bits, one caller per board, {rounds} "
          f"alternating windows of {seconds:g} s")  # fmt: skip
    print(f"  {'boards':>6} {'runtime/s':>10} {'bare/s':>10} {'ratio':>7}")
    ok = True
    for n in sizes:
        row = one_size(n, rounds, seconds)
        passed = row["ratio"] >= TARGET
        ok &= passed
        print(
            f"  {n:>6} {row['runtime_cps']:>10.0f} {row['bare_cps']:>10.0f} {row['ratio']:>6.2f}x"
            f"  target >= {TARGET:g}x {'PASS' if passed else 'MISS'}"
        )
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
