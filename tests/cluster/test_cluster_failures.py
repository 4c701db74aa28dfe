"""Failures survived, against real nats-servers: a client killed or paused while it holds
leases, a server restarted on its file store, a node of a 3-server cluster killed."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from actorhw import Led
from actorhw.cluster import Cluster, NatsServer
from actorhw.core.errors import DeviceBusyError

pytestmark = pytest.mark.timeout(120)

BOARD = "lab-1/same70-xplained"
HOLDER = Path(__file__).with_name("holder.py")


class Holder:
    """tests/cluster/holder.py in its own process."""

    def __init__(self, url: str, owner: str, device: str = "LED_GREEN") -> None:
        self.proc = subprocess.Popen(
            [sys.executable, str(HOLDER), url, BOARD, device, owner],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
        )  # fmt: skip
        line = self.readline()
        assert line.startswith("held "), line
        self.token = int(line.split()[1])

    def readline(self) -> str:
        assert self.proc.stdout is not None
        return self.proc.stdout.readline().strip()

    def use(self, command: str = "use") -> str:
        assert self.proc.stdin is not None
        self.proc.stdin.write(f"{command}\n")
        self.proc.stdin.flush()
        return self.readline()

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait(10)
        for stream in (self.proc.stdin, self.proc.stdout):
            if stream is not None:
                stream.close()


@pytest.fixture
def holders() -> Iterator[Callable[..., Holder]]:
    started: list[Holder] = []

    def start(url: str, owner: str, device: str = "LED_GREEN") -> Holder:
        holder = Holder(url, owner, device)
        started.append(holder)
        return holder

    try:
        yield start
    finally:
        for holder in started:
            holder.close()


def _gone(device: Any) -> Callable[[Any], bool]:
    return lambda c: c.holders(device) is None


def test_a_killed_holders_leases_expire_and_another_client_gets_them(
    nats_server: NatsServer, hosts: Any, connect: Callable[..., Cluster], holders: Any
) -> None:
    hosts.start(nats_server.url, "lab-1", ["same70-xplained"])
    cl = connect("bob")
    holder = holders(nats_server.url, "alice")
    ids = cl.ids(BOARD)
    with pytest.raises(DeviceBusyError, match="alice"):
        cl.acquire(ids.LED_GREEN)
    os.kill(holder.proc.pid, signal.SIGKILL)
    killed = time.monotonic()
    cl.wait_for(_gone(ids.LED_GREEN), timeout=cl.ttl + 1.0)
    with cl.lease(Led, ids.LED_GREEN) as led:
        took = time.monotonic() - killed
        led.on()
        assert led.is_on() is True
    assert took <= cl.ttl + 1.0, f"takeover {took:.2f} s after kill -9, TTL {cl.ttl:g} s"
    print(f"takeover {took:.2f} s after kill -9 (TTL {cl.ttl:g} s)")


def test_a_holder_paused_past_its_ttl_is_refused_as_stale(
    nats_server: NatsServer, hosts: Any, connect: Callable[..., Cluster], holders: Any
) -> None:
    hosts.start(nats_server.url, "lab-1", ["same70-xplained"])
    cl = connect("bob")
    holder = holders(nats_server.url, "alice")
    assert holder.use() == "ok"
    ids = cl.ids(BOARD)
    os.kill(holder.proc.pid, signal.SIGSTOP)
    try:
        cl.wait_for(_gone(ids.LED_GREEN), timeout=cl.ttl + 2.0)
        led = cl.lease(Led, ids.LED_GREEN)
        assert led.lease is not None and led.lease.token > holder.token
    finally:
        os.kill(holder.proc.pid, signal.SIGCONT)
    assert holder.use().startswith("stale_lease ")
    led.on()  # the new holder is not disturbed
    assert led.is_on() is True
    led.release()


def test_a_restarted_server_keeps_every_lease(tmp_path: Path, hosts: Any, holders: Any) -> None:
    store = tmp_path / "store"
    server = NatsServer(store_dir=store).start()
    try:
        # A TTL longer than a restart takes on a loaded machine: a lease whose TTL ran
        # out while the server was down is gone when it returns.
        hosts.start(server.url, "lab-1", ["same70-xplained"], ["--lease-ttl", "30"])
        holder = holders(server.url, "alice")
        port = server.port
        server.stop()
        server = NatsServer(port=port, store_dir=store).start()
        with Cluster.connect(server.url, owner="bob") as cl:
            ids = cl.ids(BOARD)
            record = cl.aio.holders(ids.LED_GREEN)
            assert record is not None and [h.owner for h in record.holders] == ["alice"]
            with pytest.raises(DeviceBusyError, match="alice"):
                cl.acquire(ids.LED_GREEN)
            cl.wait_for(lambda c: c.online("lab-1"), timeout=10)  # the host reconnected
            assert holder.use("online") == "online"
            assert holder.use() == "ok"  # and so did the holder, lease intact
    finally:
        server.stop()


@pytest.mark.timeout(180)
def test_a_three_server_cluster_loses_no_lease_when_a_server_dies(
    tmp_path: Path, hosts: Any
) -> None:
    route_ports = [_free_port() for _ in range(3)]
    routes = tuple(f"nats://127.0.0.1:{p}" for p in route_ports)
    servers = [
        NatsServer(
            store_dir=tmp_path / f"n{i}", name=f"n{i}", cluster_port=route_ports[i], routes=routes
        )
        for i in range(3)
    ]
    try:
        for server in servers:
            server.start()
        urls = ",".join(s.url for s in servers)
        cl = _connect_when_ready(urls)
        try:
            hosts.start(urls, "lab-1", ["same70-xplained"], ["--lease-ttl", "10"])
            cl.wait_for(lambda c: c.online("lab-1"), timeout=20)
            ids = cl.ids(BOARD)
            led = cl.lease(Led, ids.LED_GREEN)
            led.on()
            others = ",".join(s.url for s in servers[1:])
            with Cluster.connect(others, owner="bob", timeout=30) as other:
                servers[0].kill()
                killed = time.monotonic()
                lease = cl.acquire(ids.LED_RED, timeout=30)  # operations continue
                cl.release(lease)
                print(f"first acquire {time.monotonic() - killed:.2f} s after a server died")
                with pytest.raises(DeviceBusyError, match="test"):  # no lease lost
                    other.acquire(ids.LED_GREEN)
                lease = other.acquire(ids.LED_RED)
                other.release(lease)
            # The host reconnects to a live server if it was on the dead one.
            cl.wait_for(lambda c: c.online("lab-1"), timeout=20)
            assert led.is_on() is True
            led.release()
        finally:
            cl.close()
    finally:
        for server in servers:
            server.stop()


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _connect_when_ready(urls: str) -> Cluster:
    """A client once the cluster has elected its JetStream leader (buckets of 3 replicas)."""
    deadline = time.monotonic() + 60
    while True:
        try:
            # A TTL longer than a JetStream leader election (seconds): a lease must not
            # expire while its holder cannot renew it.
            return Cluster.connect(urls, owner="test", replicas=3, lease_ttl=10.0, timeout=5)
        except Exception:
            if time.monotonic() > deadline:
                raise
