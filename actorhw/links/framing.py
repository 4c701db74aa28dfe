"""The MicroPython raw REPL's framing, pure: what the bytes mean, without I/O or a clock.

A raw-REPL exec is answered as ``OK<stdout>\\x04<stderr>\\x04>``.  Read naively, the
first ``\\x04`` ends stdout, so code that prints ``\\x04`` (or ``\\x04\\x04>``) gets a
truncated stdout reported as success, and the rest of its output pollutes the next call.
To know where an answer really ends, the link sends ``Ctrl-A`` right after the code's
``Ctrl-D`` (:data:`EXEC_TRAILER`): the board reads it only once the code has finished
and answers it with the raw-REPL banner, so an answer ends with
``\\x04>raw REPL; CTRL-B to exit\\r\\n>`` (:data:`ANSWER_END`), which stdout would have to
print verbatim to fool the reader.  Between ``OK`` and that end lie
``stdout \\x04 stderr``; :func:`split_answer` splits them exactly, or raises
:class:`~actorhw.core.errors.ResultParseError` when the output makes that impossible.

Line endings: boards send ``\\r\\n``; a pty in cooked mode turns the banner's into
``\\r\\r\\n``, and some ports send bare ``\\n``.  Every marker here accepts all three.

:class:`AnswerReader` is the sans-I/O parser the link feeds with what it reads; it is
fuzzed without threads or ports (tests/unit/test_framing_fuzz.py).

This module imports core only.
"""

from __future__ import annotations

import re
from typing import Final

import attrs

from actorhw.core.errors import ProtocolError, ResultParseError

__all__ = [
    "ANSWER_END",
    "BANNER",
    "CTRL_A",
    "CTRL_B",
    "CTRL_C",
    "CTRL_D",
    "EXEC_TRAILER",
    "RAW_PASTE_REQUEST",
    "RAW_REPL_BANNER",
    "AnswerReader",
    "ExecResult",
    "RawPasteAnswer",
    "bytes_literal",
    "nonce_answer",
    "parse_raw_paste_answer",
    "parse_traceback",
    "split_answer",
]

CTRL_A: Final = b"\x01"
CTRL_B: Final = b"\x02"
CTRL_C: Final = b"\x03"
CTRL_D: Final = b"\x04"
RAW_PASTE_REQUEST: Final = b"\x05A\x01"
EXEC_TRAILER: Final = CTRL_A
"""Sent after each exec's Ctrl-D: its banner marks where the answer really ends."""

RAW_REPL_BANNER: Final = b"raw REPL; CTRL-B to exit\r\n>"
"""What the board prints when it enters (or re-enters) the raw REPL (``\\r\\n`` form)."""

BANNER: Final = re.compile(rb"raw REPL; CTRL-B to exit\r*\n>")
"""The banner with any of the line endings boards and ptys produce."""

ANSWER_END: Final = re.compile(rb"\x04>raw REPL; CTRL-B to exit\r*\n>")
"""The end of an exec answer followed by the banner that answers :data:`EXEC_TRAILER`."""

_search_end = ANSWER_END.search
_ANSWER_END_MAX: Final = 40  # longest match of ANSWER_END we look back for across chunks
_TRACEBACK_HEAD: Final = b"Traceback (most recent call last):"
_EXC_LINE: Final = re.compile(r"^([A-Za-z_][A-Za-z0-9_.]*)(?::\s?(.*))?$")
_UNSAFE_IN_LITERAL: Final = re.compile(rb"[^\x20-\x26\x28-\x5b\x5d-\x7e]")
_ESCAPES: Final = [b"\\n" if i == 10 else b"\\x%02x" % i for i in range(256)]


@attrs.frozen(slots=True)
class ExecResult:
    """What one raw-REPL ``exec`` printed.

    Attributes:
        stdout: bytes the code printed (line endings as the board sent them).
        stderr: the board's traceback if the code raised, else ``b""``.
    """

    stdout: bytes
    stderr: bytes

    @property
    def ok(self) -> bool:
        """True when the code raised nothing (stderr is empty)."""
        return not self.stderr


def parse_traceback(text: str) -> tuple[str, str]:
    """Split a MicroPython traceback into the exception name and its message.

    The exception is named on the last non-empty line, e.g.
    ``ZeroDivisionError: division by zero`` or ``KeyboardInterrupt: ``.

    Returns:
        ``(exc_name, message)``; ``exc_name`` is ``"UnknownError"`` when the last line
        does not start with an exception name.
    """
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    if not lines:
        return "UnknownError", ""
    last = lines[-1]
    match = _EXC_LINE.match(last)
    if match is None:
        return "UnknownError", last
    return match.group(1), (match.group(2) or "").strip()


