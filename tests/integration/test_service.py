"""The example service (docs/examples/service.py) over real HTTP and WebSocket.

It runs as a subprocess on loopback, on a port it picks itself; the tests read its
stdout lines (``service: <what> {json}``) to know when it is up and what it released.
"""

from __future__ import annotations

import json
import queue
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from websockets.exceptions import ConnectionClosed, InvalidStatus
from websockets.sync.client import ClientConnection, connect

from actorhw.links import qemu_available

pytestmark = pytest.mark.timeout(90)

SERVICE = Path(__file__).parents[2] / "docs" / "examples" / "service.py"
#: The service's promise: every actor thread ends within 5 s of SIGTERM. The process
#: itself gets 3 s more to unwind the interpreter.
STOP_DEADLINE = 5.0 + 3.0
TOKEN = "test-token-not-secret"
AUTH = {"Authorization": f"Bearer {TOKEN}"}


class RunningService:
    """A service subprocess and the lines it printed."""

    def __init__(self, *args: str) -> None:
        auth = () if "--no-auth" in args else ("--token", TOKEN)
        self.proc = subprocess.Popen(
            [sys.executable, str(SERVICE), "--port", "0", *auth, *args],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        self.lines: queue.Queue[str | None] = queue.Queue()
        self.seen: list[str] = []
        self._reader = threading.Thread(target=self._read, name="service-stdout")
        self._reader.start()
        self.url = self.expect("listening", timeout=30)["url"]
        self.ready = self.expect("ready", timeout=60)

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.put(line.rstrip("\n"))
        self.lines.put(None)

    def expect(self, what: str, *, timeout: float) -> dict[str, Any]:
        """The fields of the next ``service: <what>`` line, skipping others."""
        deadline = time.monotonic() + timeout
        prefix = f"service: {what} "
        while True:
            try:
                line = self.lines.get(timeout=max(0.0, deadline - time.monotonic()))
            except queue.Empty:
                pytest.fail(f"no {what!r} line within {timeout} s; saw {self.seen}")
            if line is None:
                pytest.fail(f"the service exited before {what!r}: {self.seen}\n{self.stderr()}")
            self.seen.append(line)
            if line.startswith(prefix):
                fields: dict[str, Any] = json.loads(line[len(prefix) :])
                return fields

    def stderr(self) -> str:
        if self.proc.poll() is None or self.proc.stderr is None:
            return ""
        return self.proc.stderr.read()

    def terminate(self, *, timeout: float) -> int:
        """SIGTERM; the exit code, which must come within ``timeout`` s."""
        self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            pytest.fail(f"the service did not exit within {timeout} s of SIGTERM")

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=10)
        self._reader.join(timeout=10)
        for stream in (self.proc.stdout, self.proc.stderr):
            if stream is not None:
                stream.close()


@pytest.fixture
def start_service() -> Iterator[Callable[..., RunningService]]:
    """Start the service with some arguments; it is killed after the test if still up."""
    started: list[RunningService] = []

    def start(*args: str) -> RunningService:
        service = RunningService(*args)
        started.append(service)
        return service

    try:
        yield start
    finally:
        for service in started:
            service.kill()


def ws_url(http_url: str, path: str) -> str:
    return http_url.replace("http://", "ws://", 1) + path


def ws_connect(http_url: str, path: str) -> ClientConnection:
    return connect(ws_url(http_url, path), open_timeout=10, additional_headers=AUTH)


def next_message(ws: ClientConnection, predicate: Callable[[Any], bool]) -> Any:
    """The first JSON message that satisfies ``predicate``, within 10 s in all."""
    deadline = time.monotonic() + 10
    while True:
        message = json.loads(ws.recv(timeout=max(0.01, deadline - time.monotonic())))
        if predicate(message):
            return message


def state_change(device: str, to: str) -> Callable[[Any], bool]:
    return lambda m: m["type"] == "StateChanged" and m["device"] == device and m["to_state"] == to


def assert_stopped_cleanly(service: RunningService) -> None:
    sent = time.monotonic()
    code = service.terminate(timeout=STOP_DEADLINE)
    took = time.monotonic() - sent
    assert code == 0, service.stderr()
    teardown = service.expect("teardown", timeout=1)
    assert teardown["status_led"] == "off and released"
    assert teardown["still_held"] == []
    stopped = service.expect("stopped", timeout=1)
    assert stopped["released"] is True
    assert stopped["actors_alive"] == 0
    assert stopped["threads_alive"] == []
    assert stopped["seconds"] < 5.0
    assert took < STOP_DEADLINE


