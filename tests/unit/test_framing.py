"""The raw REPL's framing, pure (no threads, no ports), and output holding its markers.

Issue 13 item 4: output that contains the raw REPL's markers (``\\x04``, ``\\x04>``) comes
back exactly, or a typed error says it could not; never a truncated result reported as
success, never a board reset for it.
"""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from actorhw.core.errors import ProtocolError, ResultParseError
from actorhw.links import RawReplLink
from actorhw.links.framing import (
    AnswerReader,
    ExecResult,
    parse_raw_paste_answer,
    split_answer,
)
from tests.fakes_serial import ANSWER_TRAILER, make_link_port

END = b"\x04>" + ANSWER_TRAILER
TRACEBACK = b'Traceback (most recent call last):\r\n  File "<stdin>", line 1\r\nValueError: x\r\n'


def answer(stdout: bytes, stderr: bytes = b"", *, ok: bool = True) -> bytes:
    return (b"OK" if ok else b"") + stdout + b"\x04" + stderr + END


def read_all(data: bytes, pieces: list[int] | None = None, **kw: object) -> AnswerReader:
    reader = AnswerReader(max_output=1 << 20, **kw)  # type: ignore[arg-type]
    sizes = pieces or [len(data) or 1]
    offset, i = 0, 0
    while offset < len(data) and not reader.done:
        size = sizes[i % len(sizes)]
        reader.feed(data[offset : offset + size])
        offset, i = offset + size, i + 1
    return reader


@pytest.mark.parametrize(
    ("stdout", "stderr"),
    [
        (b"2\r\n", b""),
        (b"1\x04\x04>\r\n2\r\n", b""),  # print('1\x04\x04>'); print('2')
        (b"\x04\x04>OK\r\n", b""),  # print('\x04\x04>OK')
        (b"a\x04b\n", b""),  # a lone \x04, bare \n line ending
        (b"x\x04\r\n", TRACEBACK),  # print('x\x04'); raise
        (b"\x04Traceback (most recent call last):\r\n", b""),
        (b"", TRACEBACK),
    ],
)
def test_output_with_markers_comes_back_exactly(stdout: bytes, stderr: bytes) -> None:
    reader = read_all(answer(stdout, stderr) + b"rest")
    assert reader.result == ExecResult(stdout=stdout, stderr=stderr)
    assert reader.rest == b"rest"


def test_ambiguous_output_is_a_typed_error_not_a_guess() -> None:
    # stdout holds '\x04' + a traceback-looking tail and an exception followed.
    stdout = b"\x04" + TRACEBACK
    with pytest.raises(ResultParseError, match="cannot be split"):
        split_answer(stdout + b"\x04" + TRACEBACK)
    # An exception message holding \x04 and a name-like tail: two splits fit.
    with pytest.raises(ResultParseError):
        split_answer(b"\x04" + TRACEBACK[:-2] + b"\x04X: y\r\n")


def test_line_endings_cooked_raw_and_bare() -> None:
    for ending in (b"\r\n", b"\r\r\n", b"\n"):
        data = b"OK5\n\x04\x04>raw REPL; CTRL-B to exit" + ending + b">"
        assert read_all(data).result == ExecResult(stdout=b"5\n", stderr=b"")


def test_not_ok_is_a_protocol_error() -> None:
    with pytest.raises(ProtocolError):
        read_all(b"XK2\x04\x04>")
    with pytest.raises(ProtocolError):
        read_all(b"raw REPL; CTRL-B to exit\r\n>")


def test_output_over_the_cap() -> None:
    reader = AnswerReader(max_output=10)
    with pytest.raises(ProtocolError) as info:
        reader.feed(b"OK" + b"x" * 100)
    assert info.value.overflow is True  # type: ignore[attr-defined]


def test_raw_paste_answers() -> None:
    assert parse_raw_paste_answer(b"R") is None
    assert parse_raw_paste_answer(b"R\x01\x80") is None
    got = parse_raw_paste_answer(b"R\x01\x80\x00\x01")
    assert got is not None and (got.supported, got.window, got.consumed) == (True, 128, 4)
    got = parse_raw_paste_answer(b"R\x00")
    assert got is not None and not got.supported
    banner = b"raw REPL; CTRL-B to exit\r\r\n>"
    assert parse_raw_paste_answer(banner[:10]) is None
    got = parse_raw_paste_answer(banner + b"x")
    assert got is not None and not got.supported and got.consumed == len(banner)
    with pytest.raises(ProtocolError):
        parse_raw_paste_answer(b"R\x01\x00\x00")
    with pytest.raises(ProtocolError):
        parse_raw_paste_answer(b"zz")


@settings(max_examples=300, deadline=None)
@given(
    stdout=st.binary(max_size=300),
    raised=st.booleans(),
    message=st.binary(max_size=40).map(lambda b: b.replace(b"\n", b"")),
    pieces=st.lists(st.integers(min_value=1, max_value=40), min_size=1, max_size=20),
)
def test_fuzz_any_output_exact_or_typed_error(
    stdout: bytes, raised: bool, message: bytes, pieces: list[int]
) -> None:
    """Whatever stdout holds, in whatever pieces it comes: exact, or ResultParseError."""
    stderr = (TRACEBACK[:-2] + message + b"\r\n") if raised else b""
    if END in stdout + b"\x04" + stderr:
        return  # output that prints the very end marker verbatim is out of reach
    try:
        reader = read_all(answer(stdout, stderr), pieces)
    except ResultParseError:
        assert b"\x04" in stdout or b"\x04" in stderr
        return
    assert reader.done
    assert reader.result == ExecResult(stdout=stdout, stderr=stderr)


@settings(max_examples=300, deadline=None)
@given(data=st.binary(max_size=400), pieces=st.lists(st.integers(1, 50), min_size=1))
def test_fuzz_garbage_never_escapes_the_typed_errors(data: bytes, pieces: list[int]) -> None:
    try:
        reader = read_all(data, pieces)
    except (ProtocolError, ResultParseError):
        return
    assert reader.done == (reader.result is not None)


# --- the link, end to end on the fake board --------------------------------------------------


@pytest.mark.timeout(10)
@pytest.mark.parametrize(
    ("code", "stdout"),
    [
        ("print('1\\x04\\x04>'); print('2')", b"1\x04\x04>\r\n2\r\n"),
        ("print('\\x04\\x04>OK')", b"\x04\x04>OK\r\n"),
        ("print('a\\x04b')", b"a\x04b\r\n"),
    ],
)
def test_link_returns_marker_output_exactly_without_reset(code: str, stdout: bytes) -> None:
    port, board = make_link_port()
    link = RawReplLink.open(port, timeout=1, resync_timeout=0.05)
    entries = port.written.count(b"\x03\x03\x01")
    assert link.exec(code, timeout=1) == ExecResult(stdout=stdout, stderr=b"")
    assert link.exec_checked("print(7)", timeout=1) == "7\n"
    assert port.written.count(b"\x03\x03\x01") == entries  # never re-entered, never reset
    assert board.soft_resets == 0
    link.close()
