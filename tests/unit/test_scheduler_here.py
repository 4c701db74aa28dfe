"""An idle scheduled actor answers an ask in the caller's thread, still one message at a
time and in order (tree.scheduler.call_here, issue 14)."""

from __future__ import annotations

import threading
from typing import Any

import pytest

from actorhw import Runtime
from actorhw.core.errors import ActorDeadError, NoSuchBoardError
from actorhw.core.messages.request import Request
from actorhw.tree.asks import ask, ask_each, stop_all
from actorhw.tree.dispatch import DispatchActor
from actorhw.tree.scheduler import NOT_HERE, ScheduledActor, Scheduler, call_here

SCHED = Scheduler("test-here", threads=2)


class Note(Request[list[int]]):
    """A number to note; the answer is every number noted so far."""

    def __init__(self, n: int, *, hold: threading.Event | None = None) -> None:
        self.n = n
        self.hold = hold


class Noter(ScheduledActor, DispatchActor):
    scheduler = SCHED

    def __init__(self) -> None:
        super().__init__()
        self.seen: list[int] = []
        self.threads: list[str] = []
        self.busy = False
        self.overlaps = 0
        self.entered = threading.Event()
        self.handle({Note: self._note, str: self._fail})

    def _note(self, m: Note) -> list[int]:
        if self.busy:
            self.overlaps += 1
        self.busy = True
        self.threads.append(threading.current_thread().name)
        if m.hold is not None:  # a test holds the actor's turn here
            self.entered.set()
            assert m.hold.wait(10)
        self.seen.append(m.n)
        self.busy = False
        return list(self.seen)

    def _fail(self, text: str) -> None:
        raise RuntimeError(text)


def _actor(ref: Any) -> Noter:
    actor = ref._actor_weakref()
    assert isinstance(actor, Noter)
    return actor


def test_an_idle_actor_answers_in_the_callers_thread_and_errors_come_back() -> None:
    ref = Noter.start()
    try:
        assert ask(ref, Note(-1), timeout=5) == [-1]  # the first run (on_start) is over
        assert ask(ref, Note(1), timeout=5) == [-1, 1]
        assert _actor(ref).threads[-1] == threading.current_thread().name
        with pytest.raises(RuntimeError, match="boom"):
            call_here(ref, "boom")  # the handler's error, as an ask raises it
        assert ref.is_alive() and ask(ref, Note(2), timeout=5) == [-1, 1, 2]
    finally:
        stop_all([ref], timeout=5)


def test_a_busy_actor_is_asked_through_its_mailbox_and_keeps_one_message_at_a_time() -> None:
    ref = Noter.start()
    try:
        ask(ref, Note(0), timeout=5)
        hold = threading.Event()
        holder = threading.Thread(target=lambda: ask(ref, Note(1, hold=hold), timeout=10))
        holder.start()  # takes the actor's turn in its own thread and waits there
        assert _actor(ref).entered.wait(5)
        assert call_here(ref, Note(99)) is NOT_HERE  # busy: not handled here
        answers: list[list[int]] = []
        later = [
            threading.Thread(target=lambda k=k: answers.append(ask(ref, Note(k), timeout=10)))
            for k in (2, 3)
        ]
        for t in later:
            t.start()
            t.join(0.05)  # 2 is queued before 3 (or both wait: order checked below)
        hold.set()
        holder.join(10)
        for t in later:
            t.join(10)
        actor = _actor(ref)
        assert actor.overlaps == 0
        assert actor.seen[:2] == [0, 1] and sorted(actor.seen[2:]) == [2, 3]
        # Mail that arrived during the caller's turn was run by the scheduler's workers.
        assert set(actor.threads[2:]) <= {t.name for t in SCHED.threads}
        assert ask(ref, Note(4), timeout=5)[-1] == 4  # idle again: here again
        assert actor.threads[-1] == threading.current_thread().name
    finally:
        stop_all([ref], timeout=5)


def test_a_stopped_actor_is_not_run_here_and_an_ask_says_it_is_dead() -> None:
    ref = Noter.start()
    ask(ref, Note(0), timeout=5)
    ref.stop(block=True, timeout=5)
    assert call_here(ref, Note(1)) is NOT_HERE
    with pytest.raises(ActorDeadError):
        ask(ref, Note(1), timeout=5)


def test_ask_each_runs_idle_actors_here_waits_for_a_busy_one_and_skips_a_dead_one() -> None:
    idle, busy, dead = Noter.start(), Noter.start(), Noter.start()
    try:
        stop_all([dead], timeout=5)
        hold = threading.Event()
        holder = threading.Thread(target=lambda: ask(busy, Note(1, hold=hold), timeout=10))
        holder.start()
        assert _actor(busy).entered.wait(5)
        released = threading.Timer(0.2, hold.set)  # the busy turn ends while we wait
        released.start()
        ask_each([idle, dead, busy], Note(7), timeout=10)
        holder.join(10)
        assert _actor(idle).seen == [7] and _actor(busy).seen == [1, 7]
        assert _actor(idle).threads == [threading.current_thread().name]
        assert _actor(busy).threads[-1] in {t.name for t in SCHED.threads}  # its mailbox
        with pytest.raises(RuntimeError, match="first"):  # the first error, in order
            ask_each([dead, idle, busy], "first", timeout=5)
    finally:
        stop_all([idle, busy], timeout=5)


class Stopper(Noter):
    def on_stop(self) -> None:
        self.threads.append(f"stop:{threading.current_thread().name}")


def test_an_idle_actor_starts_and_stops_in_the_callers_thread_and_its_flag_wakes_waiters() -> None:
    ref = Stopper.start()  # on_start ran here: it answers at once, with no worker
    actor = _actor(ref)
    woke: list[bool] = []
    waiter = threading.Thread(target=lambda: woke.append(ref.actor_stopped.wait(10)))
    waiter.start()
    stop_all([ref], timeout=5)  # idle: stopped in this thread, on_stop included
    waiter.join(10)
    assert woke == [True] and not ref.is_alive()
    assert actor.threads == [f"stop:{threading.current_thread().name}"]
    with pytest.raises(ActorDeadError):
        ask(ref, Note(1), timeout=5)


def test_a_runtime_refuses_an_unknown_board_before_starting_any() -> None:
    with Runtime.start() as rt:
        with pytest.raises(NoSuchBoardError):
            rt.add_boards(["same70-xplained", "no-such-board"], timeout=10)
        assert rt.boards() == []


def test_the_runtimes_stop_deadline_reaches_the_supervisors_children() -> None:
    rt = Runtime.start(boards=["same70-xplained"], timeout=10)
    assert rt._supervisor is not None
    supervisor = rt._supervisor._actor_weakref()  # kept, to read after the stop
    rt.stop(timeout=20.0)
    assert supervisor is not None and supervisor._stop_timeout == 20.0
    assert not rt.running
