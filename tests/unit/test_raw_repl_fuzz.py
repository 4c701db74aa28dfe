"""RawReplLink against an in-process fake board: framing, garbage, errors, threads.

Every call runs with a short deadline; the fuzz tests check that whatever the board
sends, the link answers with the right result or a typed ActorHwError, in bounded time
and bounded memory.
"""

from __future__ import annotations

import ast
import contextlib
import errno
import threading
import time

import pytest
import serial
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from actorhw.core.errors import (
    ActorHwError,
    DeviceExceptionError,
    InvalidArgumentError,
    LinkLostError,
    ProtocolError,
    RawReplError,
    ResultParseError,
    TimedOutError,
)
from actorhw.links import ExecResult, RawReplLink, bytes_literal, parse_traceback
from actorhw.links.framing import ANSWER_END, split_answer
from actorhw.links.raw_protocol import staging_frames
from tests.fakes_serial import (
    ANSWER_TRAILER,
    BANNER,
    FRIENDLY_BANNER,
    FakeMicroPython,
    FakeSerial,
    RingBoard,
    make_link_port,
    python_handler,
)

FAST = {"resync_timeout": 0.05}
FUZZ_SETTINGS = settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
USER_CODE = "print('user code')"


def open_link(
    board: FakeMicroPython | None = None, *, timeout: float = 1.0, **options: object
) -> tuple[RawReplLink, FakeSerial, FakeMicroPython]:
    port, board = make_link_port(board)
    link = RawReplLink.open(port, timeout=timeout, **{**FAST, **options})  # type: ignore[arg-type]
    return link, port, board


def scripted_once(board: FakeMicroPython, answer: bytes) -> None:
    """The next USER_CODE exec is answered by ``answer`` alone (no ``OK``), then all is normal."""
    used = False

    def override(code: bytes) -> bytes | None:
        nonlocal used
        if code == USER_CODE.encode() and not used:
            used = True
            return answer
        return None

    board.override = override


# --- the happy path ------------------------------------------------------------------------


@pytest.mark.timeout(10)
def test_exec_returns_stdout_and_stays_in_raw_repl() -> None:
    link, port, _board = open_link()
    assert link.in_raw_repl
    assert link.exec("print(1+1)", timeout=1) == ExecResult(stdout=b"2\r\n", stderr=b"")
    assert link.exec(b"x = 5", timeout=1) == ExecResult(stdout=b"", stderr=b"")
    assert link.exec_checked("print(x * 2)", timeout=1) == "10\n"
    # Entered once (Ctrl-C twice, Ctrl-A), then each exec ends in Ctrl-D and the Ctrl-A
    # trailer whose banner marks the true end of its answer.
    assert port.written.count(b"\x03\x03\x01") == 1
    assert port.written.endswith(b"print(x * 2)\x04\x01")
    link.close()
    assert link.closed


@pytest.mark.timeout(10)
def test_enter_raw_repl_polls_a_booting_board() -> None:
    # The first 8 bytes are swallowed, as by firmware that is still booting.
    link, _, board = open_link(FakeMicroPython(booting=8), timeout=3)
    assert link.exec_checked("print('up')", timeout=1) == "up\n"
    assert board.booting == 0


@pytest.mark.timeout(10)
def test_enter_raw_repl_skips_stale_output_and_extra_banners() -> None:
    port, _board = make_link_port()
    port.feed(FRIENDLY_BANNER + b"\x00garbage\xff" + BANNER + BANNER + b"OK\x04\x04>")
    link = RawReplLink(port, **FAST)  # type: ignore[arg-type]
    link.enter_raw_repl(timeout=1)
    assert link.exec_checked("print(42)", timeout=1) == "42\n"


@pytest.mark.timeout(10)
def test_first_exec_enters_raw_repl_by_itself() -> None:
    port, _ = make_link_port()
    link = RawReplLink(port, **FAST)  # type: ignore[arg-type]
    assert not link.in_raw_repl
    assert link.exec_checked("print(3)", timeout=1) == "3\n"
    assert link.in_raw_repl


@pytest.mark.timeout(10)
def test_stray_bytes_between_calls_trigger_a_resync() -> None:
    link, port, _ = open_link()
    port.feed(b"\r\nsomething the board printed on its own\r\n")
    assert link.exec_checked("print(4)", timeout=1) == "4\n"


