"""Many actors on a few shared threads: Akka's dispatcher, Erlang's scheduler.

A pykka ``ThreadingActor`` owns an OS thread for its whole life; 20,000 device actors
would be 20,000 threads (about 34 KiB and one wake-up path each).  A
:class:`ScheduledActor` keeps everything that makes it an actor, its own mailbox and
one message at a time, but has no thread: when a message arrives in an idle mailbox,
the actor is put on its :class:`Scheduler`'s run queue, and one of the scheduler's few
worker threads runs it for up to :data:`THROUGHPUT` messages before it yields its
thread to the next ready actor (Akka's ``throughput``).  A mailbox is scheduled at most
once at a time, so an actor never runs on two threads at once; its handlers see each
other's effects in order, as on a thread of its own.

The extension points are pykka's own (``_create_actor_inbox``, ``_create_future``,
``_start_actor_loop``, as ``pykka._threading`` implements them); the message loop's body
is pykka's ``_actor_loop_running`` cut into slices.  Futures are pykka's
ThreadingFuture, so asks, timeouts and dead-actor answers behave exactly as for a
threaded actor.

A scheduled actor's handlers must not block: work that waits on hardware goes to a
board's I/O thread and comes back as a PendingIO (the device actor's design already).
Actors that block (boards booting, the supervisor starting children) stay threaded.
"""

from __future__ import annotations

import collections
import itertools
import os
import queue
import sys
import threading
import time
import uuid
import weakref
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, ClassVar, Self

import pykka
from pykka import ActorDeadError, messages

from actorhw.core.log import logger

if TYPE_CHECKING:
    from pykka._envelope import Envelope

__all__ = [
    "NOT_HERE",
    "THROUGHPUT",
    "ScheduledActor",
    "ScheduledRef",
    "Scheduler",
    "call_here",
    "default_scheduler",
    "join_retired_workers",
    "pool_threads",
    "stop_here",
]

#: Messages an actor handles in a row before it yields its worker thread to another.
THROUGHPUT = 32


class Scheduler:
    """A run queue of ready actors and the few worker threads that run them."""

    def __init__(self, name: str, *, threads: int) -> None:
        if threads < 1:
            raise ValueError(f"a scheduler needs >= 1 thread, not {threads}")
        self.name = name
        self.size = threads
        self._ready: queue.SimpleQueue[Callable[[], None] | None] = queue.SimpleQueue()
        self._threads: list[threading.Thread] = []
        self._retired: list[threading.Thread] = []
        self._actors = 0
        self._lock = threading.Lock()
        _schedulers.add(self)

    def attach(self) -> None:
        """An actor starts on this scheduler (its workers live while any actor does)."""
        with self._lock:
            self._actors += 1

    def detach(self) -> None:
        """An actor has stopped; the last one out retires the workers, so a stopped
        runtime leaves no thread behind (the next actor starts new ones)."""
        with self._lock:
            self._actors -= 1
            if self._actors > 0 or not self._threads:
                return
            # Each generation of workers drains its own queue: what was queued before
            # the retirement still runs, then every old worker meets its None and ends.
            old, self._ready = self._ready, queue.SimpleQueue()
            for _ in self._threads:
                old.put(None)
            self._retired = [t for t in self._retired if t.is_alive()] + self._threads
            self._threads = []

    def join_retired(self, *, timeout: float) -> bool:
        """Wait up to ``timeout`` s for retired workers to end; True if all did."""
        deadline = time.monotonic() + timeout
        with self._lock:
            retired = list(self._retired)
        for thread in retired:
            if thread is not threading.current_thread():
                thread.join(max(0.0, deadline - time.monotonic()))
        return not any(t.is_alive() and t is not threading.current_thread() for t in retired)

    def submit(self, run: Callable[[], None]) -> None:
        """Run ``run()`` on one of the worker threads, soon (first come, first run)."""
        with self._lock:
            if len(self._threads) < self.size:
                self._grow()
            self._ready.put(run)

    @property
    def threads(self) -> tuple[threading.Thread, ...]:
        """The worker threads started so far (they start with the first work and serve
        the whole process: a bounded pool, not a per-actor thread)."""
        return tuple(self._threads)

    def _grow(self) -> None:
        # Under self._lock: the workers of this generation all serve self._ready.
        while len(self._threads) < self.size:
            thread = threading.Thread(
                target=self._work,
                args=(self._ready,),
                name=f"{self.name}-{len(self._threads)}",
                daemon=True,
            )
            thread.start()
            self._threads.append(thread)

    def _work(self, ready: queue.SimpleQueue[Callable[[], None] | None]) -> None:
        while True:
            run = ready.get()
            if run is None:  # retired: the last actor of this generation stopped
                return
            try:
                run()
            except BaseException as e:  # a worker outlives whatever one actor does
                logger.opt(exception=e).error("scheduler {}: a run failed: {}", self.name, e)


