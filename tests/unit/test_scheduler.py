"""Scheduled actors: own mailbox, one message at a time, few shared threads (issue 14)."""

from __future__ import annotations

import threading
from typing import Any

import pykka
import pytest

from actorhw.core.ids import make_id_enum
from actorhw.tree import urns
from actorhw.tree.asks import by_urn, stop_all
from actorhw.tree.dispatch import DispatchActor
from actorhw.tree.scheduler import ScheduledActor, Scheduler

SCHED = Scheduler("test-scheduler", threads=2)


class Counter(ScheduledActor, DispatchActor):
    """Counts messages; fails the test's check if two of its messages ever overlap."""

    scheduler = SCHED

    def __init__(self) -> None:
        super().__init__()
        self.seen: list[int] = []
        self.busy = False
        self.overlaps = 0
        self.threads: set[str] = set()
        self.handle({int: self._count, str: self._fail})

    def _count(self, n: int) -> list[int]:
        if self.busy:
            self.overlaps += 1
        self.busy = True
        self.threads.add(threading.current_thread().name)
        self.seen.append(n)
        self.busy = False
        return list(self.seen)

    def _fail(self, text: str) -> None:
        raise RuntimeError(text)


def test_many_actors_share_the_schedulers_threads_and_keep_message_order() -> None:
    before = threading.active_count()
    refs: list[pykka.ActorRef[Any]] = [Counter.start() for _ in range(100)]
    try:
        # Every actor gets 90 messages from 3 senders (30 each) at once; each actor's own messages
        # are handled one at a time and in the order each sender sent them.
        def send(offset: int) -> None:
            for i in range(30):
                for ref in refs:
                    ref.tell(offset + i)

        senders = [threading.Thread(target=send, args=(k * 1000,)) for k in range(3)]
        for t in senders:
            t.start()
        for t in senders:
            t.join(30)
        answers = [ref.ask(-1, timeout=30) for ref in refs]
        assert threading.active_count() - before <= SCHED.size
        for seen in answers:
            assert len(seen) == 91 and seen[-1] == -1
            for k in range(3):
                mine = [n for n in seen if k * 1000 <= n < k * 1000 + 30]
                assert mine == list(range(k * 1000, k * 1000 + 30))
        actors = [r._actor_weakref() for r in refs]  # the test's own actors
        assert all(a is not None and a.overlaps == 0 for a in actors)
        assert set().union(*(a.threads for a in actors if a is not None)) <= {
            t.name for t in SCHED.threads
        }
    finally:
        stop_all(refs, timeout=30)
    assert not any(ref.is_alive() for ref in refs)


def test_a_stopped_actor_answers_asks_with_actor_dead_and_leaves_the_urn_map() -> None:
    ref = Counter.start()
    assert by_urn(ref.actor_urn) is ref
    assert ref.ask(1, timeout=5) == [1]
    ref.stop(block=True, timeout=5)
    assert by_urn(ref.actor_urn) is None
    with pytest.raises(pykka.ActorDeadError):
        ref.ask(2, timeout=5)


def test_a_failing_tell_stops_the_actor_and_an_ask_gets_the_error() -> None:
    ref = Counter.start()
    with pytest.raises(RuntimeError, match="asked"):
        ref.ask("asked", timeout=5)  # an ask's error goes back to the caller
    assert ref.is_alive()
    ref.tell("told")  # a tell's error is a crash: the actor stops
    ref.actor_stopped.wait(5)
    assert not ref.is_alive()
    assert urns.find(ref.actor_urn) is None


def test_ids_of_the_same_name_on_different_boards_hash_apart() -> None:
    # Enum's own hash is the member's name: 1,000 boards' PIN3 would share one hash and
    # every dict of ids would probe through all of them.
    enums = [make_id_enum("Pins", f"b{i}", ["PIN3"]) for i in range(200)]
    assert len({hash(e.PIN3) for e in enums}) == 200
    table = {e.PIN3: i for i, e in enumerate(enums)}
    assert [table[e.PIN3] for e in enums] == list(range(200))