def bytes_literal(data: bytes) -> bytes:
    """A MicroPython bytes literal for ``data`` whose only quotes are its delimiters.

    Quotes and backslashes are written as ``\\x27`` and ``\\x5c`` (never ``\\'``), so
    losing any single byte on the way can never end the literal early and turn the
    rest into code: it changes the literal's length or sum, or breaks the syntax.
    """
    return b"b'" + _UNSAFE_IN_LITERAL.sub(_escape_byte, data) + b"'"


def _escape_byte(match: re.Match[bytes]) -> bytes:
    return _ESCAPES[match.group()[0]]


def split_answer(body: bytes, *, name: str = "board") -> ExecResult:
    """Split ``stdout \\x04 stderr`` (an answer between ``OK`` and :data:`ANSWER_END`).

    The board writes stdout, one ``\\x04``, then stderr, which is empty or a traceback
    (``Traceback (most recent call last):...`` or a bare ``Name: message`` line) ending
    in a newline.  With one ``\\x04`` in ``body`` the split is plain.  With more, stdout
    (or an exception message) contained ``\\x04`` bytes: the split is the one place where
    what follows is empty or a traceback; if no place or more than one fits, the output
    cannot be split exactly.

    Raises:
        ResultParseError: the output cannot be split exactly (never a guess).
    """
    first = body.find(CTRL_D)
    if first < 0:
        raise ResultParseError(
            f"{name}: the answer has no end-of-output marker: {body[:60]!r}",
            device=name,
            text=body[:200].decode("latin-1"),
        )
    if body.find(CTRL_D, first + 1) < 0:
        return ExecResult(stdout=body[:first], stderr=body[first + 1 :])
    splits = [i for i in _positions(body, CTRL_D) if _is_stderr(body[i + 1 :])]
    if len(splits) != 1:
        raise ResultParseError(
            f"{name}: the output contains the raw REPL's end-of-output byte \\x04 "
            f"and cannot be split into stdout and stderr exactly "
            f"({len(splits)} possible splits); nothing was lost on the link",
            device=name,
            text=body[:200].decode("latin-1"),
        )
    cut = splits[0]
    return ExecResult(stdout=body[:cut], stderr=body[cut + 1 :])


def _positions(data: bytes, byte: bytes) -> list[int]:
    out = []
    i = data.find(byte)
    while i >= 0:
        out.append(i)
        i = data.find(byte, i + 1)
    return out


def _is_stderr(tail: bytes) -> bool:
    if not tail:
        return True
    if not tail.endswith(b"\n"):
        return False
    if tail.startswith(_TRACEBACK_HEAD):
        return True
    # A bare exception line (no traceback: raised while compiling, e.g. MemoryError).
    return tail.count(b"\n") == 1 and _EXC_LINE.match(tail.decode("latin-1").strip()) is not None


def nonce_answer(value: int) -> re.Pattern[bytes]:
    """The plain answer to ``print(value - 1 + 1)`` style checks: ``OK<value>\\n\\x04\\x04>``."""
    return re.compile(rb"OK%d\r*\n\x04\x04>" % value)


@attrs.frozen(slots=True)
class RawPasteAnswer:
    """The board's answer to :data:`RAW_PASTE_REQUEST`.

    Attributes:
        supported: raw-paste mode is on (the board sent ``R\\x01``).
        window: the flow-control window in bytes (0 when not supported).
        consumed: how many bytes of the stream the answer took.
    """

    supported: bool
    window: int
    consumed: int


def parse_raw_paste_answer(data: bytes, *, name: str = "board") -> RawPasteAnswer | None:
    """Read the answer to a raw-paste request from the start of ``data``.

    ``R\\x01`` and a 16-bit little-endian window: supported; ``R\\x00``: the firmware
    knows raw-paste but refuses it; the raw-REPL banner: old firmware (1.9.2) took the
    request as text and its Ctrl-A re-entered the raw REPL.

    Returns:
        The answer, or None when more bytes are needed.

    Raises:
        ProtocolError: the bytes are none of those.
    """
    if len(data) < 2:
        return None
    head = data[:2]
    if head == b"R\x01":
        if len(data) < 4:
            return None
        window = int.from_bytes(data[2:4], "little")
        if window == 0:
            raise ProtocolError(f"{name} offered a raw-paste window of 0", device=name)
        return RawPasteAnswer(supported=True, window=window, consumed=4)
    if head == b"R\x00":
        return RawPasteAnswer(supported=False, window=0, consumed=2)
    if head == b"ra":
        match = BANNER.match(data)
        if match is not None:
            return RawPasteAnswer(supported=False, window=0, consumed=match.end())
        if len(data) < 30 and b"raw REPL; CTRL-B to exit\r\r\n>"[: len(data)].startswith(
            data[: min(len(data), 24)]
        ):
            return None
    raise ProtocolError(f"{name} answered the raw-paste probe with {data[:40]!r}", device=name)


