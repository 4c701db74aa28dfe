"""Hosts on a real nats-server: export, listings, remote use, typed errors, and a host
killed with -9 and restarted."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Callable
from typing import Any

import pytest

from actorhw import Board, Led, Uart
from actorhw.cluster import Cluster, NatsServer, wire
from actorhw.cluster.rawnats import BlockingNats
from actorhw.core.errors import (
    DeviceBusyError,
    DeviceResetError,
    HostUnreachableError,
    NoSuchBoardError,
    NoSuchDeviceError,
)
from actorhw.core.lifecycle import DeviceState
from actorhw.core.messages.cluster import RemoteCall, RemoteReply

pytestmark = pytest.mark.timeout(120)

BOARD = "lab-1/same70-xplained"


def test_a_host_exports_its_boards_and_serves_leased_use(
    nats_server: NatsServer, hosts: Any, connect: Callable[..., Cluster]
) -> None:
    hosts.start(nats_server.url, "lab-1", ["same70-xplained"])
    a, b = connect("alice"), connect("bob")
    a.wait_for(lambda cl: cl.online("lab-1"), timeout=5)
    [board] = a.boards()
    assert (board.name, board.host, board.online) == (BOARD, "lab-1", True)
    assert board.state is DeviceState.CONNECTED
    ids = a.ids(BOARD)

    with a.lease(Uart, ids.UART0) as uart, a.lease(Led, ids.LED_GREEN) as led:
        assert uart.write(b"hello") == 5
        led.on()
        assert led.is_on() is True
        with pytest.raises(DeviceBusyError) as busy:
            b.acquire(ids.UART0)
        assert busy.value.code == "device_or_resource_busy"
        assert busy.value.owners == ["alice"] and busy.value.host == "lab-1"
        assert "alice" in str(busy.value) and "lab-1" in str(busy.value)
        owners = {i.device.name: i.owners for i in b.devices(BOARD)}
        assert owners["UART0"] == ("alice",) and owners["UART1"] == ()
        assert a.info(ids.UART0).open_count == 1
    # released: bob gets it now
    lease = b.acquire(ids.UART0)
    assert b.release(lease) == 0

    with pytest.raises(NoSuchDeviceError) as nosuch:
        a.device(BOARD, "UART9")
    assert "UART0" in nosuch.value.valid_ids and "UART9" in str(nosuch.value)
    with pytest.raises(NoSuchBoardError, match=BOARD):
        a.ids("lab-1/nope")


def test_the_cli_lists_boards_and_devices_of_the_cluster(
    nats_server: NatsServer, hosts: Any
) -> None:
    hosts.start(nats_server.url, "lab-1", ["same70-xplained"])
    cli = [sys.executable, "-m", "actorhw.cli", "--cluster", nats_server.url]
    done = subprocess.run([*cli, "boards", "--json"], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    rows = json.loads(done.stdout)
    assert [(r["board"], r["online"], r["state"]) for r in rows] == [(BOARD, True, "CONNECTED")]
    done = subprocess.run(
        [*cli, "devices", "--board", BOARD, "--json"], capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    assert {r["id"] for r in json.loads(done.stdout)} >= {"UART0", "LED_GREEN"}
    done = subprocess.run(
        [*cli, "exec", "--board", "lab-1/nope", "print(1)"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 1 and "[no_such_board]" in done.stderr


def test_a_killed_host_goes_offline_fast_keeps_its_leases_and_comes_back(
    nats_server: NatsServer, hosts: Any, connect: Callable[..., Cluster]
) -> None:
    host = hosts.start(nats_server.url, "lab-1", ["same70-xplained"])
    cl = connect("alice")
    cl.wait_for(lambda c: c.online("lab-1"), timeout=5)
    ids = cl.ids(BOARD)
    led = cl.lease(Led, ids.LED_GREEN)
    led.on()

    host.kill()
    killed = time.monotonic()
    cl.wait_for(lambda c: not c.online("lab-1"), timeout=3.0)
    offline_after = time.monotonic() - killed
    assert offline_after <= 3.0
    assert [b.online for b in cl.boards()] == [False]
    began = time.monotonic()
    with pytest.raises(HostUnreachableError, match="lab-1"):
        led.is_on()
    assert time.monotonic() - began < 0.5  # at once, not after a timeout
    # The lease stays in the bucket (the holder keeps renewing it).
    record = cl.aio.holders(ids.LED_GREEN)
    assert record is not None and [h.owner for h in record.holders] == ["alice"]

    host.start()
    cl.wait_for(lambda c: c.online("lab-1"), timeout=10)
    assert [b.online for b in cl.boards()] == [True]
    with pytest.raises(DeviceResetError):  # a new process: the holder reopens
        led.is_on()
    led.open()
    led.on()
    assert led.is_on() is True
    led.release()
    print(f"offline {offline_after:.2f} s after kill -9")


@pytest.mark.qemu
def test_a_qemu_microbit_host_runs_code_for_a_remote_client(
    nats_server: NatsServer, hosts: Any, connect: Callable[..., Cluster]
) -> None:
    hosts.start(nats_server.url, "lab-2", ["microbit-qemu"])
    cl = connect("ci-job-17")
    assert cl.exec("lab-2/microbit-qemu", "print(1 + 1)") == "2\n"
    with cl.lease(Board, cl.ids("lab-2/microbit-qemu").BOARD) as board:
        assert board.exec("x = 6 * 7\nprint(x)") == "42\n"
    cli = [sys.executable, "-m", "actorhw.cli", "--cluster", nats_server.url]
    done = subprocess.run(
        [*cli, "exec", "--board", "lab-2/microbit-qemu", "--json", "print('hi')"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == {"ok": True, "output": "hi\n"}


def test_the_fast_lane_fences_every_use_and_answers_a_bad_priority_with_a_typed_error(
    nats_server: NatsServer, hosts: Any, connect: Callable[..., Cluster]
) -> None:
    hosts.start(nats_server.url, "lab-1", ["same70-xplained"])
    cl = connect("alice")
    cl.wait_for(lambda c: c.online("lab-1"), timeout=5)
    raw = BlockingNats(cl.aio.config)
    subject = cl.aio.config.fast_subject("lab-1")

    def toggle(token: int, priority: int = 1) -> RemoteReply:
        call = RemoteCall(op="use", board="same70-xplained", device="LED_GREEN", owner="alice",
                          token=token, name="toggle", priority=priority, timeout=2.0)  # fmt: skip
        data = raw.request(subject, wire.encode(call), timeout=5.0, tick=0.5, check=lambda: None)
        return wire.decode(data, RemoteReply)

    try:
        with cl.lease(Led, cl.ids(BOARD).LED_GREEN) as led:
            assert led.lease is not None
            token = led.lease.token
            assert toggle(token).value == (True,)  # the lane's reader ran it
            assert toggle(token + 1).error_type == "StaleLeaseError"
            assert toggle(token - 1).error_type == "StaleLeaseError"
            # Before, a priority the limiter has not left the request unanswered (the
            # reader's handler raised ValueError): the caller waited for its deadline.
            bad = toggle(token, priority=7)
            assert (bad.error_type, bad.context.get("argument")) == (
                "InvalidArgumentError",
                "priority",
            )
            assert toggle(token).value == (False,)
        assert toggle(token).error_type == "StaleLeaseError"  # released
    finally:
        raw.close()