_schedulers: weakref.WeakSet[Scheduler] = weakref.WeakSet()


def join_retired_workers(*, timeout: float) -> bool:
    """Wait up to ``timeout`` s for every scheduler's retired workers to end."""
    deadline = time.monotonic() + timeout
    return all(
        s.join_retired(timeout=max(0.0, deadline - time.monotonic())) for s in list(_schedulers)
    )


def pool_threads() -> set[threading.Thread]:
    """The worker threads of every scheduler: pools that serve the whole process (for
    leak checks, which count per-test threads)."""
    return {t for s in list(_schedulers) for t in s.threads}


_default: Scheduler | None = None
_default_lock = threading.Lock()


def default_scheduler() -> Scheduler:
    """The process's scheduler for device actors: one worker per CPU, at least four (so
    that a handler that does block, against the rules, does not stop all the others)."""
    global _default
    if _default is not None:  # made once; read without the lock (20,000 devices ask)
        return _default
    with _default_lock:
        if _default is None:
            _default = Scheduler("actorhw-scheduler", threads=max(4, os.cpu_count() or 1))
        return _default


class _Flag:
    """pykka's ``actor_stopped`` without a threading.Event per actor (an Event is a
    Condition, a lock and a deque: about 1 KiB, times 20,000 devices): a bool, and an
    Event made only for a thread that waits on it."""

    __slots__ = ("_event", "_set")

    def __init__(self) -> None:
        self._set = False
        self._event: threading.Event | None = None

    def is_set(self) -> bool:
        return self._set

    def set(self) -> None:
        self._set = True
        event = self._event
        if event is not None:
            event.set()

    def wait(self, timeout: float | None = None) -> bool:
        if self._set:
            return True
        with _flag_lock:
            if self._event is None:
                self._event = threading.Event()
        if self._set:  # set before the event existed: set() did not see it
            self._event.set()
        return self._event.wait(timeout)


class _Mailbox(_Flag):
    """An actor's inbox that puts its actor on the run queue when mail arrives idle.

    It is also its actor's ``actor_stopped`` flag (a `_Flag`): one object fewer per
    actor, and one cache line fewer for an ask, which reads both (is_alive, then the
    turn), to one of 2,000 devices whose state the CPU's caches no longer hold."""

    __slots__ = (
        "_actor",
        "_closed",
        "_envelopes",
        "_here",
        "_lock",
        "_run",
        "_scheduled",
        "_scheduler",
    )

    # No bound method per actor (two more objects each for the GC, times 20,000): the
    # mailbox is its own run (``__call__``: a slice of its actor) and ``_here`` is the
    # actor itself.

    def __init__(self, scheduler: Scheduler) -> None:
        super().__init__()
        # Most of 20,000 devices never queue a message (asks are handled in the caller's
        # thread when idle): the deque is made with the first put.
        self._envelopes: collections.deque[Envelope[Any]] = _NO_MAIL
        self._lock = _STRIPES[next(_stripe_counter) % len(_STRIPES)]
        self._scheduled = True  # until the actor's first run (its on_start) is over
        self._scheduler = scheduler
        self._run: Callable[[], None] | None = None  # this mailbox, once its actor starts
        self._actor: ScheduledActor | None = None
        # The actor, whose _handle_here handles one message in a caller's thread (see
        # call_here); None before its first run is over and after it stopped.
        self._here: ScheduledActor | None = None
        self._closed = False  # torn down: what arrives now is answered as to a dead actor

    def put(self, envelope: Envelope[Any], /) -> None:
        with self._lock:
            if self._envelopes is _NO_MAIL:
                self._envelopes = collections.deque()
            self._envelopes.append(envelope)
            if self._scheduled or self._run is None:
                return
            self._scheduled = True
        self._scheduler.submit(self._run)

    def __call__(self) -> None:
        """A slice of the actor's mail on a worker (the run while it is running)."""
        actor = self._actor
        if actor is not None:
            actor._run_slice()

    def get(self) -> Envelope[Any]:
        with self._lock:
            return self._envelopes.popleft()

    def empty(self) -> bool:
        return not self._envelopes

    def take(self) -> Envelope[Any] | None:
        """The next envelope, or None: then the actor is idle until the next put."""
        with self._lock:
            if self._envelopes:
                return self._envelopes.popleft()
            self._scheduled = False
            return None

    def claim(self) -> ScheduledActor | None:
        """The actor's turn for the caller's thread, if it is idle (no mail waiting, not
        scheduled): then the actor, and the caller must :meth:`give_back` after it."""
        with self._lock:
            if self._scheduled or self._envelopes or self._here is None:
                return None
            self._scheduled = True
            return self._here

    def give_back(self) -> None:
        """After a caller's turn (claim): idle again, or a slice on a worker if mail
        arrived meanwhile or the actor stopped (its slice runs the teardown)."""
        with self._lock:
            if not self._envelopes and (self._here is not None or self._closed):
                self._scheduled = False
                return
        assert self._run is not None
        self._scheduler.submit(self._run)

    def resume(self) -> None:
        """After a slice: run again if mail is waiting, else go idle."""
        with self._lock:
            if not self._envelopes:
                self._scheduled = False
                return
        assert self._run is not None
        self._scheduler.submit(self._run)


