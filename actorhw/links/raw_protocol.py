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

__all__ = ["SEARCH_LIMIT", "RawReplProtocol", "staging_frames", "still_to_come"]

SEARCH_LIMIT: Final = 64 * 1024
"""Most bytes skipped while looking for a marker (a banner, ``soft reboot``)."""
_PARTS_OPEN: Final = b"_ahp=[];_aha=_ahp.append"
"""Verified sends: the list the pieces go to, and its ``append`` under a short name."""
_PART_HEAD: Final = b"_aha("
_PART_TAIL: Final = b")"
_JOIN: Final = b"_ahc=b''.join(_ahp);del _ahp,_aha"
_CHECK: Final = b"print(len(_ahc),sum(_ahc))"
_RUN_STAGED: Final = b"exec(globals().pop('_ahc'))"
"""The code leaves the board's globals as it starts: what it does to them cannot break
this step, and the copy is freed when it ends."""
_DROP_STAGED: Final = b"_ahp=_aha=_ahc=None"
_MIN_WINDOW: Final = 40
"""The smallest window a verified send works with (its fixed steps are this long)."""
_INTERNED_LEN: Final = 10
"""MicroPython interns (never frees) string and bytes literals this long or shorter."""
_EXEC_END: Final = CTRL_D + EXEC_TRAILER
_END_HEAD: Final = b"\x04>raw REPL; CTRL-B to exit"
_ANSWER_ENDS: Final = (_END_HEAD + b"\r\n>", _END_HEAD + b"\r\r\n>", _END_HEAD + b"\n>")
"""The forms of :data:`~actorhw.links.framing.ANSWER_END` boards and ptys send."""
_END_MIN: Final = min(len(end) for end in _ANSWER_ENDS)
"""The shortest of them (see still_to_come)."""
_SHORT_ANSWER: Final = 4096
"""Longer answers are gathered by :class:`AnswerReader` (a bytearray, not bytes)."""
_COLLECT: Final = b"import gc\ngc.collect()"
_SYNC_ATTEMPTS: Final = 3
_INTERRUPTED: Final = re.compile(rb"KeyboardInterrupt: \r*\n\x04>")
_VERIFY_ATTEMPTS: Final = 6
_RETRY_CHUNK: Final = 32
_FALLBACK_PAUSE_S: Final = 0.002
_FRAME_S: Final = 1.0
"""How long a verified send's frame may wait for its answer before it counts as lost
(about 1 ms on the QEMU micro:bit; the margin is for a starved emulator)."""
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
        self._end_len = _END_MIN
        """How long this board's answer ends are (its line endings): see _exec_short."""

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
        read_batch = io.read_batch
        answer = b""
        # read_batch wakes once the bytes that must still come are there, not once per
        # byte or few (see still_to_come).
        need = end_len = self._end_len
        try:
            io.write(data + _EXEC_END, deadline)
            while len(answer) < _SHORT_ANSWER:
                got = read_batch(1 if self.interrupted else need, deadline)
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
                            self._end_len = len(answer) - end
                            return ExecResult(answer[2:first], answer[first + 1 : end])
                    break
                if answer.find(_END_HEAD, max(0, seen - len(_END_HEAD))) >= 0:
                    break  # the end, and more after it
                last = answer.rfind(CTRL_D)
                need = still_to_come(len(answer) - last if last >= 0 else -1, end_len)
        finally:
            io.end_batch()
        reader = AnswerReader(max_output=self.max_output, name=self.name)
        return self._read_answer(reader, answer, deadline, None)

    def _read_answer(
        self, reader: AnswerReader, pending: bytes, deadline: float, ok_deadline: float | None
    ) -> ExecResult:
        """Feed ``pending`` and what comes next to ``reader`` until the answer ends."""
        io = self._io
        end_len = self._end_len
        last = pending.rfind(CTRL_D)
        tail = len(pending) - last if last >= 0 else -1  # bytes from the last \x04 on
        try:
            done = reader.feed(pending) if pending else False
            read_batch, feed = io.read_batch, reader.feed
            while not done:
                # As in _exec_short: wake once the bytes that must still come are there.
                need = 1 if self.interrupted else still_to_come(tail, end_len)
                got = read_batch(
                    need,
                    ok_deadline if ok_deadline is not None and reader.waiting_for_ok else deadline,
                )
                if got:
                    done = feed(got)
                    last = got.rfind(CTRL_D)
                    tail = len(got) - last if last >= 0 else tail + len(got) if tail >= 0 else -1
                elif self.interrupted:
                    # Ctrl-C from interrupt(): a tty drops the input queued behind it, the
                    # trailer included, so the banner may never come: a quiet line after
                    # the plain end is the end.
                    done = reader.naive_result() is not None
        finally:
            io.end_batch()
            if reader.rest:
                io.rx[:0] = reader.rest
        result = reader.result
        assert result is not None
        # After an interrupt the trailer's banner may still come (or not): the next call
        # enters the raw REPL again and its nonce check skips whatever is late.
        self._in_raw = not self.interrupted
        return result

    def _exec_verified(self, data: bytes, deadline: float) -> ExecResult:
        """Send code in frames that each fit the board's receive buffer, check what
        arrived, then ``exec`` it there.

        For firmware without raw-paste that drops input bytes when its receive buffer
        overflows (the micro:bit's 64-byte ring), and drops them whenever the board
        falls behind, which pacing from the host cannot prevent (the emulator, or the
        USB stack, delivers in bursts).  So the code goes as bytes literals appended to
        a list on the board, in frames of at most the window's bytes of code (plus their
        Ctrl-D and trailer), each written only once the previous one is answered: the
        buffer never holds more than one frame.  The board joins the pieces and reports
        their length and sum; the code runs (once) only when they match.  An unexpected
        answer on the way starts the send again, up to ``_VERIFY_ATTEMPTS`` times within
        the deadline.
        """
        window = max(self.verify_over or 0, _MIN_WINDOW)
        frames = staging_frames(data, window)
        expected = b"%d %d\n" % (len(data), sum(data))
        last: ExecResult | None = None
        for _attempt in range(_VERIFY_ATTEMPTS):
            try:
                wrong = self._stage(frames, expected, deadline)
            except (DeadlinePassed, ProtocolError, ResultParseError):
                if time.monotonic() >= deadline or not self._recover(deadline):
                    raise DeadlinePassed from None
                self.damaged_sends += 1
                continue
            if wrong is None:
                return self._exec_frame(_RUN_STAGED, deadline)
            last = wrong
            if b"KeyboardInterrupt" in wrong.stderr:
                return wrong  # interrupt() from another thread: stop, do not retry
            if b"MemoryError" in wrong.stderr:
                # The checked copy does not fit even after a collection: the code goes
                # as it is, unverified, in small paced pieces (it can arrive damaged).
                self._exec_frame(_DROP_STAGED + b"\n" + _COLLECT, deadline)
                return self._exec_frame(
                    data, deadline, pacing=(_RETRY_CHUNK, max(self.pacing_s, _FALLBACK_PAUSE_S))
                )
            self.damaged_sends += 1
        answer = "no answer" if last is None else repr(last.stdout[-60:] + last.stderr[-120:])
        raise ProtocolError(
            f"code sent to {self.name} arrived damaged {_VERIFY_ATTEMPTS} times "
            f"(the board drops input bytes); last answer: {answer}",
            device=self.name,
        )

    def _stage(self, frames: list[bytes], expected: bytes, deadline: float) -> ExecResult | None:
        """Send the staging frames one by one: None once the board holds the checked
        copy, else the first answer that was not the expected one."""
        last = len(frames) - 1
        for index, frame in enumerate(frames):
            result = self._frame(frame, deadline)
            if b"MemoryError" in result.stderr:
                # A fragmented heap, often: collect and send the frame again (a frame
                # that ran out of memory changed nothing: the append or join failed).
                self._frame(_COLLECT, deadline)
                result = self._frame(frame, deadline)
            want = expected if index == last else b""
            if result.stderr or result.stdout.replace(b"\r", b"") != want:
                return result
        return None

    def _frame(self, code: bytes, deadline: float) -> ExecResult:
        """One staging exec: it does next to nothing, so its whole answer must come soon
        (a lost Ctrl-D or trailer shows in time, not at the call's deadline)."""
        by = min(deadline, time.monotonic() + _FRAME_S)
        return self._exec_frame(code, by, ok_deadline=by)

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


