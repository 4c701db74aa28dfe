"""Multi-device jobs: one function over many devices, and all-or-nothing acquire.

A job runs a host function once per target (usually a device) in a pool of worker
threads, at most ``limit`` at a time, and collects one
[`TargetResult`][actorhw.api.jobs.TargetResult] per target: the value, or the typed
error that target raised. One failing target never hides the others' results. Jobs of
one [`JobRunner`][actorhw.api.jobs.JobRunner] share its workers; a pending target of a
higher-``priority`` job starts before any of a lower one (FIFO within a priority).
Progress is observable three ways: [`Job.progress()`][actorhw.api.jobs.Job.progress] (a
snapshot), an ``on_progress`` callback, and
[`JobProgress`][actorhw.core.messages.JobProgress] events on the runtime's event bus.

    with JobRunner(rt, workers=4) as jobs:
        job = jobs.submit_devices(boards, lambda b: b.exec("print(1)"), owner="smoke")
        result = job.wait(timeout=30)
        for device, error in result.errors.items(): ...

[`acquire_all()`][actorhw.api.lease_sets.acquire_all] takes several devices all-or-nothing,
always in one global order (the devices' keys, sorted), so two callers that want
overlapping sets can never hold one each and wait on the other: that is the order that
makes deadlock impossible.
"""

from __future__ import annotations

import heapq
import itertools
import threading
import time
from collections.abc import Callable, Hashable, Sequence
from typing import TYPE_CHECKING, Any, Generic, TypeVar

import attrs

from actorhw.api.lease_sets import LeaseSet as LeaseSet
from actorhw.api.lease_sets import acquire_all as acquire_all
from actorhw.api.lease_sets import global_order as global_order
from actorhw.api.lease_sets import holding as holding
from actorhw.api.lease_sets import release_all as release_all
from actorhw.core.errors import (
    ActorHwError,
    InvalidArgumentError,
    JobCancelledError,
    JobFailedError,
    JobTargetError,
    TimedOutError,
)
from actorhw.core.ids import DeviceId
from actorhw.core.log import logger
from actorhw.core.messages import JobProgress

if TYPE_CHECKING:
    from actorhw.api.lab import Lab
    from actorhw.api.runtime import Runtime
    from actorhw.core.events import EventBus

K = TypeVar("K", bound=Hashable)
T = TypeVar("T")

#: How long a worker thread gets to end when a runner closes, in s.
CLOSE_TIMEOUT = 10.0


@attrs.frozen(kw_only=True)
class TargetResult(Generic[K, T]):
    """What one target of a job gave: a value or a typed error, and when."""

    target: K
    """The device (or other target) it ran on."""
    value: T | None = None
    """The function's return value, if it returned."""
    error: ActorHwError | None = None
    """The typed error it raised (a non-actorhw exception is wrapped in JobTargetError)."""
    elapsed: float = 0.0
    """Seconds the function ran (0 if it never started)."""

    @property
    def ok(self) -> bool:
        """Whether the target returned a value."""
        return self.error is None


@attrs.frozen(kw_only=True)
class JobResult(Generic[K, T]):
    """Every target's result, in the order the targets were given."""

    job: str
    """The job's name."""
    results: tuple[TargetResult[K, T], ...]
    """One per target."""

    @property
    def ok(self) -> bool:
        """Whether every target returned a value."""
        return all(r.ok for r in self.results)

    @property
    def values(self) -> dict[K, T | None]:
        """The value of every target that returned."""
        return {r.target: r.value for r in self.results if r.ok}

    @property
    def errors(self) -> dict[K, ActorHwError]:
        """The error of every target that failed."""
        return {r.target: r.error for r in self.results if r.error is not None}

    def raise_for_errors(self) -> None:
        """Raise JobFailedError naming every failed target, if any failed."""
        errors = self.errors
        if errors:
            detail = "; ".join(f"{_name(t)}: {e}" for t, e in errors.items())
            raise JobFailedError(
                f"job {self.job}: {len(errors)} of {len(self.results)} targets failed: {detail}",
                job=self.job,
                failed=[_name(t) for t in errors],
                errors={_name(t): e.to_dict() for t, e in errors.items()},
            )


def _name(target: Hashable) -> str:
    return target.key if isinstance(target, DeviceId) else str(target)


@attrs.define
class _Item:
    """One target of one job, waiting for or holding a worker."""

    job: Job[Any, Any]
    index: int
    target: Any


