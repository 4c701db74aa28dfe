"""Many boards: aggregate exec throughput through the runtime against bare pyserial loops.

    python tests/benchmarks/bench_boards.py            # N = 1, 2, 4, 8, 16 QEMU micro:bits
                                                       # and N = 8, 32 unix-port boards
    python tests/benchmarks/bench_boards.py --quick    # N = 1, 2 QEMU, N = 2 unix port
    python tests/benchmarks/bench_boards.py --kind qemu --sizes 4,16   # chosen sizes

For each N: N boards in one Runtime (one caller thread per board, each looping
``Board.exec("print(1+1)")``) and N more boards of the same kind driven by bare pyserial
raw-REPL loops (one thread per board).  The boards are QEMU micro:bits, or MicroPython
1.29 unix-port boards on socat ptys (tests/unix_port.py: cheap, so 32 of each fit).
Both sets stay up for the whole size, and windows of
``seconds`` alternate between them (rounds), so both see the same machine; the figure is
calls per second summed over the boards, the ratio the median of per-round ratios.
The runtime's limiter admits N operations at once (``rt.limiter.configure(max_global=N)``;
its default, 4, would cap the runtime's side at 4 boards).
Target (issue 14): runtime >= 0.85x bare at every N.  Exits 1 on a MISS.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib.util
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from types import ModuleType

sys.path.insert(0, str(Path(__file__).parent))

from bench_exec import Bench

from actorhw import Board, Runtime
from actorhw.api.runtime import BoardSpec
from actorhw.links import QemuMicrobit

TARGET = 0.85
CODE = b"print(1+1)"
EXPECTED = b"OK2\r\n\x04\x04>"
KINDS = {"qemu": "QEMU micro:bit", "unix": "unix port"}


def _unix_port() -> ModuleType:
    path = Path(__file__).resolve().parents[1] / "unix_port.py"
    spec = importlib.util.spec_from_file_location("unix_port", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


Boards = tuple[Runtime, list[Board], list[Bench]]


def _qemu_boards(stack: contextlib.ExitStack, n: int) -> Boards:
    rt = stack.enter_context(Runtime.start(boards=["microbit-qemu"] * n, timeout=120))
    names = ["microbit-qemu"] + [f"microbit-qemu-{i}" for i in range(2, n + 1)]
    boards = [
        stack.enter_context(rt.lease(Board, rt.ids(name)["BOARD"], owner="bench")) for name in names
    ]
    benches = []
    for i in range(n):
        qemu = stack.enter_context(QemuMicrobit(name=f"bare-{i}"))
        bench = Bench(qemu.power_on(timeout=60))
        stack.callback(bench.close)
        benches.append(bench)
    return rt, boards, benches


def _unix_boards(stack: contextlib.ExitStack, n: int) -> Boards:
    unix_port = _unix_port()
    reason = unix_port.unavailable()
    if reason is not None:
        raise SystemExit(f"cannot benchmark unix-port boards: {reason}")
    folder = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="bench-boards-")))
    paths = []
    for i in range(2 * n):
        path = folder / f"ttyMP{i}"
        stack.callback(unix_port.kill, unix_port.start(path))
        paths.append(path)
    specs = [BoardSpec("micropython", f"mp{i}", port=str(p)) for i, p in enumerate(paths[:n])]
    rt = stack.enter_context(Runtime.start(boards=specs, timeout=120))
    boards = [
        stack.enter_context(rt.lease(Board, rt.ids(f"mp{i}")["BOARD"], owner="bench"))
        for i in range(n)
    ]
    benches = []
    for path in paths[n:]:
        bench = Bench(str(path))
        stack.callback(bench.close)
        benches.append(bench)
    return rt, boards, benches


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


def one_size(n: int, rounds: int, seconds: float, kind: str = "qemu") -> dict[str, float]:
    """Calls per second through the runtime and bare, with ``n`` boards of ``kind`` each."""
    with contextlib.ExitStack() as stack:
        rt, boards, benches = (_qemu_boards if kind == "qemu" else _unix_boards)(stack, n)
        # One operation per board at once: the limiter's default (4 in the runtime) would
        # cap the runtime's side at 4 boards, whatever N.
        rt.limiter.configure(max_global=max(4, n))

        def runtime_loop(board: Board) -> Callable[[threading.Event], int]:
            def loop(stop: threading.Event) -> int:
                calls = 0
                while not stop.is_set():
                    out = board.exec("print(1+1)", timeout=10)
                    assert out.replace("\r", "") == "2\n", out
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
    parser.add_argument(
        "--kind", choices=("all", *KINDS), default="all", help="which boards (default: all)"
    )
    parser.add_argument(
        "--sizes", type=lambda text: tuple(int(n) for n in text.split(",")), default=None,
        help="board counts to measure, e.g. 4,16 (default: 1,2,4,8,16 QEMU and 8,32 unix)",
    )  # fmt: skip
    args = parser.parse_args(argv)
    sizes = {"qemu": (1, 2), "unix": (2,)} if args.quick else {"qemu": (1, 2, 4, 8, 16),
                                                                "unix": (8, 32)}  # fmt: skip
    if args.sizes:
        sizes = {"qemu": args.sizes, "unix": args.sizes}
    # Many short windows: both sides see the same moments of a shared machine (other
    # work comes in bursts of seconds), and the median of their paired ratios holds.
    rounds, seconds = (2, 0.5) if args.quick else (10, 0.8)
    print(f"aggregate print(1+1) calls/s, one caller per board, {rounds} "
          f"alternating windows of {seconds:g} s")  # fmt: skip
    print(f"  {'board':<16}{'boards':>6} {'runtime/s':>10} {'bare/s':>10} {'ratio':>7}")
    ok = True
    for kind, label in KINDS.items():
        if args.kind not in ("all", kind):
            continue
        for n in sizes[kind]:
            row = one_size(n, rounds, seconds, kind)
            passed = row["ratio"] >= TARGET
            ok &= passed
            print(
                f"  {label:<16}{n:>6} {row['runtime_cps']:>10.0f} {row['bare_cps']:>10.0f} "
                f"{row['ratio']:>6.2f}x  target >= {TARGET:g}x {'PASS' if passed else 'MISS'}",
                flush=True,
            )
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
