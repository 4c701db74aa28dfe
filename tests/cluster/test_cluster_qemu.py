"""A QEMU micro:bit exported by a host: an exec through the cluster takes the fast paths
(the caller's thread sends it and is woken by the reply; the host's loop starts it on
the board's I/O thread, no worker between), with the board's errors and timeouts typed
as locally, many callers at once, and a released lease refused."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest

from actorhw import Board
from actorhw.cluster import Cluster, NatsServer, wire
from actorhw.cluster.rawnats import BlockingNats
from actorhw.core.errors import (
    DeviceExceptionError,
    HostUnreachableError,
    StaleLeaseError,
    TimedOutError,
)
from actorhw.core.messages.cluster import RemoteCall, RemoteReply

pytestmark = [pytest.mark.qemu, pytest.mark.timeout(120)]


def test_exec_on_a_remote_qemu_board(
    nats_server: NatsServer, hosts: Any, connect: Callable[..., Cluster]
) -> None:
    hosts.start(nats_server.url, "q1", ["microbit-qemu"])
    cl = connect(owner="a")
    cl.wait_for(lambda c: c.online("q1"), timeout=10)
    board_id = cl.ids("q1/microbit-qemu").BOARD
    with cl.lease(Board, board_id) as board:
        assert board.exec("print(6*7)") == "42\n"
        with pytest.raises(DeviceExceptionError) as e:
            board.exec("raise ValueError('boom')")
        assert e.value.exc_name == "ValueError"
        with ThreadPoolExecutor(4) as pool:  # callers at once: each gets its own reply
            outputs = list(pool.map(lambda i: board.exec(f"print({i})"), range(24)))
        assert outputs == [f"{i}\n" for i in range(24)]
        with pytest.raises(TimedOutError):
            board.exec("while True: pass", timeout=1.0)
        assert board.exec("print('still here')") == "still here\n"
        lease = board.lease
    assert lease is not None
    with pytest.raises(StaleLeaseError):
        cl.use(lease, "exec", ("print(1)", 5.0))


def test_an_exec_in_flight_fails_when_its_host_goes_offline(
    nats_server: NatsServer, hosts: Any, connect: Callable[..., Cluster]
) -> None:
    host = hosts.start(nats_server.url, "q1", ["microbit-qemu"])
    cl = connect(owner="a")
    cl.wait_for(lambda c: c.online("q1"), timeout=10)
    board = cl.lease(Board, cl.ids("q1/microbit-qemu").BOARD)
    assert board.exec("print(1)") == "1\n"
    killer = threading.Timer(0.5, host.kill)  # kill -9 while the exec runs
    killer.start()
    started = time.monotonic()
    with pytest.raises(HostUnreachableError, match="went offline"):
        board.exec("while True: pass", timeout=30.0)
    killer.join()
    # the host's offline window and a heartbeat or two, not the exec's 30 s
    assert time.monotonic() - started < 0.5 + cl.aio.config.offline_after + 2.0


def test_the_host_s_fast_lane_answers_current_tokens_and_refuses_stale_ones(
    nats_server: NatsServer, hosts: Any, connect: Callable[..., Cluster]
) -> None:
    hosts.start(nats_server.url, "q1", ["microbit-qemu"])
    cl = connect(owner="a")
    cl.wait_for(lambda c: c.online("q1"), timeout=10)
    raw = BlockingNats(cl.aio.config)
    subject = cl.aio.config.fast_subject("q1")

    def exec_with(token: int) -> RemoteReply:
        call = RemoteCall(
            op="use", board="microbit-qemu", device="BOARD", owner="a", token=token,
            name="exec", args=("print(5)", 5.0), timeout=7.0,
        )  # fmt: skip
        data = raw.request(subject, wire.encode(call), timeout=10.0, tick=0.5, check=lambda: None)
        return wire.decode(data, RemoteReply)

    try:
        with cl.lease(Board, cl.ids("q1/microbit-qemu").BOARD) as board:
            assert board.lease is not None
            token = board.lease.token
            assert exec_with(token).value == ("5\n",)  # answered on the fast lane subject
            assert exec_with(token + 1000).error_type == "StaleLeaseError"
        assert exec_with(token).error_type == "StaleLeaseError"  # released
    finally:
        raw.close()