class Job(Generic[K, T]):
    """A running job; get it from [`JobRunner.submit()`][actorhw.api.jobs.JobRunner.submit]."""

    def __init__(
        self,
        runner: JobRunner,
        *,
        name: str,
        targets: Sequence[K],
        fn: Callable[[K], T],
        limit: int,
        priority: int,
        on_progress: Callable[[JobProgress], None] | None,
    ) -> None:
        self.name = name
        self.targets = tuple(targets)
        self.limit = limit
        self.priority = priority
        self._runner = runner
        self._fn = fn
        self._on_progress = on_progress
        self._results: list[TargetResult[K, T] | None] = [None] * len(self.targets)
        self._running = 0
        self._cancelled = False
        self._finished = threading.Event()
        if not self.targets:
            self._finished.set()

    def __repr__(self) -> str:
        return f"<Job {self.name} {self.progress()}>"

    def progress(self) -> JobProgress:
        """How far the job is now."""
        with self._runner._cond:
            return self._snapshot("", "")

    def _snapshot(self, target: str, what: str) -> JobProgress:
        done = [r for r in self._results if r is not None]
        failed = sum(1 for r in done if not r.ok)
        return JobProgress(
            job=self.name,
            total=len(self.targets),
            running=self._running,
            succeeded=len(done) - failed,
            failed=failed,
            target=target,
            what=what,
            at=time.time(),
        )

    @property
    def done(self) -> bool:
        """Whether every target has a result."""
        return self._finished.is_set()

    def wait(self, *, timeout: float) -> JobResult[K, T]:
        """Every target's result, once all are in.

        Raises:
            TimedOutError: the job did not finish within ``timeout`` s; it keeps
                running (cancel it, or wait again).
        """
        if not self._finished.wait(timeout):
            raise TimedOutError(
                f"job {self.name} did not finish within {timeout:.3g} s: {self.progress()}",
                job=self.name,
                timeout=timeout,
            )
        return self.result()

    def result(self) -> JobResult[K, T]:
        """The results so far; a target without one yet is missing from them."""
        with self._runner._cond:
            return JobResult(job=self.name, results=tuple(r for r in self._results if r))

    def cancel(self) -> None:
        """Targets not started yet end with job_cancelled; running ones finish."""
        self._runner._cancel(self)