def still_to_come(tail: int, end_len: int) -> int:
    """How many more bytes must come, at least, before an exec's answer can end.

    Every answer ends with an end marker (:data:`_ANSWER_ENDS`, ``end_len`` bytes or
    more) whose ``\x04`` is the last in the answer.  ``tail`` counts the bytes received
    from the last ``\x04`` on (-1: none came yet).  No ``\x04`` yet: a whole marker
    must come; fewer than ``end_len`` bytes since one: if it starts the marker, the rest
    of it, and if not, a whole marker still; past that, 1 (a longer line ending, or
    output after a ``\x04`` of its own).  Never more than the answer's remaining bytes
    when ``end_len`` is at most its marker's length (tests/unit/test_answer_batches.py).
    """
    if tail < 0:
        return end_len
    return end_len - tail if tail < end_len else 1


def staging_frames(data: bytes, window: int) -> list[bytes]:
    """The frames of a verified send of ``data``, each at most ``window`` bytes.

    The first opens the list (``_ahp``) and appends the first piece, the next ones
    append one piece each (``_aha(b'...')``), the last joins them into ``_ahc`` and
    prints its length and sum (two frames when the window is too small for one).
    Pieces are cut between escapes and kept longer than ``_INTERNED_LEN`` bytes where
    they can be (the firmware interns short literals and never frees them).
    """
    if window < _MIN_WINDOW:
        raise ValueError(f"window must be >= {_MIN_WINDOW}, got {window}")
    body = bytes_literal(data)[2:-1]
    room = window - len(_PART_HEAD) - len(_PART_TAIL) - 3  # b'...'
    pieces: list[bytes] = []
    start = 0
    # The list is opened in the first piece's frame when that leaves the piece room.
    shared = room - len(_PARTS_OPEN) - 1 > 2 * _INTERNED_LEN
    while start < len(body):
        limit = room - (len(_PARTS_OPEN) + 1 if shared and not pieces else 0)
        end = _cut(body, start, start + limit)
        pieces.append(body[start:end])
        start = end
    if len(pieces) > 1 and _decoded_len(pieces[-1]) <= _INTERNED_LEN:
        merged = pieces[-2] + pieces[-1]  # move bytes to the last piece, never back
        middle = _cut(merged, 0, min(len(merged) // 2 + 2, len(pieces[-2])))
        if middle > 0:
            pieces[-2:] = [merged[:middle], merged[middle:]]
    frames = [_PART_HEAD + b"b'" + piece + b"'" + _PART_TAIL for piece in pieces]
    if shared:
        frames[0] = _PARTS_OPEN + b"\n" + frames[0]
    else:
        frames.insert(0, _PARTS_OPEN)
    ending = _JOIN + b"\n" + _CHECK
    frames += [ending] if len(ending) <= window else [_JOIN, _CHECK]
    return frames


def _cut(body: bytes, start: int, end: int) -> int:
    """``end``, or earlier so that no escape (``\\n``, ``\\xNN``) is cut in two."""
    if end >= len(body):
        return len(body)
    escape = body.rfind(b"\\", max(start, end - 3), end)
    if escape >= 0 and escape + (2 if body[escape + 1] == ord("n") else 4) > end:
        return escape if escape > start else escape + 4
    return end


def _decoded_len(piece: bytes) -> int:
    return len(piece) - 3 * piece.count(b"\\x") - piece.count(b"\\n")
