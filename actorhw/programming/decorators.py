"""Decorators: ``@task``, ``@setup``, ``@teardown``, ``@background`` and the descriptors
they make (`Task`, `Setup`, `Teardown`, `Background`).

A descriptor carries the method's metadata and board source; on an instance of a
device class it binds to the device (a `BoundTask`, or a callable that runs the
body again). The device side is the small `Runner` protocol, so this module
does not depend on the device class.
"""

from __future__ import annotations

import functools
import inspect
import itertools
import types
from collections.abc import Callable
from typing import Any, ClassVar, Concatenate, Generic, ParamSpec, Protocol, Self, TypeVar, overload

from actorhw.core.errors import InvalidArgumentError
from actorhw.programming.source import body_source, function_source
from actorhw.programming.wire import RESERVED_PREFIX, render_args

__all__ = [
    "Background",
    "BoundTask",
    "Runner",
    "Setup",
    "Snippet",
    "Task",
    "Teardown",
    "background",
    "check_ms",
    "collect_specs",
    "setup",
    "task",
    "teardown",
]

P = ParamSpec("P")
R = TypeVar("R")

_order = itertools.count()


class Runner(Protocol):
    """What a bound task or snippet needs of its device (a MicroPythonDevice)."""

    def _call_task(
        self, spec: Task[Any, Any], args: tuple[Any, ...], kwargs: dict[str, Any]
    ) -> Any: ...

    def _run_snippet(self, spec: Snippet) -> None: ...


def check_ms(value: int | None, name: str, *, allow_zero: bool) -> None:
    if value is None:
        return
    if not isinstance(value, int) or isinstance(value, bool) or value < (0 if allow_zero else 1):
        raise InvalidArgumentError(
            f"{name} must be an int >= {0 if allow_zero else 1}, not {value!r}", argument=name
        )


class Task(Generic[P, R]):
    """A task: a method whose body runs on the board. Made by
    [`task()`][actorhw.programming.decorators.task].

    On an instance it is a `BoundTask`; on the class it is this descriptor,
    which carries the metadata.

    Attributes:
        func: the undecorated method.
        name: the board function's name (the method's name).
        source: the board-side ``def`` (see `function_source()`).
        cache_ms: results are cached per arguments for this long (0: no cache).
        exclusive: no other call of the device runs while this one does.
        timeout_ms: the exec deadline, or None for the device's ``task_timeout``.
    """

    def __init__(
        self,
        func: Callable[Concatenate[Any, P], R],
        *,
        cache_ms: int = 0,
        exclusive: bool = False,
        timeout_ms: int | None = None,
    ) -> None:
        check_ms(cache_ms, "cache_ms", allow_zero=True)
        check_ms(timeout_ms, "timeout_ms", allow_zero=False)
        if not isinstance(exclusive, bool):
            raise InvalidArgumentError("exclusive must be a bool", argument="exclusive")
        self.func = func
        self.name: str = func.__name__
        if self.name.startswith(RESERVED_PREFIX):
            raise InvalidArgumentError(
                f"task names starting with {RESERVED_PREFIX!r} are reserved", argument="func"
            )
        self.source = function_source(func)
        self.signature = inspect.signature(func)
        self.cache_ms = cache_ms
        self.exclusive = exclusive
        self.timeout_ms = timeout_ms
        self.order = next(_order)
        self.__doc__ = func.__doc__

    def __repr__(self) -> str:
        return (
            f"<Task {self.name} cache_ms={self.cache_ms} exclusive={self.exclusive} "
            f"timeout_ms={self.timeout_ms}>"
        )

    def call_source(self, *args: Any, **kwargs: Any) -> str:
        """The board-side call expression for these arguments, e.g. ``collect(3,10)``.

        Raises:
            InvalidArgumentError: arguments that do not fit or are not literals.
        """
        return f"{self.name}({render_args(self.name, self.signature, args, kwargs)})"

    @overload
    def __get__(self, obj: None, owner: type[Any] | None = None) -> Self: ...
    @overload
    def __get__(self, obj: Runner, owner: type[Any] | None = None) -> BoundTask[P, R]: ...

    def __get__(self, obj: Runner | None, owner: type[Any] | None = None) -> Any:
        if obj is None:
            return self
        return BoundTask(self, obj)


