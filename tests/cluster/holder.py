"""A lease holder in its own process, for the failure tests.

    python holder.py URL BOARD DEVICE OWNER

Leases and opens the LED, prints ``held TOKEN``, then for each line ``use`` on stdin
prints ``ok`` or the error's code and message (``online`` waits for the host's heartbeat); ends at
EOF.
"""

from __future__ import annotations

import sys

from actorhw import Led
from actorhw.cluster import Cluster
from actorhw.core.errors import ActorHwError


def main() -> None:
    url, board, device, owner = sys.argv[1:5]
    with Cluster.connect(url, owner=owner) as cl:
        cl.wait_for(lambda c: c.online(board.split("/")[0]), timeout=10)
        led = cl.lease(Led, cl.device(board, device))
        assert led.lease is not None
        print(f"held {led.lease.token}", flush=True)
        for line in sys.stdin:
            if line.strip() == "online":  # wait for the host's heartbeat
                try:
                    cl.wait_for(lambda c: c.online(board.split("/")[0]), timeout=10)
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
