"""PortIO on real descriptors: a pty pair (a device path as a USB board has) and a TCP
socket (``socket://``): typed errors that name the port, and the cheap ``gone`` check."""

from __future__ import annotations

import contextlib
import os
import socket
import termios
import time
import tty
from collections.abc import Iterator

import pytest
import serial

from actorhw.core.errors import LinkLostError, UnsupportedOperationError
from actorhw.links.port_io import POLL_S, DeadlinePassed, PortIO
from actorhw.links.serial_port import dtr_rts_reset


@pytest.fixture
def pty_port() -> Iterator[tuple[int, PortIO]]:
    """The master end (the board's side) and a PortIO on the slave's path."""
    master, slave = os.openpty()
    tty.setraw(master)
    port = serial.Serial(os.ttyname(slave), timeout=0.1)
    os.close(slave)  # the port holds its own descriptor
    io = PortIO(port, "board-x")
    try:
        yield master, io
    finally:
        io.close()
        with contextlib.suppress(OSError):  # the test closed it (the board went away)
            os.close(master)


@pytest.mark.timeout(10)
def test_reads_and_writes_go_through_the_descriptor(pty_port: tuple[int, PortIO]) -> None:
    master, io = pty_port
    assert io.fd is not None
    os.write(master, b"hello")
    deadline = time.monotonic() + 2
    while io.in_waiting() < 5:
        assert time.monotonic() < deadline
    assert io.in_waiting() == 5
    assert io.read_chunk(deadline) == b"hello"
    io.write(b"code\x04", deadline)
    assert os.read(master, 100) == b"code\x04"
    assert io.gone() is None


@pytest.mark.timeout(10)
def test_a_hung_up_port_is_gone_and_a_read_is_link_lost(pty_port: tuple[int, PortIO]) -> None:
    master, io = pty_port
    assert io.gone() is None
    os.close(master)  # the board is unplugged
    reason = io.gone()
    assert reason is not None
    assert "board-x" in reason
    assert "hung up" in reason
    with pytest.raises(LinkLostError) as info:
        io.read_chunk(time.monotonic() + 1)
    assert info.value.device == "board-x"  # type: ignore[attr-defined]
    assert "board-x" in str(info.value)
    assert io.lost
    assert io.gone() == "link to board-x was lost"


@pytest.mark.timeout(10)
def test_a_closed_port_is_gone_and_every_call_is_link_lost(pty_port: tuple[int, PortIO]) -> None:
    _master, io = pty_port
    io.close()
    assert io.gone() == "link to board-x is closed"
    deadline = time.monotonic() + 1
    for call in (
        lambda: io.write(b"x", deadline),
        lambda: io.read_chunk(deadline),
        io.in_waiting,
    ):
        with pytest.raises(LinkLostError) as info:
            call()
        assert "board-x" in str(info.value)


def test_failure_maps_port_errors_and_raises_bugs_as_they_are() -> None:
    io = PortIO(serial.serial_for_url("loop://", timeout=0), "board-y")
    assert isinstance(io.failure(serial.SerialTimeoutException("t"), "write"), DeadlinePassed)
    assert not io.lost
    lost = io.failure(OSError(5, "Input/output error"), "read")
    assert isinstance(lost, LinkLostError)
    assert "board-y" in str(lost)
    assert "read" in str(lost)
    assert io.lost
    bug = KeyError("bug")
    with pytest.raises(KeyError) as info:
        io.failure(bug, "read")
    assert info.value is bug
    # Once closed from another thread, pyserial trips over its cleared descriptor with
    # any error: that is the link closing, not a bug.
    io.close()
    assert isinstance(io.failure(TypeError("fd is None"), "read"), LinkLostError)


@pytest.mark.timeout(10)
def test_a_socket_port_whose_other_end_closed_is_gone() -> None:
    server = socket.create_server(("127.0.0.1", 0))
    host, port_number = server.getsockname()
    port = serial.serial_for_url(f"socket://{host}:{port_number}", timeout=0.1)
    io = PortIO(port, "net-board")
    peer, _ = server.accept()
    try:
        assert io.fd == port._socket.fileno()  # read and written directly
        assert io.gone() is None
        peer.sendall(b"pending")  # unread bytes are not a closed connection
        deadline = time.monotonic() + 2
        while io.in_waiting() == 0:
            assert time.monotonic() < deadline
        assert io.gone() is None
        assert io.read_chunk(deadline) == b"pending"
        peer.close()
        while (reason := io.gone()) is None:
            assert time.monotonic() < deadline
        assert "net-board" in reason
        assert "closed the connection" in reason
    finally:
        io.close()
        server.close()


