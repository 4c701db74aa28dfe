"""A cluster host for bench_cluster (a): ``actorhw serve`` of one board, which also
times ``exec("pass")`` on that same board in its own process when asked on stdin.

    python cluster_host.py URL HOST BOARD TTL

Prints ``serving host HOST`` once it serves; then for each line ``local N`` on stdin it
leases the board's BOARD device (owner ``bench-local``, waiting up to 10 s while a
cluster holder's lease is still being given back), times N calls after 3 unmeasured
ones, releases it, and prints ``local MEDIAN_MS``.
"""

from __future__ import annotations

import statistics
import sys
import threading
import time

from actorhw import Board, Runtime
from actorhw.cluster.config import ClusterConfig
from actorhw.cluster.host import Host
from actorhw.cluster.serve import serve
from actorhw.core.errors import DeviceBusyError


def time_local(rt: Runtime, board: str, count: int) -> float:
    """The median of ``count`` local ``exec("pass")`` on ``board``, in ms."""
    deadline = time.monotonic() + 10.0
    while True:
        try:
            handle = rt.lease(Board, rt.ids(board).BOARD, owner="bench-local")
            break
        except DeviceBusyError:  # the cluster holder's local lease is on its way out
            if time.monotonic() > deadline:
                raise
            time.sleep(0.01)
    with handle:
        for _ in range(3):
            handle.exec("pass")
        times = []
        for _ in range(count):
            started = time.perf_counter()
            handle.exec("pass")
            times.append(time.perf_counter() - started)
    return statistics.median(times) * 1e3


def main() -> None:
    url, name, board, ttl = sys.argv[1:5]

    def answer(host: Host) -> None:
        for line in sys.stdin:
            command, _, count = line.strip().partition(" ")
            if command == "local":
                print(f"local {time_local(host.runtime, board, int(count)):.4f}", flush=True)

    def ready(host: Host) -> None:
        print(f"serving host {name}", flush=True)
        threading.Thread(target=answer, args=(host,), daemon=True).start()

    serve(ClusterConfig(servers=(url,), lease_ttl=float(ttl)), name, [board], on_ready=ready)


if __name__ == "__main__":
    main()
