"""Batches: several task calls in one round trip, each with its own
[`Outcome`][actorhw.programming.batch.Outcome]."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, Generic, ParamSpec, Protocol, Self, TypeVar, cast

import attrs

from actorhw.core.errors import InvalidArgumentError, ResultParseError
from actorhw.programming.decorators import BoundTask, Runner, Task
from actorhw.programming.wire import board_error, parse_result, records

__all__ = ["Batch", "BatchRunner", "Outcome", "Pending", "fill_outcomes"]

P = ParamSpec("P")
R = TypeVar("R")
T = TypeVar("T")


@attrs.define
class Outcome(Generic[T]):
    """The outcome of one call of a batch: a value or the call's own error.

    Attributes:
        task: the task's name.
        value: the result, when the call succeeded.
        error: the call's error (DeviceExceptionError with ``exc_name``,
            ResultParseError...), or None.
        done: whether the batch ran.
    """

    task: str
    value: T | None = None
    error: BaseException | None = None
    done: bool = False

    @property
    def ok(self) -> bool:
        """The batch ran and this call succeeded."""
        return self.done and self.error is None

    def result(self) -> T:
        """The value; raises the call's error if it failed.

        Raises:
            DeviceExceptionError: the call raised on the board (``exc_name``).
            ResultParseError: its result was not a literal.
            InvalidArgumentError: the batch has not run.
        """
        if not self.done:
            raise InvalidArgumentError(
                f"the batch holding {self.task} has not run", argument="outcome"
            )
        if self.error is not None:
            raise self.error
        return cast(T, self.value)


class Pending:
    """One call of a batch: its task, its board-side call, its outcome."""

    def __init__(self, spec: Task[Any, Any], call: str, outcome: Outcome[Any]) -> None:
        self.spec = spec
        self.call = call
        self.outcome = outcome


class BatchRunner(Runner, Protocol):
    """What a batch needs of its device (a MicroPythonDevice)."""

    def _run_batch(self, pending: list[Pending]) -> None: ...


class Batch:
    """Several task calls sent in one round trip. Get one with ``dev.batching()``.

    ::

        with dev.batching() as b:
            s = b.call(dev.status)
            c = b.call(dev.collect, 3, 10)
        s.result(), c.error

    Leaving the ``with`` block runs the batch (unless the block raised); each call's
    [`Outcome`][actorhw.programming.batch.Outcome] then holds its own value or error.
    """

    def __init__(self, device: BatchRunner) -> None:
        self._device = device
        self._pending: list[Pending] = []
        self._ran = False

    def call(self, bound: BoundTask[P, R], *args: P.args, **kwargs: P.kwargs) -> Outcome[R]:
        """Add a call; its arguments are checked now.

        Raises:
            InvalidArgumentError: a task of another device, a batch that already ran,
                or arguments that are not literals.
        """
        if self._ran:
            raise InvalidArgumentError("this batch already ran", argument="batch")
        if not isinstance(bound, BoundTask) or bound.device is not self._device:
            raise InvalidArgumentError(
                f"{bound!r} is not a task of {self._device!r}", argument="task"
            )
        call = bound.task.call_source(*args, **kwargs)
        outcome: Outcome[R] = Outcome(bound.task.name)
        self._pending.append(Pending(bound.task, call, outcome))
        return outcome

    def add_all(self, calls: Iterable[tuple[Any, ...]]) -> None:
        """Add ``(dev.task, args)`` or ``(dev.task, args, kwargs)`` calls.

        Raises:
            InvalidArgumentError: a malformed call (see `call()`).
        """
        for item in calls:
            if not isinstance(item, tuple) or len(item) not in (2, 3):
                raise InvalidArgumentError(
                    f"a batch call is (task, args) or (task, args, kwargs), not {item!r}",
                    argument="calls",
                )
            bound, args, *rest = item
            kwargs = rest[0] if rest else {}
            if not isinstance(args, tuple | list) or not isinstance(kwargs, dict):
                raise InvalidArgumentError(
                    "a batch call's args must be a tuple and its kwargs a dict",
                    argument="calls",
                )
            self.call(bound, *args, **kwargs)

    def run(self) -> list[Outcome[Any]]:
        """Run the calls added so far in one round trip; returns their outcomes in order.

        Raises:
            TimedOutError: the batch as a whole passed its deadline (the sum of its
                calls' timeouts); DeviceExceptionError: the batch's code itself failed
                on the board (e.g. MemoryError compiling it).  Then every outcome
                carries that error too.
        """
        if self._ran:
            raise InvalidArgumentError("this batch already ran", argument="batch")
        self._ran = True
        self._device._run_batch(self._pending)
        return [p.outcome for p in self._pending]

    def __enter__(self) -> Self:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, *exc: object) -> None:
        if exc_type is None and not self._ran:
            self.run()


def fill_outcomes(sent: list[Pending], out: str, *, device: str, log: Any) -> None:
    """Give every sent call its outcome from the batch's output (one record each)."""
    found, rest = records(out)
    if rest:
        log.debug("batch printed: {}", rest)
    for i, p in enumerate(sent):
        p.outcome.done = True
        if i >= len(found):
            p.outcome.error = ResultParseError(
                f"{device}: no result for {p.spec.name} in the batch output",
                task=p.spec.name,
                device=device,
                text=out[-200:],
            )
        elif found[i].ok:
            try:
                p.outcome.value = parse_result(found[i].text, task=p.spec.name, device=device)
            except ResultParseError as e:
                p.outcome.error = e
        else:
            p.outcome.error = board_error(found[i].text, task=p.spec.name, device=device)
