"""Reservations: N boards matching a pattern, all at once or none, until a deadline."""

from __future__ import annotations

import concurrent.futures
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from typing import Any

import pytest

from actorhw.cluster import Cluster, NatsServer
from actorhw.core.errors import TimedOutError

pytestmark = pytest.mark.timeout(120)

BOARDS = ["b0=same70-xplained", "b1=same70-xplained"]


def test_all_boards_at_once_or_none_until_the_deadline(
    nats_server: NatsServer, hosts: Any, connect: Callable[..., Cluster]
) -> None:
    hosts.start(nats_server.url, "lab-1", BOARDS)
    cl, other = connect("ci-17"), connect("someone")
    cl.wait_for(lambda c: c.online("lab-1"), timeout=5)
    held = other.acquire(cl.device("lab-1/b1", "UART0"))  # b1 is not free

    with pytest.raises(TimedOutError, match="2 free boards"):
        cl.reserve("lab-1/*", count=2, wait=1.0)
    # none kept: every device of b0 is free again (as this client's lease watch sees it)
    cl.wait_for(lambda c: all(i.owners == () for i in c.devices("lab-1/b0")), timeout=5)

    with cl.reserve("lab-1/*", count=1, wait=5.0) as one:
        assert one.boards == ["lab-1/b0"]
        assert {i.owners for i in cl.devices("lab-1/b0")} == {("ci-17",)}
    cl.wait_for(lambda c: all(i.owners == () for i in c.devices("lab-1/b0")), timeout=5)

    other.release(held)
    with cl.reserve("b*", count=2, wait=5.0) as both:
        assert both.boards == ["lab-1/b0", "lab-1/b1"]


def test_the_cli_reserves_and_frees_boards(nats_server: NatsServer, hosts: Any) -> None:
    hosts.start(nats_server.url, "lab-1", BOARDS)
    done = subprocess.run(
        [sys.executable, "-m", "actorhw.cli", "--cluster", nats_server.url, "reserve",
         "--board", "lab-1/b*", "--count", "2", "--wait", "10", "--json"],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == {"ok": True, "boards": ["lab-1/b0", "lab-1/b1"]}


def test_the_queue_serves_priority_first_then_arrival(
    nats_server: NatsServer, hosts: Any, connect: Callable[..., Cluster]
) -> None:
    hosts.start(nats_server.url, "lab-1", BOARDS)
    holder, low, high = connect("holder"), connect("low"), connect("high")
    holder.wait_for(lambda c: c.online("lab-1"), timeout=5)
    held = holder.reserve("lab-1/*", count=2, wait=5)
    served: list[str] = []

    def wait_for_boards(cl: Cluster, name: str, priority: int) -> None:
        with cl.reserve("lab-1/*", count=2, wait=30, priority=priority):
            served.append(name)

    with concurrent.futures.ThreadPoolExecutor(2) as pool:
        first = pool.submit(wait_for_boards, low, "low", 0)  # arrives first
        holder.wait_for(lambda c: len(c.waiting) == 1, timeout=10)
        second = pool.submit(wait_for_boards, high, "high", 5)
        holder.wait_for(lambda c: len(c.waiting) == 2, timeout=10)
        assert [w.owner for w in holder.waiters()] == ["high", "low"]
        held.release()
        first.result(timeout=30)
        second.result(timeout=30)
    assert served == ["high", "low"]


def test_a_vanished_waiter_leaves_the_queue(
    nats_server: NatsServer, hosts: Any, connect: Callable[..., Cluster]
) -> None:
    hosts.start(nats_server.url, "lab-1", BOARDS)
    cl = connect("ci-17")
    cl.wait_for(lambda c: c.online("lab-1"), timeout=5)
    held = cl.reserve("lab-1/*", count=2, wait=5)
    waiter = subprocess.Popen(
        [sys.executable, "-m", "actorhw.cli", "--cluster", nats_server.url, "reserve",
         "--board", "lab-1/*", "--count", "2", "--wait", "60", "--priority", "9"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        cl.wait_for(lambda c: len(c.waiting) == 1, timeout=30)
        os.kill(waiter.pid, signal.SIGKILL)
        killed = time.monotonic()
        cl.wait_for(lambda c: len(c.waiting) == 0, timeout=cl.ttl + 2)
        assert time.monotonic() - killed <= cl.ttl + 2
    finally:
        waiter.kill()
        waiter.wait(10)
    held.release()
    with connect("next").reserve("lab-1/*", count=2, wait=5) as boards:
        assert len(boards.boards) == 2
