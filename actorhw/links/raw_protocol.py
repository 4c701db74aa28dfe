"""The raw REPL's wire protocol: how code is sent (plain, paced, verified, raw-paste), how
an answer is read to its true end, how the raw REPL is entered and the stream brought
back in step.

:class:`RawReplProtocol` holds it; :class:`~actorhw.links.raw_repl.RawReplLink` is its
public face (construction, locking, errors for callers).  The bytes' meaning is
:mod:`actorhw.links.framing`, the deadline-bounded I/O :mod:`actorhw.links.port_io`.

This module imports core and links only.
"""

from __future__ import annotations

import random
import re
import time
from typing import Final

from actorhw.core.errors import ProtocolError, ResultParseError
from actorhw.links.framing import (
    BANNER,
    CTRL_A,
    CTRL_C,
    CTRL_D,
    EXEC_TRAILER,
    RAW_PASTE_REQUEST,
    AnswerReader,
    ExecResult,
    bytes_literal,
    nonce_answer,
    parse_raw_paste_answer,
)
from actorhw.links.port_io import DeadlinePassed, Overflow, PortIO

__all__ = ["SEARCH_LIMIT", "RawReplProtocol"]

SEARCH_LIMIT: Final = 64 * 1024
"""Most bytes skipped while looking for a marker (a banner, ``soft reboot``)."""
_STAGED_NAME: Final = b"_actorhw_src"
_STAGE_PREFIX: Final = _STAGED_NAME + b"="
_STAGE_SUFFIX: Final = b"\nprint(len(%s),sum(%s))" % (_STAGED_NAME, _STAGED_NAME)
_RUN_STAGED: Final = b"try:\n exec(%s)\nfinally:\n del %s" % (_STAGED_NAME, _STAGED_NAME)
_EXEC_END: Final = CTRL_D + EXEC_TRAILER
_END_HEAD: Final = b"\x04>raw REPL; CTRL-B to exit"
_ANSWER_ENDS: Final = (_END_HEAD + b"\r\n>", _END_HEAD + b"\r\r\n>", _END_HEAD + b"\n>")
"""The forms of :data:`~actorhw.links.framing.ANSWER_END` boards and ptys send."""
_SHORT_ANSWER: Final = 4096
"""Longer answers are gathered by :class:`AnswerReader` (a bytearray, not bytes)."""
_COLLECT: Final = b"import gc\ngc.collect()"
_SYNC_ATTEMPTS: Final = 3
_INTERRUPTED: Final = re.compile(rb"KeyboardInterrupt: \r*\n\x04>")
_VERIFY_ATTEMPTS: Final = 6
_RETRY_CHUNK: Final = 32
_RETRY_PAUSE_S: Final = 0.001
_RETRY_MAX_PAUSE_S: Final = 0.008
_FALLBACK_PAUSE_S: Final = 0.002
_FIRST_POLL_S: Final = 0.05
_MAX_POLL_INTERVAL_S: Final = 0.4


