"""still_to_come: the link's batch reads never wait for more bytes than an answer still
has to send (a wait past them would end only at the poll interval), and real answers
read through a pty come back whole and in order however the board splits them."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from actorhw.links.raw_protocol import _ANSWER_ENDS, _END_MIN, still_to_come

_PIECES = st.sampled_from([b"2", b"\r\n", b"\x04", b"\x04>", b">", b"OK", b"raw REPL", b"x" * 40])


def _answer(stdout: bytes, stderr: bytes, end: bytes, ok: bool) -> bytes:
    return (b"OK" if ok else b"") + stdout + b"\x04" + stderr + end


@given(
    stdout=st.lists(_PIECES, max_size=8).map(b"".join),
    stderr=st.lists(_PIECES, max_size=3).map(b"".join),
    end=st.sampled_from(_ANSWER_ENDS),
    ok=st.booleans(),
    learned=st.booleans(),
)
def test_a_batch_never_waits_for_more_than_the_answer_still_sends(
    stdout: bytes, stderr: bytes, end: bytes, ok: bool, learned: bool
) -> None:
    answer = _answer(stdout, stderr, end, ok)
    # The marker's length as learned from this board's last answer, or the shortest.
    end_len = len(end) if learned else _END_MIN
    for k in range(len(answer)):
        prefix = answer[:k]
        last = prefix.rfind(b"\x04")
        need = still_to_come(k - last if last >= 0 else -1, end_len)
        assert 1 <= need <= len(answer) - k, (prefix, need)


def test_a_whole_marker_is_awaited_until_a_x04_came_then_its_rest() -> None:
    assert still_to_come(-1, 29) == 29
    assert still_to_come(1, 29) == 28  # the \x04 that may start it
    assert still_to_come(26, 29) == 3  # "\x04>raw REPL; CTRL-B to exit": "\r\n>" to come
    assert still_to_come(29, 29) == 1  # past it: a longer line ending, or more output
