"""The cluster's API beyond one device: the asyncio twin, a job over boards of two hosts,
credentials passed through to NATS, and two labs sharing a server under two prefixes."""

from __future__ import annotations

import asyncio
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from actorhw import Led
from actorhw.cluster import AsyncCluster, Cluster, NatsServer
from actorhw.core.errors import DeviceBusyError, HostUnreachableError, NoSuchBoardError

pytestmark = pytest.mark.timeout(120)


def test_the_asyncio_twin_leases_and_uses_a_remote_device(
    nats_server: NatsServer, hosts: Any
) -> None:
    hosts.start(nats_server.url, "lab-1", ["same70-xplained"])

    async def main() -> tuple[bool, str]:
        async with await AsyncCluster.connect(nats_server.url, owner="web") as cl:
            await cl.wait_for(lambda: cl.online("lab-1"), timeout=5)
            ids = cl.ids("lab-1/same70-xplained")
            async with cl.lease(ids.LED_GREEN) as led:
                await led.use("set", (True,))
                on = bool(await led.use("get"))
                with pytest.raises(DeviceBusyError):
                    await cl.acquire(ids.LED_GREEN, owner="other")
            lease = await cl.acquire(ids.LED_GREEN, owner="other")
            await cl.release(lease)
            return on, lease.owner

    assert asyncio.run(main()) == (True, "other")


def test_a_job_runs_over_boards_of_two_hosts(
    nats_server: NatsServer, hosts: Any, connect: Callable[..., Cluster]
) -> None:
    hosts.start(nats_server.url, "lab-1", ["same70-xplained"])
    hosts.start(nats_server.url, "lab-2", ["same70-xplained"])
    cl = connect("ci-job-17")
    cl.wait_for(lambda c: c.online("lab-1") and c.online("lab-2"), timeout=5)
    devices = [cl.ids(f"{h}/same70-xplained")[n] for h in ("lab-1", "lab-2")
               for n in ("LED_GREEN", "LED_RED")]  # fmt: skip
    other = connect("someone-else")
    busy = other.acquire(devices[-1])  # one target is held: its error, not the job's

    def toggle(led: Led) -> bool:
        led.toggle()
        return led.is_on()

    result = cl.run_job(devices, toggle, limit=4)
    assert [r.ok for r in result.results] == [True, True, True, False]
    assert result.values[devices[0]] is True
    assert isinstance(result.errors[devices[-1]], DeviceBusyError)
    other.release(busy)


@pytest.mark.timeout(120)
def test_credentials_are_passed_through_and_wrong_ones_refused(tmp_path: Path, hosts: Any) -> None:
    with NatsServer(store_dir=tmp_path / "js", user="lab", password="s3cret") as server:
        host = hosts.start(server.url, "lab-1", ["same70-xplained"],
                           ["--user", "lab", "--password", "s3cret"])  # fmt: skip
        with Cluster.connect(server.url, owner="a", user="lab", password="s3cret") as cl:
            cl.wait_for(lambda c: c.online("lab-1"), timeout=5)
            assert [b.name for b in cl.boards()] == ["lab-1/same70-xplained"]
        # Refused at once, not retried until the deadline (nats-py retries for ever).
        started = time.monotonic()
        with pytest.raises(HostUnreachableError, match="refused these credentials"):
            Cluster.connect(server.url, owner="a", user="lab", password="wrong", timeout=40)
        assert time.monotonic() - started < 20
        host.stop()
    with NatsServer(store_dir=tmp_path / "js2", token="t0ken") as server:
        with Cluster.connect(server.url, owner="a", token="t0ken") as cl:
            assert cl.boards() == []
        with pytest.raises(HostUnreachableError, match="Authorization Violation"):
            Cluster.connect(server.url, owner="a", timeout=40)


def test_two_labs_share_a_server_under_two_prefixes(nats_server: NatsServer, hosts: Any) -> None:
    hosts.start(nats_server.url, "lab-1", ["same70-xplained"], ["--prefix", "north"])
    hosts.start(nats_server.url, "lab-1", ["microbit"], ["--prefix", "south"])
    with (
        Cluster.connect(nats_server.url, owner="a", prefix="north") as north,
        Cluster.connect(nats_server.url, owner="a", prefix="south") as south,
    ):
        north.wait_for(lambda c: c.online("lab-1"), timeout=5)
        south.wait_for(lambda c: c.online("lab-1"), timeout=5)
        assert [b.name for b in north.boards()] == ["lab-1/same70-xplained"]
        assert [b.name for b in south.boards()] == ["lab-1/microbit"]
        with pytest.raises(NoSuchBoardError):
            north.ids("lab-1/microbit")
        # the same device name in both labs: two leases, no clash
        a = north.acquire(north.device("lab-1/same70-xplained", "LED_GREEN"))
        b = south.acquire(south.device("lab-1/microbit", "DISPLAY"))
        north.release(a)
        south.release(b)


def test_tls_is_passed_through(tmp_path: Path) -> None:
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
         "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1",
         "-keyout", str(key), "-out", str(cert)],
        check=True, capture_output=True, timeout=60,
    )  # fmt: skip
    with NatsServer(store_dir=tmp_path / "js", tls_cert=cert, tls_key=key) as server:
        assert server.url.startswith("tls://")
        with Cluster.connect(server.url, owner="a", tls_ca=str(cert)) as cl:
            assert cl.boards() == []
        with pytest.raises(HostUnreachableError):  # without the CA: it cannot verify it
            Cluster.connect(server.url, owner="a", timeout=5)