def test_a_port_without_a_descriptor_is_gone_once_closed() -> None:
    port = serial.serial_for_url("loop://", timeout=0)
    io = PortIO(port, "loop-board")
    assert io.fd is None
    assert io.gone() is None
    port.close()  # closed under the link (not through it)
    assert io.gone() == "loop-board: the port is closed"


@pytest.mark.parametrize("url", ["loop://"])
def test_dtr_rts_reset_of_a_port_without_modem_lines_is_unsupported(url: str) -> None:
    port = serial.serial_for_url(url, timeout=0)
    with pytest.raises(UnsupportedOperationError) as info:
        dtr_rts_reset(port, name="b1")
    assert "b1" in str(info.value) and "no DTR/RTS lines" in str(info.value)


def test_dtr_rts_reset_of_a_socket_port_is_unsupported() -> None:
    server = socket.create_server(("127.0.0.1", 0))
    host, port_number = server.getsockname()
    port = serial.serial_for_url(f"socket://{host}:{port_number}", timeout=0.1)
    try:
        with pytest.raises(UnsupportedOperationError):
            dtr_rts_reset(port, name="net")  # pyserial would accept it and do nothing
    finally:
        port.close()
        server.close()


def test_dtr_rts_reset_of_a_pty_is_unsupported(pty_port: tuple[int, PortIO]) -> None:
    _master, io = pty_port
    with pytest.raises(UnsupportedOperationError) as info:
        dtr_rts_reset(io.port, pulse_s=0.0, name="board-x")
    assert "refuses" in str(info.value)


def _vmin(io: PortIO) -> int:
    assert io.fd is not None
    value = termios.tcgetattr(io.fd)[6][termios.VMIN]
    return value if isinstance(value, int) else ord(value)


@pytest.mark.timeout(10)
def test_a_batch_read_on_a_pty_wakes_once_its_bytes_are_there(
    pty_port: tuple[int, PortIO],
) -> None:
    master, io = pty_port
    assert io.batches  # a pseudo-terminal: the wait can count bytes
    before = _vmin(io)
    deadline = time.monotonic() + 2
    os.write(master, b"OK2")
    t0 = time.monotonic()
    # Five bytes must come: three are there, so the wait runs its whole poll interval
    # (it would have woken at once for one byte) and then hands over what came.
    assert io.read_batch(5, deadline) == b"OK2"
    assert time.monotonic() - t0 >= 0.8 * POLL_S
    assert _vmin(io) == 5
    os.write(master, b"\r\n\x04\x04>")
    assert io.read_batch(5, deadline) == b"\r\n\x04\x04>"
    io.end_batch()
    assert _vmin(io) == before  # the port as the batch found it, for anyone else reading it
    os.write(master, b"x")
    assert io.read_chunk(deadline) == b"x"


@pytest.mark.timeout(10)
def test_a_batch_read_keeps_the_deadline_and_notices_a_close(
    pty_port: tuple[int, PortIO],
) -> None:
    _master, io = pty_port
    before = _vmin(io)
    deadline = time.monotonic() + 0.01
    with pytest.raises(DeadlinePassed):
        while True:  # nothing comes: DeadlinePassed once the deadline is reached
            assert io.read_batch(5, deadline) == b""
    io.end_batch()
    assert _vmin(io) == before
    io.read_batch(5, time.monotonic() + 1)  # VMIN set again; then the port is closed
    io.close()
    with pytest.raises(LinkLostError, match="board-x"):
        io.read_batch(5, time.monotonic() + 1)
    io.end_batch()  # a closed port: nothing to put back, and no error


@pytest.mark.timeout(10)
def test_a_batch_read_on_a_socket_is_a_plain_read() -> None:
    server = socket.create_server(("127.0.0.1", 0))
    with server:
        port = serial.serial_for_url(f"socket://127.0.0.1:{server.getsockname()[1]}", timeout=0.1)
        peer, _ = server.accept()
        io = PortIO(port, "board-s")
        try:
            assert not io.batches
            peer.sendall(b"OK")
            assert io.read_batch(5, time.monotonic() + 2) == b"OK"  # no count: at once
            io.end_batch()
        finally:
            io.close()
            peer.close()