class RawReplProtocol:
    """The protocol state of one link and the steps on the wire (no locking here: the
    public methods of :class:`~actorhw.links.raw_repl.RawReplLink` hold its lock)."""

    name: str
    pacing_s: float
    chunk_size: int
    max_output: int
    resync_timeout: float
    verify_over: int | None
    damaged_sends: int
    raw_paste_sends: int

    def __init__(self, io: PortIO) -> None:
        self.interrupted = False
        """Set by an interrupt (Ctrl-C) while an exec runs; reset when the next starts."""
        self._io = io
        self._in_raw = False
        self._raw_paste: bool | None = None
        self._window = 0
        self._rng = random.Random()

    def _exec_frame(
        self,
        data: bytes,
        deadline: float,
        *,
        ok_deadline: float | None = None,
        pacing: tuple[int, float] | None = None,
    ) -> ExecResult:
        """Send one piece of code and read its answer through the trailer's banner."""
        self._in_raw = False  # until the answer's end the board is busy with our code
        self.interrupted = False
        io = self._io
        if self._raw_paste and len(data) > self.chunk_size:
            self._send_raw_paste(data, deadline)
            reader = AnswerReader(max_output=self.max_output, expect_ok=False, name=self.name)
        else:
            if pacing is None and (self.pacing_s <= 0 or len(data) <= self.chunk_size):
                io.write(data + _EXEC_END, deadline)  # one write: the frame built once
            else:
                chunk, pause = pacing or (self.chunk_size, self.pacing_s)
                self._send_plain(data, deadline, chunk, pause)
            reader = AnswerReader(max_output=self.max_output, name=self.name)
        pending = bytes(io.rx)
        io.rx.clear()
        return self._read_answer(reader, pending, deadline, ok_deadline)

    def _exec_short(self, data: bytes, deadline: float) -> ExecResult:
        """:meth:`_exec_frame` for short code with nothing pending: the exec most calls
        are, in as few steps as it takes.

        The frame goes out in one write; the answer is gathered until it ends with the
        trailer's banner.  When it is the plain answer (``OK``, stdout, one ``\x04``,
        stderr, the end, nothing after it) it is split here; anything else (an end
        followed by more bytes, several ``\x04``, no ``OK``, a long answer, an
        interrupt) goes on through :class:`AnswerReader`, which reads every answer.
        """
        self._in_raw = False
        self.interrupted = False
        io = self._io
        io.write(data + _EXEC_END, deadline)
        read_chunk = io.read_chunk
        answer = b""
        while len(answer) < _SHORT_ANSWER:
            got = read_chunk(deadline)
            if not got:
                if self.interrupted:
                    break
                continue
            seen = len(answer)
            answer += got
            if answer.endswith(_ANSWER_ENDS):
                end = answer.find(_END_HEAD, 2)
                if answer[end:] in _ANSWER_ENDS and answer.startswith(b"OK"):
                    first = answer.find(CTRL_D, 2, end)
                    if (
                        first > 0
                        and answer.find(CTRL_D, first + 1, end) < 0
                        and end <= self.max_output + 3
                    ):
                        self._in_raw = True
                        return ExecResult(answer[2:first], answer[first + 1 : end])
                break
            if answer.find(_END_HEAD, max(0, seen - len(_END_HEAD))) >= 0:
                break  # the end, and more after it
        reader = AnswerReader(max_output=self.max_output, name=self.name)
        return self._read_answer(reader, answer, deadline, None)

    def _read_answer(
        self, reader: AnswerReader, pending: bytes, deadline: float, ok_deadline: float | None
    ) -> ExecResult:
        """Feed ``pending`` and what comes next to ``reader`` until the answer ends."""
        io = self._io
        try:
            done = reader.feed(pending) if pending else False
            read_chunk, feed = io.read_chunk, reader.feed
            while not done:
                got = read_chunk(
                    ok_deadline if ok_deadline is not None and reader.waiting_for_ok else deadline
                )
                if got:
                    done = feed(got)
                elif self.interrupted:
                    # Ctrl-C from interrupt(): a tty drops the input queued behind it, the
                    # trailer included, so the banner may never come: a quiet line after
                    # the plain end is the end.
                    done = reader.naive_result() is not None
        finally:
            if reader.rest:
                io.rx[:0] = reader.rest
        result = reader.result
        assert result is not None
        # After an interrupt the trailer's banner may still come (or not): the next call
        # enters the raw REPL again and its nonce check skips whatever is late.
        self._in_raw = not self.interrupted
        return result

    def _exec_verified(self, data: bytes, deadline: float) -> ExecResult:
        """Send code as a checked bytes literal first, then ``exec`` it on the board.

        For firmware that drops input bytes when its receive buffer overflows (the
        micro:bit's is 64 bytes): a dropped byte changes the length or sum the board
        reports, or breaks the literal (or, if the Ctrl-D was dropped, the trailing
        Ctrl-A resets the line), and the staging step is sent again.
        """
        stage = _STAGE_PREFIX + bytes_literal(data) + _STAGE_SUFFIX
        expected = b"%d %d\n" % (len(data), sum(data))
        last: ExecResult | None = None
        collected = False
        for attempt in range(_VERIFY_ATTEMPTS):
            # The first try goes at full speed; after a loss, small chunks with growing
            # pauses (loss comes in bursts, under load).
            pacing = None
            if attempt:
                pause = max(self.pacing_s, _RETRY_PAUSE_S * 2 ** (attempt - 1))
                pacing = (_RETRY_CHUNK, min(pause, _RETRY_MAX_PAUSE_S))
            send_time = 0.0 if pacing is None else pacing[1] * (len(stage) // pacing[0])
            # A dropped Ctrl-D shows at once (the trailing Ctrl-A answers with the banner
            # instead of OK); this bound is for when the trailer is lost as well.
            ok_budget = send_time + 0.25 + 100e-6 * len(stage)
            try:
                result = self._exec_frame(
                    stage,
                    deadline,
                    ok_deadline=min(deadline, time.monotonic() + ok_budget),
                    pacing=pacing,
                )
            except (DeadlinePassed, ProtocolError, ResultParseError):
                if time.monotonic() >= deadline or not self._recover(deadline):
                    raise DeadlinePassed from None
                self.damaged_sends += 1
                continue
            if not result.stderr and result.stdout.replace(b"\r", b"") == expected:
                return self._exec_frame(_RUN_STAGED, deadline)
            last = result
            self.damaged_sends += 1
            if b"KeyboardInterrupt" in result.stderr:
                return result  # interrupt() from another thread: stop, do not retry
            if b"MemoryError" in result.stderr:
                self.damaged_sends -= 1  # it arrived; it did not fit
                if not collected:  # a fragmented heap, often: collect, stage again
                    collected = True
                    self._exec_frame(_COLLECT, deadline)
                    continue
                # The staged copy does not fit: the code goes as it is, unverified, in
                # small paced pieces.  A longer pause does not buy fewer losses (QEMU
                # micro:bit, 3 busy processes on 2 cores, 1 KiB: 2 of 30 damaged at
                # 2 ms and at 8 ms per 32 bytes) but costs 260 ms instead of 70.
                return self._exec_frame(
                    data, deadline, pacing=(_RETRY_CHUNK, max(self.pacing_s, _FALLBACK_PAUSE_S))
                )
        answer = "no answer" if last is None else repr(last.stdout[-60:] + last.stderr[-120:])
        raise ProtocolError(
            f"code sent to {self.name} arrived damaged {_VERIFY_ATTEMPTS} times "
            f"(the board drops input bytes); last answer: {answer}",
            device=self.name,
        )

    def _send_plain(self, data: bytes, deadline: float, chunk: int, pause: float) -> None:
        io = self._io
        if pause <= 0 or len(data) <= chunk:
            io.write(data + _EXEC_END, deadline)
            return
        for start in range(0, len(data), chunk):
            if start:
                io.pause(pause, deadline)
            io.write(data[start : start + chunk], deadline)
        io.write(_EXEC_END, deadline)

    def _send_raw_paste(self, data: bytes, deadline: float) -> None:
        """Raw-paste transfer: the board asks for each window's worth with ``\\x01``."""
        io = self._io
        io.write(RAW_PASTE_REQUEST, deadline)
        answer = parse_raw_paste_answer(io.take(4, deadline), name=self.name)
        if answer is None or not answer.supported:
            raise ProtocolError(
                f"{self.name} refused raw-paste mode it accepted before", device=self.name
            )
        window = answer.window
        remain, sent = window, 0
        self.raw_paste_sends += 1
        while sent < len(data):
            while remain == 0 or io.rx or io.in_waiting():
                flow = io.take(1, deadline)
                if flow == CTRL_A:
                    remain += window
                elif flow == CTRL_D:
                    # The board ended the transfer early (a compile error, say): we
                    # acknowledge, and its output follows as usual.
                    io.write(_EXEC_END, deadline)
                    return
                else:
                    raise ProtocolError(
                        f"{self.name} sent {flow!r} during raw-paste transfer", device=self.name
                    )
            piece = data[sent : sent + remain]
            io.write(piece, deadline)
            sent += len(piece)
            remain -= len(piece)
        io.write(_EXEC_END, deadline)
        # The board acknowledges the end of the data with Ctrl-D, then runs the code.
        junk = io.read_until(CTRL_D, deadline, limit=self.max_output)
        if junk.strip(CTRL_A):
            raise ProtocolError(
                f"{self.name} sent {junk[:40]!r} before the raw-paste acknowledgement",
                device=self.name,
            )

    # --- entering and resynchronising ---------------------------------------------------

    def _enter_raw(self, deadline: float) -> None:
        """Ctrl-C, drain, Ctrl-A until the banner, then a nonce exec to be in step."""
        io = self._io
        self._in_raw = False
        io.write(CTRL_C + CTRL_C, deadline)
        io.drain(self.max_output)
        interval = _FIRST_POLL_S
        while True:
            io.write(CTRL_A, deadline)
            try:
                io.skip_until((BANNER,), min(deadline, time.monotonic() + interval), keep=64)
                break
            except DeadlinePassed:
                if time.monotonic() >= deadline:
                    raise
                interval = min(interval * 2, _MAX_POLL_INTERVAL_S)
                io.write(CTRL_C + CTRL_C, deadline)
        # Extra banners (from repeated polls) or a late traceback may still be on the
        # way: a nonce the board has to compute marks where the stream is in step.  A
        # Ctrl-C that reached running code after the first one leaves a KeyboardInterrupt
        # pending, which then hits this check instead: run it again in that case.
        for _ in range(_SYNC_ATTEMPTS):
            nonce = self._rng.randrange(10**8, 10**9)
            io.write(b"print(%d+1)" % nonce + CTRL_D, deadline)
            if io.skip_until((nonce_answer(nonce + 1), _INTERRUPTED), deadline, keep=64) == 0:
                break
        else:
            raise DeadlinePassed
        if self._raw_paste is None:
            self._probe_raw_paste(deadline)
        self._in_raw = True

    def _probe_raw_paste(self, deadline: float) -> None:
        """One probe per connection: does the firmware take raw-paste, with what window?"""
        io = self._io
        io.write(RAW_PASTE_REQUEST, deadline)
        while True:
            answer = parse_raw_paste_answer(bytes(io.rx), name=self.name)
            if answer is not None:
                break
            io.rx += io.read_chunk(deadline)
        del io.rx[: answer.consumed]
        if answer.supported:
            # We have to finish the transfer; an empty one runs nothing.
            io.write(CTRL_D, deadline)
            for _ in range(3):  # acknowledgement, stdout, stderr
                io.read_until(CTRL_D, deadline, limit=SEARCH_LIMIT)
            io.expect(b">", deadline)
        self._raw_paste = answer.supported
        self._window = answer.window

    def _recover(self, deadline: float | None = None) -> bool:
        """After a failed exec: Ctrl-C and try to get the raw prompt back, bounded."""
        self._in_raw = False
        if deadline is None:
            deadline = time.monotonic() + self.resync_timeout
        try:
            self._enter_raw(deadline)
        except (DeadlinePassed, ProtocolError, Overflow):
            self._io.rx.clear()
            return False
        return True