#: The locks of the mailboxes, shared round-robin (lock striping): a mailbox holds its
#: lock for a few deque and flag operations and never takes another while it does, so a
#: shared lock only rarely waits; and 64 locks stay in the CPU's caches where 20,000
#: (a lock and its semaphore each) would not, which an ask to one of 2,000 devices
#: otherwise pays for twice (claim and give_back).
_STRIPES = tuple(threading.Lock() for _ in range(64))
_stripe_counter = itertools.count()

#: The shared empty mailbox of every actor that has had no mail yet (never appended to).
_NO_MAIL: collections.deque[Any] = collections.deque(maxlen=0)


_flag_lock = threading.Lock()
#: URNs of scheduled actors: a random UUID's first part per process, then a counter
#: (uuid4() per actor costs a read of os.urandom and a string of 45 characters).
_urn_prefix = uuid.uuid4().urn[:-12]
_urn_counter = itertools.count(1)


class ScheduledRef(pykka.ActorRef[Any]):
    """pykka's ActorRef with its fields in slots: held in the object, not in a dict of
    their own (less memory per actor, and one cache line less per ask)."""

    __slots__ = ("_actor_weakref", "actor_class", "actor_inbox", "actor_stopped", "actor_urn")


class ScheduledActor(pykka.ThreadingActor):
    """A pykka actor whose mailbox is served by a :class:`Scheduler`, not its own thread.

    Mix it in before the actor's base (``class DeviceActor(ScheduledActor,
    SupervisedActor)``); :attr:`scheduler` picks the scheduler (default: the process's).
    """

    #: The scheduler of this class's actors; None: :func:`default_scheduler`.
    scheduler: ClassVar[Scheduler | None] = None

    #: The class of its refs (a subclass adds slots for what it publishes on its ref).
    ref_class: ClassVar[type[ScheduledRef]] = ScheduledRef

    actor_inbox: _Mailbox

    @classmethod
    def _scheduler(cls) -> Scheduler:
        return cls.scheduler or default_scheduler()

    def _create_actor_inbox(self) -> _Mailbox:  # type: ignore[override]  # per class
        return _Mailbox(type(self)._scheduler())

    def _init_pykka(self) -> None:
        """pykka's Actor.__init__, slim: a counter URN, the mailbox as the stopped flag
        (a _Flag; see DispatchActor)."""
        self.actor_urn = f"{_urn_prefix}{next(_urn_counter):012x}"
        self.actor_inbox = self._create_actor_inbox()
        self.actor_stopped = self.actor_inbox  # type: ignore[assignment]  # is_set, set, wait
        self._actor_ref = self.ref_class(self)

    def _start_actor_loop(self) -> None:
        # on_start runs in the starter's thread, as a caller's turn (the actor is not
        # yet known to anyone else): no hop to a worker for each of 20,000 devices.
        inbox = self.actor_inbox
        inbox._scheduler.attach()
        inbox._actor = self
        inbox._run = inbox
        self._actor_loop_setup()
        if self.actor_stopped.is_set():
            self._actor_loop_teardown()
            return
        inbox._here = self
        inbox.give_back()

    def _run_slice(self) -> None:
        """Handle up to THROUGHPUT messages."""
        inbox = self.actor_inbox
        for _ in range(THROUGHPUT):
            if self.actor_stopped.is_set():
                self._actor_loop_teardown()
                return
            envelope = inbox.take()
            if envelope is None:
                return
            self._handle_envelope(envelope)
        if self.actor_stopped.is_set():
            self._actor_loop_teardown()
            return
        inbox.resume()

    def _handle_envelope(self, envelope: Envelope[Any]) -> None:
        # The body of pykka's Actor._actor_loop_running, for one envelope.
        try:
            response = self._handle_receive(envelope.message)
            if envelope.reply_to is not None:
                envelope.reply_to.set(response)
        except Exception:
            if envelope.reply_to is not None:
                envelope.reply_to.set_exception()
            else:
                self._handle_failure(*sys.exc_info())
                try:
                    self.on_failure(*sys.exc_info())
                except Exception:
                    self._handle_failure(*sys.exc_info())
        except BaseException:
            self._stop()
            pykka.ActorRegistry.stop_all(block=False)

    def _handle_here(self, message: Any) -> Any:
        """Handle one asked message in the caller's thread, holding the actor's turn (see
        call_here); the answer, or the handler's exception, as an ask would give them."""
        if self.actor_stopped.is_set():
            self.actor_inbox._here = None
            return NOT_HERE
        try:
            return self._handle_receive(message)
        finally:
            if self.actor_stopped.is_set():  # the message stopped it (a stop, a crash)
                self._actor_loop_teardown()

    def _actor_loop_teardown(self) -> None:
        inbox = self.actor_inbox
        inbox._here = None
        inbox._closed = True
        super()._actor_loop_teardown()
        # Mail put from now on (a race with the stop) is answered as a stopped threaded
        # actor answers what was left in its inbox, not left to wait forever.
        inbox._run = _answer_dead(inbox, str(self.actor_ref))
        inbox._actor = None
        inbox.resume()
        inbox._scheduler.detach()

    # pykka's Actor.start, _stop and _handle_failure without its ActorRegistry, whose
    # list costs a scan per stop (quadratic over 20,000 devices): the tree finds its
    # actors through actorhw.tree.urns, and each board stops its own devices.

    @classmethod
    def start(cls, *args: Any, **kwargs: Any) -> pykka.ActorRef[Self]:
        obj = cls(*args, **kwargs)
        obj._start_actor_loop()
        return obj.actor_ref

    def _stop(self) -> None:
        self.actor_stopped.set()
        try:
            self.on_stop()
        except Exception:
            self._handle_failure(*sys.exc_info())

    def _handle_failure(self, *exc_info: Any) -> None:
        logger.opt(exception=exc_info[1]).error("unhandled exception in {}", self)
        self.actor_stopped.set()