class BoundTask(Generic[P, R]):
    """A task of one device: call it to run the task on the board.

    Attributes:
        task: the `Task` descriptor.
        device: the device it runs on.
    """

    def __init__(self, task: Task[P, R], device: Runner) -> None:
        self.task = task
        self.device = device

    def __call__(self, *args: P.args, **kwargs: P.kwargs) -> R:
        """Run the task on the board and return its result (parsed literal)."""
        result: R = self.device._call_task(self.task, args, dict(kwargs))
        return result

    def __repr__(self) -> str:
        return f"<BoundTask {self.task.name} of {self.device!r}>"


class Snippet:
    """Common part of setups and teardowns: a body run at the board's global scope."""

    kind: ClassVar[str]

    def __init__(self, func: Callable[[Any], object], *, priority: int, timeout_ms: int | None):
        if not isinstance(priority, int) or isinstance(priority, bool):
            raise InvalidArgumentError("priority must be an int", argument="priority")
        check_ms(timeout_ms, "timeout_ms", allow_zero=False)
        self.func = func
        self.name: str = func.__name__
        self.source = body_source(func)
        self.priority = priority
        self.timeout_ms = timeout_ms
        self.order = next(_order)
        self.__doc__ = func.__doc__

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.name} priority={self.priority}>"

    @overload
    def __get__(self, obj: None, owner: type[Any] | None = None) -> Self: ...
    @overload
    def __get__(self, obj: Runner, owner: type[Any] | None = None) -> Callable[[], None]: ...

    def __get__(self, obj: Runner | None, owner: type[Any] | None = None) -> Any:
        if obj is None:
            return self
        return functools.partial(obj._run_snippet, self)


class Setup(Snippet):
    """A setup: its body runs on the board at every (re)connection. Made by
    [`setup()`][actorhw.programming.decorators.setup].

    Setups run in ascending ``priority`` (lower number first), then in definition
    order.  Calling it on an instance (``dev.init()``) runs the body again.
    """

    kind = "setup"


class Teardown(Snippet):
    """A teardown: its body runs on the board at close. Made by
    [`teardown()`][actorhw.programming.decorators.teardown].

    Teardowns run in ascending ``priority`` (lower number first), then in definition
    order; every one runs even if an earlier one failed.
    """

    kind = "teardown"


class Background:
    """A host-side loop: the method runs in a thread every ``interval_ms`` until close.

    Made by [`background()`][actorhw.programming.decorators.background].  The method is ordinary
    host Python (it usually calls tasks); on an instance it is the bound method.
    """

    def __init__(self, func: Callable[[Any], object], *, interval_ms: int) -> None:
        check_ms(interval_ms, "interval_ms", allow_zero=False)
        params = list(inspect.signature(func).parameters.values())
        if len(params) != 1:
            raise InvalidArgumentError(
                f"{func.__qualname__}: a background method takes only self", argument="func"
            )
        self.func = func
        self.name: str = func.__name__
        self.interval_ms = interval_ms
        self.order = next(_order)
        self.__doc__ = func.__doc__

    def __repr__(self) -> str:
        return f"<Background {self.name} interval_ms={self.interval_ms}>"

    @overload
    def __get__(self, obj: None, owner: type[Any] | None = None) -> Self: ...
    @overload
    def __get__(self, obj: Runner, owner: type[Any] | None = None) -> Callable[[], object]: ...

    def __get__(self, obj: Runner | None, owner: type[Any] | None = None) -> Any:
        if obj is None:
            return self
        return types.MethodType(self.func, obj)


@overload
def task(func: Callable[Concatenate[Any, P], R], /) -> Task[P, R]: ...
@overload
def task(
    *, cache_ms: int = 0, exclusive: bool = False, timeout_ms: int | None = None
) -> Callable[[Callable[Concatenate[Any, P], R]], Task[P, R]]: ...


def task(
    func: Callable[Concatenate[Any, P], R] | None = None,
    /,
    *,
    cache_ms: int = 0,
    exclusive: bool = False,
    timeout_ms: int | None = None,
) -> Task[P, R] | Callable[[Callable[Concatenate[Any, P], R]], Task[P, R]]:
    """Make a method a board task (``@task`` or ``@task(...)``).

    Args:
        func: the method, when used bare.
        cache_ms: cache each (arguments -> result) on the host for this many ms.
        exclusive: keep every other call of the device (tasks, batches) out from the
            start of this call to the end of its result's parsing.
        timeout_ms: exec deadline; the board is interrupted and TimedOutError raised.

    Returns:
        The `Task` descriptor, or a decorator making one.
    """

    def make(f: Callable[Concatenate[Any, P], R]) -> Task[P, R]:
        return Task(f, cache_ms=cache_ms, exclusive=exclusive, timeout_ms=timeout_ms)

    return make if func is None else make(func)