class JobRunner:
    """A pool of worker threads that runs jobs by priority. Close it (or use ``with``).

    Args:
        runtime: the runtime that device jobs lease from; also where JobProgress
            events are published (None: none published, only plain targets). A cluster
            (``actorhw.cluster.Cluster``) serves too: its devices are leased across
            hosts (it has no event bus: progress goes to ``on_progress`` only).
        workers: the most targets running at once over all jobs.
    """

    def __init__(self, runtime: Runtime | Lab | None = None, *, workers: int = 8) -> None:
        if not isinstance(workers, int) or workers < 1:
            raise InvalidArgumentError("workers must be an int >= 1", argument="workers")
        self.runtime = runtime
        self.workers = workers
        self._cond = threading.Condition()
        self._queue: list[tuple[int, int, _Item]] = []
        self._seq = itertools.count()
        self._threads: list[threading.Thread] = []
        self._closed = False
        self._names = itertools.count(1)
        self._active = 0

    def __enter__(self) -> JobRunner:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def submit(
        self,
        targets: Sequence[K],
        fn: Callable[[K], T],
        *,
        name: str | None = None,
        limit: int = 4,
        priority: int = 0,
        on_progress: Callable[[JobProgress], None] | None = None,
    ) -> Job[K, T]:
        """Run ``fn(target)`` for every target, at most ``limit`` at a time.

        Args:
            targets: distinct hashable targets (device ids, board names...).
            fn: host function; what it returns is the target's value, what it raises
                the target's error.
            name: the job's name in progress and errors (default ``job-N``).
            limit: the most of this job's targets running at once.
            priority: higher starts first when workers are scarce.
            on_progress: called (in a worker thread) after each target starts and ends.
        """
        if not isinstance(limit, int) or limit < 1:
            raise InvalidArgumentError("limit must be an int >= 1", argument="limit")
        if not isinstance(priority, int):
            raise InvalidArgumentError("priority must be an int", argument="priority")
        targets = tuple(targets)
        if len(set(targets)) != len(targets):
            raise InvalidArgumentError("a job's targets must be distinct", argument="targets")
        job: Job[K, T] = Job(
            self,
            name=name or f"job-{next(self._names)}",
            targets=targets,
            fn=fn,
            limit=limit,
            priority=priority,
            on_progress=on_progress,
        )
        with self._cond:
            if self._closed:
                raise InvalidArgumentError("this JobRunner is closed", argument="runner")
            for index, target in enumerate(targets):
                item = _Item(job=job, index=index, target=target)
                heapq.heappush(self._queue, (-priority, next(self._seq), item))
            while len(self._threads) < min(self.workers, len(self._queue) + self._active):
                thread = threading.Thread(
                    target=self._work, name=f"actorhw-job-{len(self._threads)}", daemon=True
                )
                self._threads.append(thread)
                thread.start()
            self._cond.notify_all()
        return job

    def submit_devices(
        self,
        devices: Sequence[DeviceId],
        fn: Callable[[Any], T],
        *,
        owner: str,
        device_class: Callable[..., Any] | None = None,
        timeout: float = 5.0,
        **options: Any,
    ) -> Job[DeviceId, T]:
        """Like `submit()`, over devices: each target is leased first.

        ``fn`` gets the open handle (``rt.lease(device, owner=owner)``), or, with a
        ``device_class`` such as a MicroPythonDevice subclass, an instance of it built
        as ``device_class(rt, device, owner=owner)``; it is closed and released after.
        A busy device is that target's DeviceBusyError, not a failure of the others.
        """
        rt = self.runtime
        if rt is None:
            raise InvalidArgumentError("device jobs need a runtime", argument="runtime")

        def on_device(device: DeviceId) -> T:
            if device_class is not None:
                with device_class(rt, device, owner=owner) as dev:
                    return fn(dev)
            with rt.lease(device, owner=owner, timeout=timeout) as handle:
                return fn(handle)

        return self.submit(devices, on_device, name=options.pop("name", owner), **options)

    def close(self, *, timeout: float = CLOSE_TIMEOUT) -> None:
        """Cancel what has not started, let running targets end, join the workers."""
        with self._cond:
            self._closed = True
            pending = [item for _p, _s, item in self._queue]
            self._queue.clear()
            self._cond.notify_all()
        for item in pending:
            self._finish(item, None, JobCancelledError(f"job {item.job.name} was cancelled"), 0.0)
        deadline = time.monotonic() + timeout
        for thread in self._threads:
            thread.join(max(0.0, deadline - time.monotonic()))

    # --- workers ------------------------------------------------------------------------

    def _next(self) -> _Item | None:
        """The highest-priority pending item whose job is under its limit (locked)."""
        skipped = []
        found = None
        while self._queue:
            entry = heapq.heappop(self._queue)
            if entry[2].job._running < entry[2].job.limit:
                found = entry[2]
                break
            skipped.append(entry)
        for entry in skipped:
            heapq.heappush(self._queue, entry)
        return found

    def _work(self) -> None:
        while True:
            with self._cond:
                item = self._next()
                while item is None:
                    if self._closed:
                        return
                    self._cond.wait()
                    item = self._next()
                item.job._running += 1
                self._active += 1
                started = item.job._snapshot(_name(item.target), "started")
            self._emit(item.job, started)
            begin = time.monotonic()
            value: Any = None
            error: ActorHwError | None = None
            try:
                value = item.job._fn(item.target)
            except ActorHwError as e:
                error = e
            except Exception as e:
                error = JobTargetError(
                    f"{_name(item.target)}: {type(e).__name__}: {e}",
                    target=_name(item.target),
                    exc_type=type(e).__name__,
                )
                error.__cause__ = e
            with self._cond:
                item.job._running -= 1
                self._active -= 1
            self._finish(item, value, error, time.monotonic() - begin)

    def _finish(self, item: _Item, value: Any, error: ActorHwError | None, elapsed: float) -> None:
        job = item.job
        with self._cond:
            job._results[item.index] = TargetResult(
                target=item.target, value=value, error=error, elapsed=elapsed
            )
            what = "succeeded" if error is None else "failed"
            snapshot = job._snapshot(_name(item.target), what)
            if all(r is not None for r in job._results):
                job._finished.set()
            self._cond.notify_all()
        self._emit(job, snapshot)

    def _emit(self, job: Job[Any, Any], progress: JobProgress) -> None:
        bus: EventBus | None = getattr(self.runtime, "events", None)  # a cluster has none
        if bus is not None:
            bus.publish(progress)
        if job._on_progress is not None:
            try:
                job._on_progress(progress)
            except Exception as e:  # an observer's bug must not fail the target
                logger.opt(exception=e).error("job {} progress callback failed: {}", job.name, e)

    def _cancel(self, job: Job[Any, Any]) -> None:
        with self._cond:
            job._cancelled = True
            mine = [entry for entry in self._queue if entry[2].job is job]
            self._queue = [entry for entry in self._queue if entry[2].job is not job]
            heapq.heapify(self._queue)
        for _p, _s, item in mine:
            self._finish(item, None, JobCancelledError(f"job {job.name} was cancelled"), 0.0)


def run_job(
    runtime: Runtime | Lab,
    devices: Sequence[DeviceId],
    fn: Callable[[Any], T],
    *,
    owner: str,
    limit: int = 4,
    timeout: float = 60.0,
    **options: Any,
) -> JobResult[DeviceId, T]:
    """Run ``fn`` over ``devices`` (each leased by ``owner``) and wait for every result.

    A one-shot [`JobRunner`][actorhw.api.jobs.JobRunner] with ``limit`` workers; see
    [`JobRunner.submit_devices()`][actorhw.api.jobs.JobRunner.submit_devices] for ``options``.
    """
    with JobRunner(runtime, workers=limit) as runner:
        job = runner.submit_devices(devices, fn, owner=owner, limit=limit, **options)
        try:
            return job.wait(timeout=timeout)
        except TimedOutError:
            job.cancel()
            raise