#: call_here did not handle the message: send it through the mailbox.
NOT_HERE: Any = object()


def call_here(ref: pykka.ActorRef[Any], message: Any) -> Any:
    """Handle an asked ``message`` in the caller's thread if ``ref``'s actor is a
    scheduled one whose mailbox is idle: its answer (or its handler's exception).

    The caller takes the actor's turn as a worker would (the mailbox's scheduled flag),
    so the actor still handles one message at a time and in order: mail that arrives
    meanwhile waits, and is scheduled on the workers when the turn is given back.  An
    idle device answers an ask without two thread hand-offs (Akka's calling-thread
    dispatch).  :data:`NOT_HERE` when the mailbox is busy, the actor is not scheduled
    or not running: then ask it through its mailbox.
    """
    inbox = ref.actor_inbox
    if type(inbox) is not _Mailbox:
        return NOT_HERE
    actor = inbox.claim()
    if actor is None:
        return NOT_HERE
    try:
        return actor._handle_here(message)
    finally:
        inbox.give_back()


def stop_here(ref: pykka.ActorRef[Any]) -> bool:
    """Stop ``ref``'s actor in the caller's thread if it is a scheduled one whose mailbox
    is idle (on_stop, then the teardown, as its own stop would run them); False when
    it must be stopped through its mailbox."""
    return call_here(ref, messages._ActorStop()) is not NOT_HERE


def _answer_dead(inbox: _Mailbox, name: str) -> Callable[[], None]:
    def run() -> None:
        while (envelope := inbox.take()) is not None:
            if envelope.reply_to is None:
                continue
            if isinstance(envelope.message, messages._ActorStop):
                envelope.reply_to.set(None)
            else:
                error = ActorDeadError(f"{name} stopped before handling the message")
                envelope.reply_to.set_exception(exc_info=(ActorDeadError, error, None))

    return run