class AnswerReader:
    """Sans-I/O reader of one exec's answer: feed it bytes until :attr:`result` is set.

    Args:
        max_output: most bytes of stdout + stderr accepted; beyond it
            :class:`~actorhw.core.errors.ProtocolError` (``overflow=True``).
        expect_ok: the answer starts with ``OK`` (plain raw REPL); raw-paste answers
            do not (the board acknowledged the data with ``\\x04`` already).
        name: the board's name in errors.

    After :attr:`done`, :attr:`result` holds the split answer (or :meth:`feed` raised
    :class:`~actorhw.core.errors.ResultParseError`, with :attr:`done` True and the
    stream in step) and :attr:`rest` the bytes that came after the answer.
    """

    __slots__ = ("_buf", "_expect_ok", "_max", "_name", "_scan", "done", "rest", "result")

    def __init__(self, *, max_output: int, expect_ok: bool = True, name: str = "board") -> None:
        self._buf = bytearray()
        self._expect_ok = expect_ok
        self._max = max_output
        self._name = name
        self._scan = 0
        self.done = False
        self.result: ExecResult | None = None
        self.rest = b""

    @property
    def waiting_for_ok(self) -> bool:
        """True until the leading ``OK`` arrived (the board has taken the code)."""
        return self._expect_ok

    def feed(self, data: bytes | bytearray) -> bool:
        """Take more bytes; True once the answer is complete.

        Raises:
            ProtocolError: the answer does not start with ``OK``, or is longer than
                ``max_output`` (``overflow=True``).
            ResultParseError: the answer is complete but cannot be split exactly.
        """
        if self.done:
            self.rest += bytes(data)
            return True
        buf = self._buf
        buf += data
        if self._expect_ok:
            if not buf.startswith(b"OK"):
                if len(buf) >= 2 or not b"OK".startswith(buf):
                    self._bad_start()
                return False
            del buf[:2]
            self._expect_ok = False
        match = _search_end(buf, self._scan)
        if match is None:
            if len(buf) > self._max + _ANSWER_END_MAX:
                raise ProtocolError(
                    f"{self._name} sent more than {self._max} bytes of output",
                    device=self._name,
                    max_output=self._max,
                    overflow=True,
                )
            self._scan = max(0, len(buf) - _ANSWER_END_MAX)
            return False
        start, end = match.span()
        self.done = True
        if end < len(buf):
            self.rest = bytes(buf[end:])
        if start > self._max + 1:
            buf.clear()
            raise ProtocolError(
                f"{self._name} sent more than {self._max} bytes of output",
                device=self._name,
                max_output=self._max,
                overflow=True,
                resynced=True,
            )
        # The common answer (one \x04: stdout, then stderr) is split here; the rest
        # by split_answer.
        first = buf.find(4, 0, start)
        if first >= 0 and buf.find(4, first + 1, start) < 0:
            self.result = ExecResult(bytes(buf[:first]), bytes(buf[first + 1 : start]))
            buf.clear()
        else:
            body = bytes(buf[:start])
            buf.clear()
            self.result = split_answer(body, name=self._name)
        return True

    def naive_result(self) -> ExecResult | None:
        """Conclude an answer that ended without the trailer's banner, if it did.

        When what came (after ``OK``) ends with the plain ``\x04>`` end, split it as
        ``stdout \x04 stderr`` and finish; else None (more is needed).  Only for when the
        trailer is known to be lost (a tty drops queued input on Ctrl-C).
        """
        buf = self._buf
        if self.done or self._expect_ok or not buf.endswith(b"\x04>"):
            return None
        try:
            result = split_answer(bytes(buf[:-2]), name=self._name)
        except ResultParseError:
            return None
        self.done, self.result = True, result
        buf.clear()
        return result

    def _bad_start(self) -> None:
        raise ProtocolError(
            f"{self._name} sent {bytes(self._buf[:40])!r} where 'OK' was expected",
            device=self._name,
            expected="OK",
        )
