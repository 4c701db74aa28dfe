"""A lease holder in its own process, for the failure tests.

    python holder.py URL BOARD DEVICE OWNER

Leases and opens the LED, prints ``held TOKEN``, then for each line ``use`` on stdin
prints ``ok`` or the error's code and message (``online`` waits for the host's heartbeat); ends at
EOF.
"""

from __future__ import annotations

import functools
import sys
import time

from actorhw import Led
from actorhw.cluster import AsyncCluster, Cluster
from actorhw.core.errors import ActorHwError


def _beat_since(board: str, since: float, cl: AsyncCluster) -> bool:
    host = board.split("/")[0]
    return cl.online(host) and cl._beat_since(host, since)


def main() -> None:
    url, board, device, owner = sys.argv[1:5]
    with Cluster.connect(url, owner=owner) as cl:
        cl.wait_for(lambda c: c.online(board.split("/")[0]), timeout=10)
        led = cl.lease(Led, cl.device(board, device))
        assert led.lease is not None
        print(f"held {led.lease.token}", flush=True)
        for line in sys.stdin:
            if line.strip() == "online":  # wait for a heartbeat of the host from now on
                asked = time.monotonic()  # (not a watch's replay of an old one)
                try:
                    cl.wait_for(functools.partial(_beat_since, board, asked), timeout=10)
                    print("online", flush=True)
                except ActorHwError as e:
                    print(e.code, flush=True)
            if line.strip() == "use":
                try:
                    led.on()
                    print("ok", flush=True)
                except ActorHwError as e:
                    print(e.code, e.message, flush=True)


if __name__ == "__main__":
    main()