def test_service_on_simulated_boards(start_service: Callable[..., RunningService]) -> None:
    service = start_service()
    assert service.ready["boards"] == ["same70-xplained", "microbit"]
    with httpx.Client(base_url=service.url, timeout=10, headers=AUTH) as http:
        health = http.get("/health")
        assert health.status_code == 200
        assert health.json()["status"] == "ok"
        assert {b["board"] for b in health.json()["boards"]} == {"same70-xplained", "microbit"}

        devices = {d["device"]: d for d in http.get("/devices").json()}
        # the service holds its status LED, lit, for its whole life
        assert devices["same70-xplained.LED_GREEN"]["owners"] == ["service"]
        assert devices["same70-xplained.LED_GREEN"]["state"] == "ACTIVE"
        only = http.get("/devices", params={"board": "microbit"}).json()
        assert only and {d["device"].split(".")[0] for d in only} == {"microbit"}

        with ws_connect(service.url, "/events") as ws:
            hello = json.loads(ws.recv(timeout=10))
            assert hello == {"type": "hello", "boards": ["same70-xplained", "microbit"]}

            used = http.post("/use", json={"device": "same70-xplained.LED_RED", "op": "toggle"})
            assert used.json() == {"ok": True, "result": True}
            active = next_message(ws, state_change("same70-xplained.LED_RED", "ACTIVE"))
            assert active["from_state"] == "CONNECTED"
            assert active["reason"] == "opened by http"
            next_message(ws, state_change("same70-xplained.LED_RED", "CONNECTED"))

            busy = http.post("/use", json={"device": "same70-xplained.LED_GREEN", "op": "get"})
            assert busy.status_code == 409
            assert busy.json()["error"]["code"] == "device_or_resource_busy"
            assert busy.json()["error"]["owners"] == ["service"]

            unsupported = http.post("/exec", json={"board": "microbit", "code": "print(1)"})
            assert unsupported.status_code == 501
            assert unsupported.json()["error"]["code"] == "operation_not_supported"

            bad = http.post(
                "/exec", content=b"not json", headers={"Content-Type": "application/json"}
            )
            assert bad.status_code == 400
            assert bad.json()["error"]["argument"] == "body"
            unknown = http.post("/use", json={"device": "same70-xplained.NOPE", "op": "get"})
            assert unknown.status_code == 404
            assert "LED_GREEN" in unknown.json()["error"]["valid_ids"]

            # SIGTERM with the WebSocket open: the service closes it, going away
            assert_stopped_cleanly(service)
            with pytest.raises(ConnectionClosed) as closed:
                while True:
                    ws.recv(timeout=5)
            assert closed.value.rcvd is not None
            assert closed.value.rcvd.code == 1001


def test_service_streams_board_data(start_service: Callable[..., RunningService]) -> None:
    service = start_service()
    board = "same70-xplained"
    with (
        httpx.Client(base_url=service.url, timeout=10, headers=AUTH) as http,
        ws_connect(service.url, f"/events?stream={board}") as ws,
    ):
        assert json.loads(ws.recv(timeout=10))["type"] == "hello"
        started = http.post(
            "/command",
            json={
                "board": board,
                "command": "start",
                "args": {"channels": ["counter"], "interval": 0.01},
            },
        )
        assert started.status_code == 200, started.text
        assert started.json()["result"] == {"channels": ["counter"]}
        samples = [
            next_message(ws, lambda m: m["type"] == "StreamData" and m["action"] == "DATA")
            for _ in range(5)
        ]
        assert {m["channel"] for m in samples} == {f"{board}.counter"}
        seqs = [m["seq"] for m in samples]
        assert seqs == sorted(seqs) and len(set(seqs)) == 5
        # the counter counts samples: its value is its sequence number
        assert all(m["data"] == [m["seq"]] for m in samples)

        unknown = http.post("/command", json={"board": board, "command": "nope"})
        assert unknown.status_code == 501
        assert "start" in unknown.json()["error"]["supported"]

        # SIGTERM while the stream runs: its acquisition thread ends with the runtime
        assert_stopped_cleanly(service)