@pytest.mark.timeout(10)
def test_pacing_writes_in_chunks() -> None:
    link, _port, board = open_link(pacing_s=0.001, chunk_size=16)
    code = "a = 1\n" * 20 + "print(a)"
    assert link.exec_checked(code, timeout=2) == "1\n"
    assert board.execs[-1] == code.encode()


@pytest.mark.timeout(10)
def test_control_bytes_in_code_are_refused() -> None:
    link, _, _ = open_link()
    with pytest.raises(InvalidArgumentError):
        link.exec("print('\x04')", timeout=1)
    assert link.exec_checked("print(1)", timeout=1) == "1\n"


@pytest.mark.timeout(10)
def test_invalid_settings_are_refused() -> None:
    port, _ = make_link_port()
    for bad in ({"pacing_s": -1}, {"chunk_size": 0}, {"max_output": 0}, {"resync_timeout": 0}):
        with pytest.raises(InvalidArgumentError):
            RawReplLink(port, **bad)  # type: ignore[arg-type]


# --- device exceptions and traceback parsing --------------------------------------------------


@pytest.mark.parametrize(
    ("text", "name", "message"),
    [
        (
            'Traceback (most recent call last):\r\n  File "<stdin>", line 1, in <module>\r\n'
            "ZeroDivisionError: division by zero\r\n",
            "ZeroDivisionError",
            "division by zero",
        ),
        (
            "MemoryError: memory allocation failed, allocating 400000 bytes\n",
            "MemoryError",
            "memory allocation failed, allocating 400000 bytes",
        ),
        ("MemoryError: \r\n", "MemoryError", ""),
        ("Traceback ...\nKeyboardInterrupt: \n", "KeyboardInterrupt", ""),
        ("Traceback ...\n  File x\nOSError: [Errno 2] ENOENT\n\n\n", "OSError", "[Errno 2] ENOENT"),
        ("Traceback ...\nucollections.FooError: bad\n", "ucollections.FooError", "bad"),
        ("Traceback ...\nStopIteration\n", "StopIteration", ""),
        ("", "UnknownError", ""),
        ("   \r\n", "UnknownError", ""),
        ("!!! weird last line", "UnknownError", "!!! weird last line"),
    ],
)
@pytest.mark.timeout(5)
def test_parse_traceback(text: str, name: str, message: str) -> None:
    assert parse_traceback(text) == (name, message)


@pytest.mark.timeout(10)
def test_exec_checked_raises_device_exception() -> None:
    link, _, _ = open_link()
    with pytest.raises(DeviceExceptionError) as info:
        link.exec_checked("print('before')\n1/0", timeout=1)
    err = info.value
    assert err.exc_name == "ZeroDivisionError"  # type: ignore[attr-defined]
    assert "ZeroDivisionError" in err.traceback_text  # type: ignore[attr-defined]
    assert err.stdout == "before\n"  # type: ignore[attr-defined]
    assert err.code == "device_exception"
    assert err.to_dict()["exc_name"] == "ZeroDivisionError"
    # Plain exec does not raise: the traceback is in stderr.
    result = link.exec("1/0", timeout=1)
    assert not result.ok
    assert b"ZeroDivisionError" in result.stderr


# --- raw-paste detection ------------------------------------------------------------------------


@pytest.mark.timeout(10)
def test_old_firmware_answers_paste_probe_with_banner() -> None:
    link, _, board = open_link(FakeMicroPython(paste="banner"))
    assert link.raw_paste is False
    assert link.exec_checked("x = 'y' * 3\n" + "#" * 600 + "\nprint(x)", timeout=1) == "yyy\n"
    assert board.paste_transfers == 0


@pytest.mark.timeout(10)
def test_paste_unsupported_answer_r0() -> None:
    link, _, board = open_link(FakeMicroPython(paste="unsupported"))
    assert link.raw_paste is False
    assert link.exec_checked("print(7)", timeout=1) == "7\n"
    assert board.paste_transfers == 0