@overload
def setup(func: Callable[[Any], object], /) -> Setup: ...
@overload
def setup(
    *, priority: int = 0, timeout_ms: int | None = None
) -> Callable[[Callable[[Any], object]], Setup]: ...


def setup(
    func: Callable[[Any], object] | None = None,
    /,
    *,
    priority: int = 0,
    timeout_ms: int | None = None,
) -> Setup | Callable[[Callable[[Any], object]], Setup]:
    """Make a method a setup (``@setup`` or ``@setup(priority=1)``).

    Its body runs at the board's global scope when the device connects and again after
    every reset of the board.  Lower ``priority`` runs first (Belay.NET's convention).

    Args:
        func: the method, when used bare.
        priority: order among setups, ascending.
        timeout_ms: exec deadline, or None for the device's ``task_timeout``.

    Returns:
        The `Setup` descriptor, or a decorator making one.
    """

    def make(f: Callable[[Any], object]) -> Setup:
        return Setup(f, priority=priority, timeout_ms=timeout_ms)

    return make if func is None else make(func)


@overload
def teardown(func: Callable[[Any], object], /) -> Teardown: ...
@overload
def teardown(
    *, priority: int = 0, timeout_ms: int | None = None
) -> Callable[[Callable[[Any], object]], Teardown]: ...


def teardown(
    func: Callable[[Any], object] | None = None,
    /,
    *,
    priority: int = 0,
    timeout_ms: int | None = None,
) -> Teardown | Callable[[Callable[[Any], object]], Teardown]:
    """Make a method a teardown (``@teardown`` or ``@teardown(priority=1)``).

    Its body runs at the board's global scope on `MicroPythonDevice.close()`, on
    runtime stop, and after a setup failed.  Lower ``priority`` runs first.

    Args:
        func: the method, when used bare.
        priority: order among teardowns, ascending.
        timeout_ms: exec deadline, or None for the device's ``task_timeout``.

    Returns:
        The `Teardown` descriptor, or a decorator making one.
    """

    def make(f: Callable[[Any], object]) -> Teardown:
        return Teardown(f, priority=priority, timeout_ms=timeout_ms)

    return make if func is None else make(func)


def background(*, interval_ms: int) -> Callable[[Callable[[Any], object]], Background]:
    """Make a method a host-side background loop, run every ``interval_ms`` until close.

    The first run is right after connect; the loop is fixed-rate (a run that overruns
    the interval is followed at once by the next).  Exceptions are counted and logged,
    and the loop goes on.

    Args:
        interval_ms: milliseconds from one run's start to the next.

    Returns:
        A decorator making a `Background` descriptor.
    """

    check_ms(interval_ms, "interval_ms", allow_zero=False)

    def make(f: Callable[[Any], object]) -> Background:
        return Background(f, interval_ms=interval_ms)

    return make


def collect_specs(
    cls: type,
) -> tuple[
    dict[str, Task[Any, Any]], tuple[Setup, ...], tuple[Teardown, ...], tuple[Background, ...]
]:
    """The specs of a device class and its bases (a subclass overrides by name).

    Returns:
        Tasks by name in definition order; setups and teardowns by ascending priority,
        then definition order; background loops in definition order.
    """
    found: dict[str, Any] = {}
    for klass in reversed(cls.__mro__):
        for name, value in vars(klass).items():
            if isinstance(value, Task | Setup | Teardown | Background):
                found[name] = value
            elif name in found:
                del found[name]
    specs = list(found.values())
    tasks = {s.name: s for s in sorted(specs, key=_by_order) if isinstance(s, Task)}
    setups = tuple(sorted((s for s in specs if isinstance(s, Setup)), key=_by_priority))
    teardowns = tuple(sorted((s for s in specs if isinstance(s, Teardown)), key=_by_priority))
    backgrounds = tuple(sorted((s for s in specs if isinstance(s, Background)), key=_by_order))
    return tasks, setups, teardowns, backgrounds


def _by_order(spec: Any) -> int:
    return int(spec.order)


def _by_priority(spec: Snippet) -> tuple[int, int]:
    return (spec.priority, spec.order)