@pytest.mark.qemu
def test_service_on_qemu(start_service: Callable[..., RunningService]) -> None:
    missing = qemu_available()
    if missing is not None:
        pytest.fail(f"QEMU micro:bit is required for this test: {missing}", pytrace=False)
    service = start_service("--qemu")
    assert "microbit-qemu" in service.ready["boards"]
    with httpx.Client(base_url=service.url, timeout=30, headers=AUTH) as http:
        assert http.get("/health").json()["status"] == "ok"
        with ws_connect(service.url, "/events") as ws:
            json.loads(ws.recv(timeout=10))  # hello: subscribed from here on
            ran = http.post("/exec", json={"board": "microbit-qemu", "code": "print(6*7)"})
            assert ran.json() == {"ok": True, "output": "42\n"}
            next_message(ws, state_change("microbit-qemu.BOARD", "ACTIVE"))
            raised = http.post("/exec", json={"board": "microbit-qemu", "code": "1/0"})
            assert raised.status_code == 422
            assert raised.json()["error"]["exc_name"] == "ZeroDivisionError"
            slow = http.post(
                "/exec", json={"board": "microbit-qemu", "code": "while True: pass", "timeout": 0.5}
            )
            assert slow.status_code == 504
            assert slow.json()["error"]["code"] == "timed_out"
            # the board was interrupted and still answers
            again = http.post("/exec", json={"board": "microbit-qemu", "code": "print(1+1)"})
            assert again.json() == {"ok": True, "output": "2\n"}
    assert_stopped_cleanly(service)


def test_service_refuses_other_sites_and_strangers(
    start_service: Callable[..., RunningService],
) -> None:
    """Issue 13, item 14: no CSRF, no DNS rebinding, a token, typed errors for /exec."""
    service = start_service()
    exec_body = {"board": "microbit", "code": "print(1)"}
    with httpx.Client(base_url=service.url, timeout=10) as http:
        assert http.get("/health").status_code == 401  # no token
        wrong = http.get("/health", headers={"Authorization": "Bearer nope"})
        assert wrong.status_code == 401 and wrong.json()["error"]["code"] == "unauthorized"
        assert http.get("/health", headers=AUTH).status_code == 200
        # a web page's "simple" cross-site POST: text/plain, another Origin
        plain = http.post("/exec", content=json.dumps(exec_body), headers=AUTH)
        assert plain.status_code == 415, plain.text
        page = {**AUTH, "Origin": "http://evil.example"}
        assert http.post("/exec", json=exec_body, headers=page).status_code == 403
        # DNS rebinding: the browser thinks it talks to evil.example
        rebound = http.get("/devices", headers={**AUTH, "Host": "evil.example:80"})
        assert rebound.status_code == 403
        assert rebound.json()["error"]["code"] == "forbidden_host"
        own = {**AUTH, "Origin": service.url}
        assert http.get("/devices", headers=own).status_code == 200
        # /exec's bad input is the typed error, not a 500
        no_board = http.post(
            "/exec", json={"board": "same70-xplained", "code": "print(1)"}, headers=AUTH
        )
        assert no_board.status_code == 501, no_board.text
        assert no_board.json()["error"]["code"] == "operation_not_supported"
        for timeout in (1e308, -1, "soon", True):
            huge = http.post("/exec", json={**exec_body, "timeout": timeout}, headers=AUTH)
            assert huge.status_code == 400, huge.text
            assert huge.json()["error"]["argument"] == "timeout"
    with pytest.raises(InvalidStatus):
        connect(ws_url(service.url, "/events"), open_timeout=10).close()
    assert_stopped_cleanly(service)


def test_service_without_auth_only_on_loopback(
    start_service: Callable[..., RunningService],
) -> None:
    refused = subprocess.run(
        [sys.executable, str(SERVICE), "--no-auth", "--host", "0.0.0.0", "--port", "0"],
        capture_output=True, text=True, timeout=30, check=False,
    )  # fmt: skip
    assert refused.returncode == 2
    assert "--no-auth is only allowed on a loopback --host" in refused.stderr
    service = start_service("--no-auth")
    with httpx.Client(base_url=service.url, timeout=10) as http:
        assert http.get("/health").status_code == 200
        assert http.get("/health", headers={"Host": "evil.example"}).status_code == 403
    assert_stopped_cleanly(service)