@pytest.mark.timeout(10)
def test_paste_supported_is_used_for_long_code_only() -> None:
    link, _port, board = open_link(FakeMicroPython(paste="supported", window=32), chunk_size=64)
    assert link.raw_paste is True
    transfers = board.paste_transfers  # the probe itself is one (empty) transfer
    assert link.exec_checked("print(1)", timeout=1) == "1\n"
    assert board.paste_transfers == transfers
    long_code = "v = 0\n" + "v += 1\n" * 40 + "print(v)"
    assert link.exec_checked(long_code, timeout=1) == "40\n"
    assert board.paste_transfers == transfers + 1
    assert board.execs[-1] == long_code.encode()
    # Device exceptions come back the same way in paste mode.
    with pytest.raises(DeviceExceptionError) as info:
        link.exec_checked("#" * 100 + "\n1/0", timeout=1)
    assert info.value.exc_name == "ZeroDivisionError"  # type: ignore[attr-defined]
    assert link.exec_checked("print(2)", timeout=1) == "2\n"


@pytest.mark.timeout(10)
def test_paste_probe_garbage_is_a_protocol_error() -> None:
    board = FakeMicroPython(paste="unsupported")
    port, _ = make_link_port(board)
    original = board._raw

    def garbled(p: FakeSerial, c: int) -> None:
        if board.pending_ctrl_e == 2 and c == 1:
            board.pending_ctrl_e = 0
            p.feed(b"Zz")
            return
        original(p, c)

    board._raw = garbled  # type: ignore[method-assign,assignment]
    with pytest.raises(ProtocolError):
        RawReplLink.open(port, timeout=1, **FAST)  # type: ignore[arg-type]
    assert not port.is_open  # open() closes the port it was given on failure


# --- timeouts, interrupts, resets -------------------------------------------------------------


@pytest.mark.timeout(10)
def test_infinite_loop_times_out_and_link_recovers() -> None:
    link, _, _board = open_link()
    start = time.monotonic()
    with pytest.raises(TimedOutError) as info:
        link.exec("while True: pass", timeout=0.2)
    elapsed = time.monotonic() - start
    assert info.value.resynced is True  # type: ignore[attr-defined]
    assert 0.2 <= elapsed < 0.2 + link.resync_timeout + 0.5
    assert link.in_raw_repl
    assert link.exec_checked("print(9)", timeout=1) == "9\n"


@pytest.mark.timeout(10)
def test_hung_board_times_out_not_resynced_and_stays_bounded() -> None:
    link, _, _ = open_link()
    start = time.monotonic()
    with pytest.raises(TimedOutError) as info:
        link.exec("import microbit\nmicrobit.temperature()", timeout=0.2)
    assert info.value.resynced is False  # type: ignore[attr-defined]
    assert time.monotonic() - start < 0.2 + link.resync_timeout + 0.5
    assert not link.in_raw_repl
    start = time.monotonic()
    with pytest.raises(RawReplError):
        link.exec("print(1)", timeout=0.2)
    assert time.monotonic() - start < 0.7
    with pytest.raises(TimedOutError) as info:
        link.interrupt(timeout=0.2)
    assert info.value.resynced is False  # type: ignore[attr-defined]
    with pytest.raises(TimedOutError):
        link.soft_reset(timeout=0.2)


@pytest.mark.timeout(10)
def test_interrupt_from_another_thread_ends_the_running_exec() -> None:
    link, _, board = open_link()
    outcome: list[ExecResult | BaseException] = []

    def run() -> None:
        try:
            outcome.append(link.exec("while True: pass", timeout=5))
        except BaseException as exc:
            outcome.append(exc)

    worker = threading.Thread(target=run)
    worker.start()
    assert board.running.wait(2)
    start = time.monotonic()
    link.interrupt(timeout=1)
    worker.join(2)
    assert not worker.is_alive()
    assert time.monotonic() - start < 1
    (result,) = outcome
    assert isinstance(result, ExecResult)
    assert parse_traceback(result.stderr.decode())[0] == "KeyboardInterrupt"
    assert link.exec_checked("print(5)", timeout=1) == "5\n"


@pytest.mark.timeout(10)
def test_interrupt_when_idle_resyncs() -> None:
    link, port, _ = open_link()
    port.feed(b"junk")
    link.interrupt(timeout=1)
    assert link.in_raw_repl
    assert link.exec_checked("print(6)", timeout=1) == "6\n"


@pytest.mark.timeout(10)
def test_soft_reset_clears_state_and_reenters_raw_repl() -> None:
    link, _, board = open_link()
    link.exec_checked("token = 17", timeout=1)
    link.soft_reset(timeout=1)
    assert board.soft_resets == 1
    assert link.in_raw_repl
    with pytest.raises(DeviceExceptionError) as info:
        link.exec_checked("print(token)", timeout=1)
    assert info.value.exc_name == "NameError"  # type: ignore[attr-defined]


@pytest.mark.timeout(10)
def test_calls_from_two_threads_are_serialised() -> None:
    link, _, _ = open_link()
    errors: list[BaseException] = []

    def worker(tag: int) -> None:
        try:
            for i in range(50):
                assert link.exec_checked(f"print({tag} * 1000 + {i})", timeout=2) == (
                    f"{tag * 1000 + i}\n"
                )
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(tag,)) for tag in (1, 2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(8)
    assert errors == []


@pytest.mark.timeout(10)
def test_busy_link_times_out_waiting_for_the_lock() -> None:
    link, _, board = open_link()
    worker = threading.Thread(target=lambda: _swallow(link, "while True: pass", 0.5))
    worker.start()
    assert board.running.wait(2)
    with pytest.raises(TimedOutError) as info:
        link.exec("print(1)", timeout=0.05)
    assert info.value.busy is True  # type: ignore[attr-defined]
    worker.join(3)
    assert link.exec_checked("print(1)", timeout=1) == "1\n"


def _swallow(link: RawReplLink, code: str, timeout: float) -> None:
    with contextlib.suppress(ActorHwError):
        link.exec(code, timeout=timeout)


# --- the port goes away -----------------------------------------------------------------------


@pytest.mark.parametrize(
    "failure",
    [
        serial.SerialException(
            "device reports readiness to read but returned no data "
            "(device disconnected or multiple access on port?)"
        ),
        OSError(errno.EIO, "Input/output error"),
    ],
    ids=["serial-exception", "oserror-eio"],
)
@pytest.mark.parametrize("where", ["read", "write", "in_waiting"])
@pytest.mark.timeout(10)
def test_port_failure_is_link_lost(failure: BaseException, where: str) -> None:
    link, port, _ = open_link()
    setattr(port, f"fail_{where}", failure)
    with pytest.raises(LinkLostError) as info:
        link.exec("print(1)", timeout=1)
    assert info.value.__cause__ is failure
    assert link.lost
    # Every later call fails at once with the same error.
    with pytest.raises(LinkLostError):
        link.exec("print(1)", timeout=1)
    with pytest.raises(LinkLostError):
        link.enter_raw_repl(timeout=1)


@pytest.mark.timeout(10)
def test_write_timeout_is_a_timeout_not_a_lost_link() -> None:
    link, port, _ = open_link()
    port.fail_write = serial.SerialTimeoutException("Write timeout")
    with pytest.raises(TimedOutError) as info:
        link.exec("print(1)", timeout=0.2)
    assert info.value.resynced is False  # type: ignore[attr-defined]
    assert not link.lost


@pytest.mark.timeout(10)
def test_close_from_another_thread_ends_the_exec_with_link_lost() -> None:
    link, _, board = open_link()
    outcome: list[BaseException] = []

    def run() -> None:
        try:
            link.exec("while True: pass", timeout=5)
        except BaseException as exc:
            outcome.append(exc)

    worker = threading.Thread(target=run)
    worker.start()
    assert board.running.wait(2)
    start = time.monotonic()
    link.close()
    worker.join(2)
    assert time.monotonic() - start < 1
    assert len(outcome) == 1
    assert isinstance(outcome[0], LinkLostError)
    link.close()  # idempotent
    with pytest.raises(LinkLostError):
        link.exec("print(1)", timeout=1)


@pytest.mark.timeout(10)
def test_open_of_a_missing_device_is_link_lost() -> None:
    with pytest.raises(LinkLostError):
        RawReplLink.open("/dev/does-not-exist-actorhw", timeout=0.5)


@pytest.mark.timeout(10)
def test_open_of_a_silent_port_is_raw_repl_error() -> None:
    start = time.monotonic()
    with pytest.raises(RawReplError):
        RawReplLink.open("loop://", timeout=0.3)  # echoes what we send: never a banner
    assert time.monotonic() - start < 1.0


@pytest.mark.timeout(10)
def test_context_manager_closes() -> None:
    port, _ = make_link_port()
    with RawReplLink.open(port, timeout=1) as link:
        assert link.exec_checked("print(1)", timeout=1) == "1\n"
    assert link.closed
    assert not port.is_open


# --- fuzz: whatever the board sends ------------------------------------------------------------


def _check_typed(link: RawReplLink, timeout: float) -> ExecResult | ActorHwError:
    start = time.monotonic()
    try:
        result: ExecResult | ActorHwError = link.exec(USER_CODE, timeout=timeout)
    except ActorHwError as exc:
        result = exc
    # Bounded: the deadline, plus the resync budget, plus scheduling slack.
    assert time.monotonic() - start < timeout + 2 * link.resync_timeout + 0.5
    return result


def _well_formed(answer: bytes) -> ExecResult | ResultParseError | None:
    """The result a correct link must return for ``answer``, or None if it is not a frame."""
    if not answer.startswith(b"OK"):
        return None
    end = ANSWER_END.search(answer, 2)
    if end is None:
        return None
    try:
        return split_answer(answer[2 : end.start()])
    except ResultParseError as exc:
        return exc


_PIECES = st.one_of(
    st.binary(max_size=40),
    st.sampled_from(
        [
            b"OK",
            b"\x04",
            b">",
            b"\x04>",
            BANNER,
            b"\x04>" + ANSWER_TRAILER,
            b"R\x01",
            b"R\x00",
            b"\r\n",
            b"Traceback",
        ]
    ),
)


@FUZZ_SETTINGS
@given(answer=st.lists(_PIECES, max_size=12).map(b"".join))
@pytest.mark.timeout(120)
def test_fuzz_random_answers_give_result_or_typed_error(answer: bytes) -> None:
    link, _port, board = open_link(max_output=4096)
    scripted_once(board, answer)
    result = _check_typed(link, timeout=0.05)
    expected = _well_formed(answer)
    if isinstance(expected, ResultParseError):
        assert isinstance(result, ResultParseError), result
    elif expected is not None:
        assert result == expected
    else:
        assert isinstance(result, TimedOutError | ProtocolError | RawReplError), result
    # Whatever happened, the (healthy) board is usable again, and memory stayed bounded.
    assert link.exec_checked("print('after')", timeout=1) == "after\n"
    assert len(link._rx) == 0
    link.close()


@FUZZ_SETTINGS
@given(
    stdout=st.binary(max_size=300).map(lambda b: b.replace(b"\x04", b"")),
    stderr=st.binary(max_size=100).map(lambda b: b.replace(b"\x04", b"")),
    cut=st.integers(min_value=0),
)
@pytest.mark.timeout(120)
def test_fuzz_truncated_frames_time_out_and_resync(stdout: bytes, stderr: bytes, cut: int) -> None:
    frame = b"OK" + stdout + b"\x04" + stderr + b"\x04>"
    cut = cut % len(frame)  # strictly shorter than the frame
    link, _, board = open_link()
    scripted_once(board, frame[:cut])
    with pytest.raises(TimedOutError) as info:
        link.exec(USER_CODE, timeout=0.05)
    assert info.value.resynced is True  # type: ignore[attr-defined]
    assert link.exec_checked("print(1)", timeout=1) == "1\n"
    link.close()


@FUZZ_SETTINGS
@given(
    stdout=st.binary(max_size=2000).map(lambda b: b.replace(b"\x04", b"")),
    stderr=st.binary(max_size=300).map(lambda b: b.replace(b"\x04", b"")),
    pieces=st.lists(st.integers(min_value=1, max_value=64), min_size=1, max_size=50),
)
@pytest.mark.timeout(120)
def test_fuzz_valid_frames_in_random_pieces(
    stdout: bytes, stderr: bytes, pieces: list[int]
) -> None:
    frame = b"OK" + stdout + b"\x04" + stderr + b"\x04>" + ANSWER_TRAILER
    link, port, board = open_link()
    # Deliver the frame in random pieces from another thread, as a slow board would.
    release = threading.Event()
    scripted_once(board, b"")

    def deliver() -> None:
        release.wait(2)
        offset = 0
        index = 0
        while offset < len(frame):
            size = pieces[index % len(pieces)]
            port.feed(frame[offset : offset + size])
            offset += size
            index += 1

    feeder = threading.Thread(target=deliver)
    feeder.start()
    original = board.override

    def override(code: bytes) -> bytes | None:
        assert original is not None
        answer = original(code)
        if answer is not None:
            release.set()
        return answer

    board.override = override
    result = link.exec(USER_CODE, timeout=2)
    feeder.join(2)
    assert result == ExecResult(stdout=stdout, stderr=stderr)
    link.close()


@pytest.mark.timeout(20)
def test_huge_output_is_capped_with_protocol_error() -> None:
    link, _port, _board = open_link(max_output=64 * 1024)
    start = time.monotonic()
    with pytest.raises(ProtocolError) as info:
        link.exec("while True: print('hello world')", timeout=5)
    assert time.monotonic() - start < 2
    assert info.value.resynced is True  # type: ignore[attr-defined]
    assert info.value.max_output == 64 * 1024  # type: ignore[attr-defined]
    assert len(link._rx) < 16 * 1024
    assert link.exec_checked("print(1)", timeout=1) == "1\n"


@FUZZ_SETTINGS
@given(size=st.integers(min_value=1025, max_value=50_000))
@pytest.mark.timeout(120)
def test_fuzz_output_over_the_cap(size: int) -> None:
    link, _, board = open_link(max_output=1024)
    scripted_once(board, b"OK" + b"x" * size + b"\x04\x04>" + ANSWER_TRAILER)
    with pytest.raises(ProtocolError):
        link.exec(USER_CODE, timeout=1)
    assert link.exec_checked("print(2)", timeout=1) == "2\n"
    link.close()


@settings(FUZZ_SETTINGS, max_examples=30)
@given(noise=st.binary(min_size=1, max_size=64))
@pytest.mark.timeout(120)
def test_fuzz_board_that_only_sends_noise(noise: bytes) -> None:
    """A board that answers every byte with noise never yields a result or a hang."""

    class NoiseBoard(FakeMicroPython):
        def on_input(self, port: FakeSerial, data: bytes) -> None:
            port.feed(noise * len(data))

    port = FakeSerial(NoiseBoard())
    link = RawReplLink(port, **FAST)  # type: ignore[arg-type]
    start = time.monotonic()
    with pytest.raises((RawReplError, ProtocolError)):
        link.enter_raw_repl(timeout=0.05)
    with pytest.raises((RawReplError, ProtocolError, TimedOutError)):
        link.exec(USER_CODE, timeout=0.05)
    assert time.monotonic() - start < 1.0
    assert len(link._rx) <= len(BANNER) + 64
    link.close()


@FUZZ_SETTINGS
@given(junk=st.binary(max_size=500))
@pytest.mark.timeout(120)
def test_fuzz_junk_before_the_banner_is_skipped(junk: bytes) -> None:
    port, _board = make_link_port()
    port.feed(junk)
    link = RawReplLink(port, **FAST)  # type: ignore[arg-type]
    link.enter_raw_repl(timeout=1)
    assert link.exec_checked("print(8)", timeout=1) == "8\n"
    link.close()


# --- verified sends for firmware that drops input bytes ------------------------------------

STAGED_CODE = "total = 0\n" + "".join(f"total += {i}  # it's line {i}\n" for i in range(12))
STAGED_CODE += "print('total', total, \"quotes ' \\\\ ok\")"
STAGED_OUT = "total 66 quotes ' \\ ok\n"


def _drop_in_staging(port: FakeSerial, board: FakeMicroPython, offsets: list[int]) -> None:
    """Drop one byte of each of the next verified sends, ``offset`` bytes after the start
    of its first frame (counted over its frames, their Ctrl-Ds and trailers included)."""
    pending = list(offsets)
    hit: set[int] = set()

    def drop(index: int, value: int) -> bool:
        position = index - 1  # the host writes a frame whole before the board reads it
        start = port.written.rfind(b"_ahp=[]", 0, position + 1)
        if not pending or start < 0 or start in hit or position - start != pending[0]:
            return False
        checked = port.written.find(b"sum(_ahc))\x04\x01", start)
        if 0 <= checked < position:
            return False  # past the staging: the run step is as short as any plain exec
        pending.pop(0)
        hit.add(start)
        return True

    board.drop = drop


def _runs(board: FakeMicroPython) -> list[bytes]:
    return [code for code in board.execs if code.startswith(b"exec(globals().pop(")]


@pytest.mark.timeout(60)
def test_verified_send_runs_intact_code_once() -> None:
    link, port, board = open_link(verify_over=40)
    writes: list[bytes] = []
    original = port.write

    def spy(data: bytes) -> int:
        assert not port.in_waiting  # the previous frame was answered and read
        writes.append(bytes(data))
        return original(data)

    port.write = spy  # type: ignore[method-assign]
    assert link.exec_checked(STAGED_CODE, timeout=10) == STAGED_OUT
    assert link.damaged_sends == 0
    assert len(_runs(board)) == 1
    assert board.execs[-1] == b"exec(globals().pop('_ahc'))"
    assert len(writes) > len(STAGED_CODE) // 40  # in frames...
    assert max(len(w) for w in writes) <= 40 + 2  # ...each fits the window (+ Ctrl-D, Ctrl-A)
    assert link.exec_checked("print('small')", timeout=2) == "small\n"  # short: direct
    assert board.execs[-1] == b"print('small')"


@pytest.mark.timeout(20)
def test_verified_send_never_overflows_the_boards_ring() -> None:
    """A board that reads its 64-byte ring only while the host waits loses everything
    beyond it: code sent in one write, or paced without waiting, arrives damaged every
    time; frames that wait for their answer never lose a byte."""
    board = RingBoard(ring=64)
    link, _, _ = open_link(board, verify_over=60)
    code = "".join(f"v{i} = {i} * 3  # 'line' {i}\n" for i in range(60)) + "print(v59, len(dir()))"
    assert len(code) > 1500
    out = link.exec_checked(code, timeout=5).split()
    assert out[0] == "177"
    assert board.lost == 0
    assert link.damaged_sends == 0
    assert len(_runs(board)) == 1


@pytest.mark.parametrize("offset", [0, 3, 10, 40, 41, 42, 90, 200, 330])
@pytest.mark.timeout(60)
def test_verified_send_resends_damaged_code(offset: int) -> None:
    """A byte lost anywhere (a piece, a Ctrl-D, a trailer, the check) is seen, the send
    is made again, and the code runs exactly once."""
    link, port, board = open_link(verify_over=40)
    _drop_in_staging(port, board, [offset])
    start = time.monotonic()
    assert link.exec_checked(STAGED_CODE, timeout=30) == STAGED_OUT
    assert time.monotonic() - start < 10  # a loss shows in about 1 s, not at the deadline
    assert link.damaged_sends <= 1
    assert len(_runs(board)) == 1  # the user code ran exactly once
    assert link.exec_checked("print(1)", timeout=1) == "1\n"


@settings(FUZZ_SETTINGS, max_examples=60)
@given(offset=st.integers(min_value=0, max_value=700), code=st.text(min_size=41, max_size=300))
@pytest.mark.timeout(120)
def test_fuzz_a_byte_lost_in_a_verified_send_never_runs_other_code(offset: int, code: str) -> None:
    link, port, board = open_link(verify_over=40)
    _drop_in_staging(port, board, [offset])
    source = f"s = {code!r}\nprint(len(s))"
    assert link.exec_checked(source, timeout=10) == f"{len(code)}\n"
    assert _runs(board) == [b"exec(globals().pop('_ahc'))"]


@pytest.mark.timeout(60)
def test_verified_send_gives_up_with_protocol_error() -> None:
    link, port, board = open_link(verify_over=40)
    _drop_in_staging(port, board, [10] * 6)
    start = time.monotonic()
    with pytest.raises(ProtocolError) as info:
        link.exec(STAGED_CODE, timeout=30)
    assert time.monotonic() - start < 10  # not the deadline
    assert "damaged" in str(info.value)
    assert link.damaged_sends == 6
    assert not _runs(board)
    assert link.exec_checked("print(1)", timeout=1) == "1\n"


@pytest.mark.timeout(60)
def test_verified_send_falls_back_when_the_copy_does_not_fit() -> None:
    def handler(code: bytes) -> tuple[bytes, bytes] | str:
        if code.startswith(b"_ahc="):
            return b"", b"MemoryError: memory allocation failed, allocating 1200 bytes\r\n"
        return python(code)

    python = python_handler()
    link, _, board = open_link(FakeMicroPython(handler), verify_over=40)
    assert link.exec_checked(STAGED_CODE, timeout=10) == STAGED_OUT
    assert board.execs[-1] == STAGED_CODE.encode()
    # The heap was collected and the join tried once more before giving up on it...
    joins = [n for n, code in enumerate(board.execs) if code.startswith(b"_ahc=")]
    assert len(joins) == 2
    assert b"gc.collect()" in board.execs[joins[1] - 1]
    # ...and the pieces were let go before the code went as it is.
    assert b"_ahp=_aha=_ahc=None" in board.execs[-2]
    assert python.namespace["_ahp"] is None  # type: ignore[attr-defined]
    assert link.damaged_sends == 0  # nothing arrived damaged: it did not fit


def test_verified_send_joins_again_after_collecting_a_fragmented_heap() -> None:
    full = {"yes": True}

    def handler(code: bytes) -> tuple[bytes, bytes] | str:
        if code.startswith(b"_ahc=") and full["yes"]:
            return b"", b"MemoryError: memory allocation failed, allocating 1200 bytes\r\n"
        if b"gc.collect()" in code:
            full["yes"] = False
            return b"", b""
        return python(code)

    python = python_handler()
    link, _, board = open_link(FakeMicroPython(handler), verify_over=40)
    assert link.exec_checked(STAGED_CODE, timeout=10) == STAGED_OUT
    assert STAGED_CODE.encode() not in board.execs  # it ran from the verified copy
    assert len(_runs(board)) == 1


@settings(max_examples=300, deadline=None)
@given(data=st.binary(min_size=1, max_size=400), window=st.integers(min_value=40, max_value=200))
def test_staging_frames_fit_the_window_and_rebuild_the_code(data: bytes, window: int) -> None:
    frames = staging_frames(data, window)
    assert all(len(frame) <= window for frame in frames)
    namespace: dict[str, object] = {}
    printed: list[tuple[object, ...]] = []
    namespace["print"] = lambda *args: printed.append(args)
    for frame in frames:
        exec(frame.decode("ascii"), namespace)
    assert namespace["_ahc"] == data
    assert printed == [(len(data), sum(data))]
    lines = [line for frame in frames for line in frame.decode("ascii").split("\n")]
    pieces = [ast.literal_eval(line[len("_aha(") : -1]) for line in lines if line[:5] == "_aha("]
    assert b"".join(pieces) == data
    if len(data) > 30 and data.isascii() and data.decode().isprintable():
        # No piece of code is a literal the firmware would intern (and never free).
        assert min(len(piece) for piece in pieces) > 10


@settings(max_examples=200, deadline=None)
@given(data=st.binary(min_size=1, max_size=200), cut=st.integers(min_value=0))
@pytest.mark.timeout(60)
def test_bytes_literal_round_trips_and_any_lost_byte_shows(data: bytes, cut: int) -> None:
    literal = bytes_literal(data)
    assert ast.literal_eval(literal.decode("ascii")) == data
    assert literal.count(b"'") == 2  # only the delimiters
    cut %= len(literal)
    damaged = literal[:cut] + literal[cut + 1 :]
    try:
        value = ast.literal_eval(damaged.decode("ascii"))
    except (SyntaxError, ValueError):
        return
    # A lost byte is seen, or harmless: the board's sum() fails on a str (lost 'b'),
    # or the (len, sum) it reports differ, or the bytes are the same anyway (b'\x01'
    # that lost its 'x' is the octal escape b'\01').
    if isinstance(value, str):
        with pytest.raises(TypeError):
            sum(value)  # type: ignore[arg-type]
        return
    assert isinstance(value, bytes)
    assert value == data or (len(value), sum(value)) != (len(data), sum(data))
