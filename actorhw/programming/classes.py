"""Belay-style device programming: Python methods that run on a MicroPython board.

A :class:`MicroPythonDevice` subclass describes what a board does in decorated methods::

    class Thermostat(MicroPythonDevice):
        @setup(priority=1)
        def init(self):                 # MicroPython, run on the board at connect
            global readings             # (dropped; it tells linters it is a global)
            readings = []

        @task(cache_ms=5000)
        def status(self) -> dict:       # runs on the board; the result comes back typed
            import gc
            return {"free": gc.mem_free(), "n": len(readings)}

        @background(interval_ms=10000)
        def watch(self):                # HOST Python, in a supervised thread
            self.status()

        @teardown
        def safe_shutdown(self):        # MicroPython, run on close and on runtime stop
            readings = None

    with Thermostat(rt, ids.BOARD, owner="lab") as dev:
        print(dev.status())

The bodies of setups, tasks and teardowns are MicroPython source: they are read with
:func:`inspect.getsource`, stripped of decorators, ``self``, annotations and docstrings,
and sent to the board.  Tasks become board functions (sent once per connection, in as
few round trips as the board's memory allows); setup and teardown bodies run at the
board's global scope, so their assignments become board globals that tasks can use.
Arguments and results cross as Python literals (:func:`literal`, :func:`parse_result`).

See docs/programming.md for the guide.
"""

from __future__ import annotations

import ast
import contextlib
import copy
import functools
import inspect
import itertools
import random
import textwrap
import threading
import time
import types
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import (
    TYPE_CHECKING,
    Any,
    ClassVar,
    Concatenate,
    Final,
    Generic,
    ParamSpec,
    Protocol,
    Self,
    TypeVar,
    cast,
    overload,
)

import attrs

from actorhw.api.handles import Board
from actorhw.core.errors import (
    ActorHwError,
    AlreadyOpenedError,
    DeviceExceptionError,
    DeviceResetError,
    InvalidArgumentError,
    NotOpenedError,
    ResultParseError,
    RuntimeStoppedError,
    TimedOutError,
)
from actorhw.core.ids import DeviceId
from actorhw.core.log import logger
from actorhw.links.raw_repl import parse_traceback

if TYPE_CHECKING:
    from actorhw.api.runtime import Runtime

__all__ = [
    "Background",
    "BackgroundStatus",
    "Batch",
    "BoardLike",
    "BoundTask",
    "MicroPythonDevice",
    "Outcome",
    "Setup",
    "Task",
    "Teardown",
    "background",
    "body_source",
    "function_source",
    "literal",
    "parse_result",
    "render_args",
    "setup",
    "task",
    "teardown",
]

P = ParamSpec("P")
R = TypeVar("R")
T = TypeVar("T")

#: Prefix of every board global that actorhw itself defines; refused as a task name.
RESERVED_PREFIX: Final = "_ahw_"

#: Board-side helper every batch uses: runs one call, prints one record.
_HELPER: Final = (
    "def _ahw_c(f,*a,**k):\n"
    " try:r=repr(f(*a,**k))\n"
    " except Exception as e:\n"
    "  import sys;print('\\x1eE',end='');sys.print_exception(e);print('\\x1f')\n"
    " else:print('\\x1eR',r,'\\x1f',sep='')"
)
_SENTINEL: Final = "_ahw_ok"
_REC_START: Final = "\x1e"
_REC_END: Final = "\x1f"

_order = itertools.count()


# --- source extraction -------------------------------------------------------------------


def _function_node(func: Callable[..., Any]) -> ast.FunctionDef:
    """The ``def`` of ``func``, parsed from its (dedented) source."""
    if not inspect.isfunction(func):
        raise InvalidArgumentError(
            f"{func!r} is not a plain function; decorate a method defined with def",
            argument="func",
        )
    try:
        source = textwrap.dedent(inspect.getsource(func))
    except (OSError, TypeError) as e:
        raise InvalidArgumentError(
            f"no source for {func.__qualname__}: board code must live in a .py file ({e})",
            argument="func",
        ) from e
    tree = ast.parse(source)
    for node in tree.body:
        if isinstance(node, ast.FunctionDef) and node.name == func.__name__:
            return node
        if isinstance(node, ast.AsyncFunctionDef):
            break
    raise InvalidArgumentError(
        f"{func.__qualname__} must be a plain 'def' (not async, not a lambda)",
        argument="func",
    )


def _strip_docstring(body: list[ast.stmt]) -> list[ast.stmt]:
    if (
        body
        and isinstance(body[0], ast.Expr)
        and isinstance(body[0].value, ast.Constant)
        and isinstance(body[0].value.value, str)
    ):
        return body[1:]
    return body


def _positional(node: ast.FunctionDef) -> list[ast.arg]:
    return [*node.args.posonlyargs, *node.args.args]


def function_source(func: Callable[..., Any]) -> str:
    """The board-side ``def`` of a task method.

    The method's source (:func:`inspect.getsource`, dedented) loses its decorators, its
    first parameter (``self``), its annotations and its docstring, which are host-side
    only; default values stay.

    Args:
        func: the undecorated method.

    Returns:
        MicroPython source defining a function of the method's name.

    Raises:
        InvalidArgumentError: no source, not a plain ``def``, or no ``self`` parameter.
    """
    node = _function_node(func)
    if node.args.posonlyargs:
        node.args.posonlyargs = node.args.posonlyargs[1:]
    elif node.args.args:
        node.args.args = node.args.args[1:]
    else:
        raise InvalidArgumentError(
            f"{func.__qualname__} must take self as its first parameter", argument="func"
        )
    node.decorator_list = []
    node.returns = None
    for arg in (*_positional(node), *node.args.kwonlyargs, node.args.vararg, node.args.kwarg):
        if arg is not None:
            arg.annotation = None
    node.body = _strip_docstring(node.body) or [ast.Pass()]
    return ast.unparse(node)


class _ReturnFinder(ast.NodeVisitor):
    """Finds return/yield at the top level of a body (not inside nested scopes)."""

    def __init__(self) -> None:
        self.found: str | None = None

    def visit_FunctionDef(self, node: ast.FunctionDef) -> None:
        return

    def visit_AsyncFunctionDef(self, node: ast.AsyncFunctionDef) -> None:
        return

    def visit_Lambda(self, node: ast.Lambda) -> None:
        return

    def visit_ClassDef(self, node: ast.ClassDef) -> None:
        return

    def visit_Return(self, node: ast.Return) -> None:
        self.found = self.found or "return"

    def visit_Yield(self, node: ast.Yield) -> None:
        self.found = self.found or "yield"

    def visit_YieldFrom(self, node: ast.YieldFrom) -> None:
        self.found = self.found or "yield from"


def body_source(func: Callable[..., Any]) -> str:
    """The body of a setup or teardown method, to run at the board's global scope.

    Decorators, the ``def`` line, the docstring and top-level ``global`` statements
    (no-ops at global scope) are dropped; what is left is dedented.

    Args:
        func: the undecorated method; it takes only ``self``.

    Returns:
        MicroPython source (``pass`` if the body was only a docstring).

    Raises:
        InvalidArgumentError: no source, parameters besides ``self``, or a ``return``
            / ``yield`` in the body (it runs at global scope, not as a function).
    """
    node = _function_node(func)
    params = _positional(node)
    args = node.args
    if len(params) != 1 or args.vararg or args.kwarg or args.kwonlyargs:
        raise InvalidArgumentError(
            f"{func.__qualname__}: setups and teardowns take only self", argument="func"
        )
    body = [s for s in _strip_docstring(node.body) if not isinstance(s, ast.Global)]
    finder = _ReturnFinder()
    for stmt in body:
        finder.visit(stmt)
    if finder.found:
        raise InvalidArgumentError(
            f"{func.__qualname__}: '{finder.found}' is not allowed here: the body runs "
            "at the board's global scope",
            argument="func",
        )
    return "\n".join(ast.unparse(s) for s in body) or "pass"


# --- literals across the wire -----------------------------------------------------------


def literal(value: Any, *, name: str = "argument") -> str:
    """``repr(value)``, refused unless it reads back equal with :func:`ast.literal_eval`.

    Args:
        value: an argument of a task call.
        name: the argument's name, for the error.

    Returns:
        The Python literal that is sent to the board.

    Raises:
        InvalidArgumentError: the value is not a literal (an object, NaN, a set of
            frozensets...), so the board could not receive it faithfully.
    """
    text = repr(value)
    try:
        back = ast.literal_eval(text)
        same = bool(back == value)
    except (ValueError, TypeError, SyntaxError, MemoryError, RecursionError):
        same = False
    if not same:
        shown = text if len(text) <= 80 else text[:77] + "..."
        raise InvalidArgumentError(
            f"{name}={shown} is not a Python literal that reads back equal "
            "(use int, float, str, bytes, bool, None, and lists/tuples/dicts/sets of them)",
            argument=name,
        )
    return text


def render_args(
    func_name: str, signature: inspect.Signature, args: tuple[Any, ...], kwargs: dict[str, Any]
) -> str:
    """The board-side argument list of a task call, e.g. ``3,10,fast=True``.

    Args:
        func_name: the task's name, for errors.
        signature: the method's signature, ``self`` included.
        args: positional arguments (without ``self``).
        kwargs: keyword arguments.

    Returns:
        MicroPython source of the arguments, comma-separated.

    Raises:
        InvalidArgumentError: the arguments do not fit the signature, or one is not a
            literal (see :func:`literal`).
    """
    try:
        signature.bind(None, *args, **kwargs)
    except TypeError as e:
        raise InvalidArgumentError(f"{func_name}(): {e}", argument=func_name) from None
    names = list(signature.parameters)[1:]
    parts = [
        literal(value, name=names[i] if i < len(names) else "*args") for i, value in enumerate(args)
    ]
    parts += [f"{key}={literal(value, name=key)}" for key, value in kwargs.items()]
    return ",".join(parts)


def parse_result(text: str, *, task: str = "?", device: str = "?") -> Any:
    """Read a board's ``repr(result)`` with :func:`ast.literal_eval`, never ``eval``.

    Args:
        text: what the board printed for the result.
        task: the task's name, for the error.
        device: the board's key, for the error.

    Returns:
        The value.

    Raises:
        ResultParseError: the text is not a literal (``<object>``, ``inf``,
            ``bytearray(b'')``...).
    """
    try:
        return ast.literal_eval(text.strip())
    except (ValueError, TypeError, SyntaxError, MemoryError, RecursionError) as e:
        shown = text if len(text) <= 200 else text[:197] + "..."
        raise ResultParseError(
            f"{device}: result of {task} is not a Python literal: {shown!r} "
            f"({type(e).__name__}); return int, float, str, bytes, bool, None or "
            "containers of them",
            task=task,
            device=device,
            text=shown,
        ) from None


@attrs.frozen
class _Record:
    ok: bool
    text: str


def _records(output: str) -> tuple[list[_Record], str]:
    """Split an exec's stdout into result/error records and the rest (user prints)."""
    records: list[_Record] = []
    rest: list[str] = []
    pos = 0
    while True:
        start = output.find(_REC_START, pos)
        if start < 0 or start + 1 >= len(output):
            rest.append(output[pos:])
            break
        end = output.find(_REC_END, start)
        if end < 0:
            rest.append(output[pos:])
            break
        rest.append(output[pos:start])
        kind = output[start + 1]
        if kind in "RE" and _REC_START not in output[start + 1 : end]:
            records.append(_Record(ok=kind == "R", text=output[start + 2 : end]))
            pos = end + 1
        else:  # a stray marker byte the code printed itself: not a record
            rest.append(output[start])
            pos = start + 1
    return records, "".join(rest).strip()


def _board_error(text: str, *, task: str, device: str) -> DeviceExceptionError:
    traceback_text = text.strip()
    exc_name, message = parse_traceback(traceback_text)
    return DeviceExceptionError(
        f"{exc_name} in {task} on {device}: {message}"
        if message
        else f"{exc_name} in {task} on {device}",
        exc_name=exc_name,
        exc_message=message,
        traceback_text=traceback_text,
        device=device,
        task=task,
    )


def _chunks(units: Sequence[str], limit: int) -> list[str]:
    """Join source units into as few pieces as possible, each at most ``limit`` bytes.

    A unit larger than ``limit`` goes alone.
    """
    out: list[str] = []
    current = ""
    for unit in units:
        if current and len((current + "\n" + unit).encode()) > limit:
            out.append(current)
            current = unit
        else:
            current = f"{current}\n{unit}" if current else unit
    if current:
        out.append(current)
    return out


# --- decorators ----------------------------------------------------------------------------


def _check_ms(value: int | None, name: str, *, allow_zero: bool) -> None:
    if value is None:
        return
    if not isinstance(value, int) or isinstance(value, bool) or value < (0 if allow_zero else 1):
        raise InvalidArgumentError(
            f"{name} must be an int >= {0 if allow_zero else 1}, not {value!r}", argument=name
        )


class Task(Generic[P, R]):
    """A task: a method whose body runs on the board. Made by :func:`task`.

    On an instance it is a :class:`BoundTask`; on the class it is this descriptor,
    which carries the metadata.

    Attributes:
        func: the undecorated method.
        name: the board function's name (the method's name).
        source: the board-side ``def`` (see :func:`function_source`).
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
        _check_ms(cache_ms, "cache_ms", allow_zero=True)
        _check_ms(timeout_ms, "timeout_ms", allow_zero=False)
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
    def __get__(
        self, obj: MicroPythonDevice, owner: type[Any] | None = None
    ) -> BoundTask[P, R]: ...

    def __get__(self, obj: MicroPythonDevice | None, owner: type[Any] | None = None) -> Any:
        if obj is None:
            return self
        return BoundTask(self, obj)


class BoundTask(Generic[P, R]):
    """A task of one device: call it to run the task on the board.

    Attributes:
        task: the :class:`Task` descriptor.
        device: the device it runs on.
    """

    def __init__(self, task: Task[P, R], device: MicroPythonDevice) -> None:
        self.task = task
        self.device = device

    def __call__(self, *args: P.args, **kwargs: P.kwargs) -> R:
        """Run the task on the board and return its result (parsed literal)."""
        result: R = self.device._call_task(self.task, args, dict(kwargs))
        return result

    def __repr__(self) -> str:
        return f"<BoundTask {self.task.name} of {self.device!r}>"


class _Snippet:
    """Common part of setups and teardowns: a body run at the board's global scope."""

    kind: ClassVar[str]

    def __init__(self, func: Callable[[Any], object], *, priority: int, timeout_ms: int | None):
        if not isinstance(priority, int) or isinstance(priority, bool):
            raise InvalidArgumentError("priority must be an int", argument="priority")
        _check_ms(timeout_ms, "timeout_ms", allow_zero=False)
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
    def __get__(
        self, obj: MicroPythonDevice, owner: type[Any] | None = None
    ) -> Callable[[], None]: ...

    def __get__(self, obj: MicroPythonDevice | None, owner: type[Any] | None = None) -> Any:
        if obj is None:
            return self
        return functools.partial(obj._run_snippet, self)


class Setup(_Snippet):
    """A setup: its body runs on the board at every (re)connection. Made by :func:`setup`.

    Setups run in ascending ``priority`` (lower number first), then in definition
    order.  Calling it on an instance (``dev.init()``) runs the body again.
    """

    kind = "setup"


class Teardown(_Snippet):
    """A teardown: its body runs on the board at close. Made by :func:`teardown`.

    Teardowns run in ascending ``priority`` (lower number first), then in definition
    order; every one runs even if an earlier one failed.
    """

    kind = "teardown"


class Background:
    """A host-side loop: the method runs in a thread every ``interval_ms`` until close.

    Made by :func:`background`.  The method is ordinary host Python (it usually calls
    tasks); on an instance it is the bound method.
    """

    def __init__(self, func: Callable[[Any], object], *, interval_ms: int) -> None:
        _check_ms(interval_ms, "interval_ms", allow_zero=False)
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
    def __get__(
        self, obj: MicroPythonDevice, owner: type[Any] | None = None
    ) -> Callable[[], object]: ...

    def __get__(self, obj: MicroPythonDevice | None, owner: type[Any] | None = None) -> Any:
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
        The :class:`Task` descriptor, or a decorator making one.
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
        The :class:`Setup` descriptor, or a decorator making one.
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

    Its body runs at the board's global scope on :meth:`MicroPythonDevice.close`, on
    runtime stop, and after a setup failed.  Lower ``priority`` runs first.

    Args:
        func: the method, when used bare.
        priority: order among teardowns, ascending.
        timeout_ms: exec deadline, or None for the device's ``task_timeout``.

    Returns:
        The :class:`Teardown` descriptor, or a decorator making one.
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
        A decorator making a :class:`Background` descriptor.
    """

    _check_ms(interval_ms, "interval_ms", allow_zero=False)

    def make(f: Callable[[Any], object]) -> Background:
        return Background(f, interval_ms=interval_ms)

    return make


# --- the device -----------------------------------------------------------------------------


class _HasGeneration(Protocol):
    @property
    def generation(self) -> int: ...


class BoardLike(Protocol):
    """What a device needs of its board: a leased :class:`~actorhw.handles.Board` fits."""

    def exec(self, code: str, *, timeout: float = ...) -> str:
        """Run code, return its stdout; DeviceExceptionError / TimedOutError."""
        ...

    def open(self) -> object:
        """(Re)open the device for this handle's lease (after a reset)."""
        ...

    def release(self) -> int:
        """End the lease."""
        ...

    def info(self) -> _HasGeneration:
        """The device's info; ``generation`` grows with every reset of the board."""
        ...


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


@attrs.frozen
class BackgroundStatus:
    """One background loop at one moment.

    Attributes:
        name: the method's name.
        runs: runs finished (successful or not).
        errors: runs that raised.
        last_error: the latest exception of a run, or None.
        alive: whether its thread runs.
    """

    name: str
    runs: int
    errors: int
    last_error: BaseException | None
    alive: bool


class _Pending:
    """One call of a batch: its task, its board-side call, its outcome."""

    def __init__(self, spec: Task[Any, Any], call: str, outcome: Outcome[Any]) -> None:
        self.spec = spec
        self.call = call
        self.outcome = outcome


class Batch:
    """Several task calls sent in one round trip. Get one with ``dev.batching()``.

    ::

        with dev.batching() as b:
            s = b.call(dev.status)
            c = b.call(dev.collect, 3, 10)
        s.result(), c.error

    Leaving the ``with`` block runs the batch (unless the block raised); each call's
    :class:`Outcome` then holds its own value or error.
    """

    def __init__(self, device: MicroPythonDevice) -> None:
        self._device = device
        self._pending: list[_Pending] = []
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
        self._pending.append(_Pending(bound.task, call, outcome))
        return outcome

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


class _RWLock:
    """Shared calls run together; an exclusive one runs alone. Writers go first."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._readers = 0
        self._writer = False
        self._writers_waiting = 0
        self._waiting = 0

    @property
    def waiting(self) -> int:
        """Calls waiting for their turn now."""
        with self._cond:
            return self._waiting

    def wait_until_waiting(self, count: int, *, timeout: float) -> bool:
        """Block until ``count`` calls wait for their turn; False on timeout."""
        with self._cond:
            return self._cond.wait_for(lambda: self._waiting >= count, timeout=timeout)

    def _can_enter(self, exclusive: bool) -> bool:
        # A waiting writer keeps new readers out; writers themselves only need it free.
        if exclusive:
            return not self._writer and not self._readers
        return not self._writer and not self._writers_waiting

    @contextlib.contextmanager
    def hold(self, *, exclusive: bool, timeout: float, what: str) -> Iterator[None]:
        """Hold the lock, shared or exclusive, for the ``with`` block.

        Raises:
            TimedOutError: the turn did not come within ``timeout`` s.
        """
        deadline = time.monotonic() + timeout
        with self._cond:
            ok = self._can_enter(exclusive)
            if not ok:
                self._waiting += 1
                self._writers_waiting += exclusive
                self._cond.notify_all()
                try:
                    ok = self._cond.wait_for(
                        lambda: self._can_enter(exclusive),
                        timeout=max(0.0, deadline - time.monotonic()),
                    )
                finally:
                    self._waiting -= 1
                    self._writers_waiting -= exclusive
                    self._cond.notify_all()
            if not ok:
                raise TimedOutError(
                    f"{what}: an exclusive call kept the device busy for {timeout:.3g} s",
                    timeout=timeout,
                )
            if exclusive:
                self._writer = True
            else:
                self._readers += 1
        try:
            yield
        finally:
            with self._cond:
                if exclusive:
                    self._writer = False
                else:
                    self._readers -= 1
                self._cond.notify_all()


@attrs.define
class _Loop:
    spec: Background
    thread: threading.Thread
    runs: int = 0
    errors: int = 0
    last_error: BaseException | None = None
    ended: bool = False


class MicroPythonDevice:
    """Base of device classes whose decorated methods run on a MicroPython board.

    Constructing one leases the board (acquire + open), sends the task definitions,
    runs the setups, registers for runtime stop and starts the background loops;
    :meth:`close` (or leaving the ``with`` block) stops the loops, runs the teardowns
    and releases the board.

    Args:
        runtime: the running Runtime (None only with a ``device`` that is a handle).
        device: the BOARD device id to lease, or a board handle already held (a
            leased :class:`~actorhw.handles.Board`, or any :class:`BoardLike`); the
            device then owns it and releases it on close.
        owner: the lease's owner name (with a device id).
        timeout: deadline of the runtime's control asks (lease, info), in s.
        lock_timeout: how long a call waits for an exclusive call to end, in s.
        close_timeout: how long close waits for the background threads; None: the
            longest task timeout plus 5 s.
        connect: connect now (default); else call :meth:`open` later.

    Class attributes:
        task_timeout: exec deadline (s) of tasks, setups and teardowns without
            ``timeout_ms``.
        max_exec_bytes: size limit of one exec of definitions: they are packed into
            as few execs as fit (the micro:bit has about 10 KB of heap).
    """

    task_timeout: ClassVar[float] = 10.0
    max_exec_bytes: ClassVar[int] = 1024

    _tasks: ClassVar[dict[str, Task[Any, Any]]] = {}
    _setups: ClassVar[tuple[Setup, ...]] = ()
    _teardowns: ClassVar[tuple[Teardown, ...]] = ()
    _backgrounds: ClassVar[tuple[Background, ...]] = ()

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        found: dict[str, Any] = {}
        for klass in reversed(cls.__mro__):
            for name, value in vars(klass).items():
                if isinstance(value, Task | Setup | Teardown | Background):
                    found[name] = value
                elif name in found:
                    del found[name]
        specs = list(found.values())
        cls._tasks = {s.name: s for s in sorted(specs, key=_by_order) if isinstance(s, Task)}
        cls._setups = tuple(sorted((s for s in specs if isinstance(s, Setup)), key=_by_priority))
        cls._teardowns = tuple(
            sorted((s for s in specs if isinstance(s, Teardown)), key=_by_priority)
        )
        cls._backgrounds = tuple(
            sorted((s for s in specs if isinstance(s, Background)), key=_by_order)
        )

    def __init__(
        self,
        runtime: Runtime | None,
        device: DeviceId | BoardLike,
        *,
        owner: str | None = None,
        timeout: float = 5.0,
        lock_timeout: float = 60.0,
        close_timeout: float | None = None,
        connect: bool = True,
    ) -> None:
        if isinstance(device, DeviceId):
            if runtime is None or not owner:
                raise InvalidArgumentError(
                    "leasing a device id needs a runtime and an owner", argument="owner"
                )
            self.key: str = device.key
        else:
            self.key = str(getattr(getattr(device, "device", None), "key", "board"))
        self._rt = runtime
        self._device = device
        self.owner = owner
        self.timeout = timeout
        self.lock_timeout = lock_timeout
        self.close_timeout = close_timeout
        self._log = logger.bind(device=self.key)
        self._board: BoardLike | None = None
        self._conn_lock = threading.Lock()
        self._rw = _RWLock()
        self._synced_generation: int | None = None
        self._script_key: str | None = None
        self._epoch = 0
        self._nonce = 0
        self._cache: dict[tuple[str, str], tuple[float, Any]] = {}
        self._cache_lock = threading.Lock()
        self._state_lock = threading.Lock()
        self._opened = False
        self.closing = threading.Event()
        """Set when close begins: background methods may watch it to end early."""
        self._loops: dict[str, _Loop] = {}
        self._loop_cond = threading.Condition()
        self._unregister: Callable[[], object] | None = None
        self.syncs = 0
        """How many times definitions were sent and setups run (once per connection)."""
        if connect:
            self.open()

    def __repr__(self) -> str:
        state = "open" if self._opened and not self.closing.is_set() else "closed"
        return f"<{type(self).__name__} {self.key} {state}>"

    # --- lifecycle ---------------------------------------------------------------------

    def open(self) -> Self:
        """Lease the board, send the definitions, run the setups, start the loops.

        Raises:
            DeviceExceptionError: a setup raised on the board (after the teardowns
                ran; their failures are in its ``teardown_errors`` and notes).
            ActorHwError: the lease or the board failed (busy, unavailable...).
        """
        with self._state_lock:
            if self._opened:
                raise InvalidArgumentError(f"{self!r} is already open", argument="open")
            if self.closing.is_set():
                raise NotOpenedError(f"{self.key}: this device object was closed", device=self.key)
            self._opened = True
        try:
            if isinstance(self._device, DeviceId):
                assert self._rt is not None and self.owner
                self._board = self._rt.lease(
                    Board, self._device, owner=self.owner, timeout=self.timeout
                )
            else:
                self._board = self._device
            try:
                self._ensure_synced()
            except BaseException:
                self._release_board()
                raise
        except BaseException:
            with self._state_lock:
                self._opened = False
            raise
        hook = getattr(self._rt, "on_stop", None) if self._rt is not None else None
        if callable(hook):
            unregister = hook(self._on_runtime_stop)
            self._unregister = unregister if callable(unregister) else None
        for spec in self._backgrounds:
            self._start_loop(spec)
        return self

    def close(self) -> None:
        """Stop the loops, run the teardowns, release the board. Safe to call twice.

        No thread of this device outlives it.

        Raises:
            TimedOutError: a background thread did not end within ``close_timeout``.
            DeviceExceptionError: a teardown raised on the board (the first failure;
                every failure is in its ``teardown_errors`` and notes).
            RuntimeStoppedError: the runtime stopped first, so the teardowns could not
                run.
        """
        with self._state_lock:
            if self.closing.is_set() or not self._opened:
                self.closing.set()
                return
            self.closing.set()
        errors: list[BaseException] = []
        if self._unregister is not None:
            with contextlib.suppress(Exception):
                self._unregister()
        deadline = time.monotonic() + self._join_timeout()
        self._join_loops(deadline)
        try:
            if self._rt is not None and not self._rt.running:
                errors.append(
                    RuntimeStoppedError(
                        f"{self.key}: the runtime stopped before close; teardowns "
                        f"{', '.join(t.name for t in self._teardowns) or '(none)'} did not run",
                        device=self.key,
                    )
                )
            elif self._teardowns:
                with self._rw.hold(
                    exclusive=True, timeout=self.lock_timeout, what=f"{self.key} close"
                ):
                    errors += self._run_teardowns()
        finally:
            release_error = self._release_board()
            if release_error is not None:
                errors.append(release_error)
        self._join_loops(deadline)
        me = threading.current_thread()
        alive = [
            name
            for name, loop in self._loops.items()
            if loop.thread.is_alive() and loop.thread is not me
        ]
        if alive:
            errors.append(
                TimedOutError(
                    f"{self.key}: background loop(s) {', '.join(alive)} did not end in time",
                    device=self.key,
                    loops=alive,
                )
            )
        if errors:
            raise _aggregate(errors[0], errors[1:])

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _on_runtime_stop(self) -> None:
        self.close()

    def _release_board(self) -> BaseException | None:
        self._unregister_script()
        board, self._board = self._board, None
        if board is None:
            return None
        try:
            board.release()
        except Exception as e:
            if self._rt is not None and not self._rt.running:
                return None  # the runtime's stop released every lease
            self._log.warning("release failed: {}", e)
            return e
        return None

    def _join_timeout(self) -> float:
        if self.close_timeout is not None:
            return self.close_timeout
        longest = max(
            [self.task_timeout]
            + [t.timeout_ms / 1000 for t in self._tasks.values() if t.timeout_ms]
        )
        return longest + 5.0

    # --- connection ----------------------------------------------------------------------

    def _board_handle(self) -> BoardLike:
        board = self._board
        if board is None or self.closing.is_set():
            raise NotOpenedError(f"{self.key}: the device is not open", device=self.key)
        return board

    def _check_open(self) -> BoardLike:
        if self.closing.is_set() or not self._opened:
            raise NotOpenedError(
                f"{self.key}: the device is {'closed' if self.closing.is_set() else 'not open'}",
                device=self.key,
            )
        return self._board_handle()

    def _ensure_synced(self) -> None:
        """Send definitions and run setups if the board's connection changed."""
        board = self._board_handle()
        generation = board.info().generation
        if generation == self._synced_generation:
            return
        with self._conn_lock:
            if generation == self._synced_generation:
                return
            with self._rw.hold(exclusive=True, timeout=self.lock_timeout, what=f"{self.key} sync"):
                with contextlib.suppress(AlreadyOpenedError):
                    board.open()  # reopen after a reset; refused (ignored) if still open
                generation = board.info().generation
                if not (self._script_key and not self._definitions_lost(board)):
                    self._sync(board)  # the board did not rerun our connect script
                self._synced_generation = generation
                self._epoch += 1

    def _invalidate(self, epoch: int) -> None:
        with self._conn_lock:
            if self._epoch == epoch:
                self._synced_generation = None

    def _sync(self, board: BoardLike) -> None:
        self.clear_cache()
        self._nonce = random.getrandbits(30)
        units = [f"{_SENTINEL}=None", _HELPER]
        units += [t.source for t in self._tasks.values()]
        units.append(f"{_SENTINEL}={self._nonce}")
        chunks = _chunks(units, self.max_exec_bytes)
        self._log.debug("sending {} definitions in {} exec(s)", len(self._tasks), len(chunks))
        for chunk in chunks:
            try:
                board.exec(chunk, timeout=self.task_timeout)
            except ActorHwError as e:
                e.add_note(f"while sending the task definitions of {type(self).__name__}")
                raise
        self._register_script(units[:-1])  # without the sentinel: it goes last
        for spec in self._setups:
            error: ActorHwError | None = None
            try:
                board.exec(spec.source, timeout=self._timeout(spec.timeout_ms))
            except ActorHwError as e:
                error = e
            if error is not None:
                error.add_note(f"in setup {spec.name} of {type(self).__name__}")
                self._log.warning("setup {} failed: {}; running teardowns", spec.name, error)
                raise _aggregate(error, self._run_teardowns())
        self.syncs += 1

    def _register_script(self, units: list[str]) -> None:
        """Have the board rerun definitions and setups after every reconnect, before
        it is CONNECTED again (runtime-leased devices only)."""
        if self._rt is None or not isinstance(self._device, DeviceId):
            return
        board = type(self._device).board
        key = self._script_key or f"{type(self).__name__}:{self.key}:{id(self)}"
        # The sentinel is set last: a board whose sentinel matches ran the whole script.
        codes = _chunks(units, self.max_exec_bytes) + [spec.source for spec in self._setups]
        codes.append(f"{_SENTINEL}={self._nonce}")
        timeout = max([self.task_timeout] + [self._timeout(s.timeout_ms) for s in self._setups])
        self._rt.set_connect_script(board, key, codes, timeout=timeout)
        self._script_key = key

    def _unregister_script(self) -> None:
        key, self._script_key = self._script_key, None
        if key is None or self._rt is None or not isinstance(self._device, DeviceId):
            return
        if self._rt.running:
            with contextlib.suppress(ActorHwError):
                self._rt.set_connect_script(type(self._device).board, key, (), timeout=0)

    def _definitions_lost(self, board: BoardLike) -> bool:
        out = board.exec(f"print(globals().get('{_SENTINEL}'))", timeout=self.task_timeout)
        return out.strip() != str(self._nonce)

    def _run_teardowns(self) -> list[BaseException]:
        board = self._board
        if board is None:
            return []
        failures: list[BaseException] = []
        for spec in self._teardowns:
            timeout = self._timeout(spec.timeout_ms)
            try:
                try:
                    board.exec(spec.source, timeout=timeout)
                except DeviceResetError:
                    with contextlib.suppress(AlreadyOpenedError):
                        board.open()
                    board.exec(spec.source, timeout=timeout)
            except Exception as e:
                e.add_note(f"in teardown {spec.name} of {type(self).__name__}")
                self._log.warning("teardown {} failed: {}", spec.name, e)
                failures.append(e)
        return failures

    def _timeout(self, timeout_ms: int | None) -> float:
        return timeout_ms / 1000 if timeout_ms else self.task_timeout

    # --- calls -----------------------------------------------------------------------------

    def _invoke(
        self,
        code: str,
        *,
        timeout: float,
        exclusive: bool,
        what: str,
        parse: Callable[[str], T],
        retry_lost: bool = True,
    ) -> T:
        """Run ``code`` (re-syncing first if needed) and parse its output under the lock.

        A call refused because the board was reset (DeviceResetError) is retried once
        after a re-sync: none of it ran.  So is, with ``retry_lost``, a call that raised
        NameError on a board whose definitions are gone (the sentinel is missing): the
        call's function itself was missing, so none of it ran either.  Raw code (exec,
        a setup run by hand) is not retried that way: part of it may have run.
        """
        retried = False
        while True:
            board = self._check_open()
            self._ensure_synced()
            epoch = self._epoch
            with self._rw.hold(exclusive=exclusive, timeout=self.lock_timeout, what=what):
                try:
                    if exclusive and isinstance(board, Board):
                        # Alone on the board for every caller: the operation limiter.
                        out = board.exec(code, timeout=timeout, exclusive=True)
                    else:
                        out = board.exec(code, timeout=timeout)
                except DeviceResetError:
                    if retried:
                        raise
                    self._log.info("{}: board was reset; reconnecting", what)
                except DeviceExceptionError as e:
                    if (
                        retried
                        or not retry_lost
                        or getattr(e, "exc_name", None) != "NameError"
                        or not self._definitions_lost(board)
                    ):
                        raise
                    self._log.info("{}: board lost its definitions; re-sending", what)
                else:
                    return parse(out)
            retried = True
            self._invalidate(epoch)

    def _call_task(
        self, spec: Task[Any, Any], args: tuple[Any, ...], kwargs: dict[str, Any]
    ) -> Any:
        self._check_open()
        call = spec.call_source(*args, **kwargs)
        cached = self._cached(spec, call)
        if cached is not None:
            return cached[0]
        code = f"print('\\x1eR',repr({call}),'\\x1f',sep='')"

        def parse(out: str) -> Any:
            records, rest = _records(out)
            if rest:
                self._log.debug("{} printed: {}", spec.name, rest)
            if len(records) != 1 or not records[0].ok:
                raise ResultParseError(
                    f"{self.key}: no result record in the output of {spec.name}: {out[:200]!r}",
                    task=spec.name,
                    device=self.key,
                    text=out[:200],
                )
            return parse_result(records[0].text, task=spec.name, device=self.key)

        try:
            value = self._invoke(
                code,
                timeout=self._timeout(spec.timeout_ms),
                exclusive=spec.exclusive,
                what=f"{self.key}.{spec.name}",
                parse=parse,
            )
        except ActorHwError as e:
            e.add_note(f"in task {spec.name} of {type(self).__name__}")
            raise
        self._store(spec, call, value)
        return value

    def _cached(self, spec: Task[Any, Any], call: str) -> tuple[Any] | None:
        if not spec.cache_ms:
            return None
        with self._cache_lock:
            hit = self._cache.get((spec.name, call))
            if hit is None or hit[0] <= time.monotonic():
                return None
            return (copy.deepcopy(hit[1]),)

    def _store(self, spec: Task[Any, Any], call: str, value: Any) -> None:
        if spec.cache_ms:
            with self._cache_lock:
                expires = time.monotonic() + spec.cache_ms / 1000
                self._cache[(spec.name, call)] = (expires, copy.deepcopy(value))

    def clear_cache(self) -> None:
        """Forget every cached task result (done at every re-sync)."""
        with self._cache_lock:
            self._cache.clear()

    def _run_snippet(self, spec: _Snippet) -> None:
        """Run a setup's or teardown's body on the board again (``dev.init()``)."""
        self._check_open()
        self._invoke(
            spec.source,
            timeout=self._timeout(spec.timeout_ms),
            exclusive=False,
            what=f"{self.key}.{spec.name}",
            parse=lambda _out: None,
            retry_lost=False,
        )

    def exec(self, code: str, *, timeout: float | None = None) -> str:
        """Run raw MicroPython on the board (after the definitions and setups).

        Args:
            code: the source.
            timeout: deadline in s (default ``task_timeout``).

        Returns:
            What the code printed.
        """
        return self._invoke(
            code,
            timeout=timeout or self.task_timeout,
            exclusive=False,
            what=f"{self.key}.exec",
            parse=lambda out: out,
            retry_lost=False,
        )

    # --- batches ---------------------------------------------------------------------------

    def batching(self) -> Batch:
        """A :class:`Batch`: add calls with ``b.call(dev.task, *args)``; leaving the
        ``with`` block sends them all in one round trip."""
        self._check_open()
        return Batch(self)

    def batch(self, calls: Iterable[tuple[Any, ...]]) -> list[Outcome[Any]]:
        """Run several task calls in one round trip; outcomes come back in order.

        Args:
            calls: ``(dev.task, args)`` or ``(dev.task, args, kwargs)`` tuples, e.g.
                ``[(dev.status, ()), (dev.collect, (3, 10))]``.

        Returns:
            One :class:`Outcome` per call; a call that raised on the board has its own
            ``error`` (``outcome.result()`` raises it), the others are unaffected.

        Raises:
            InvalidArgumentError: a malformed call (checked before anything is sent).
            TimedOutError, DeviceExceptionError: the batch as a whole failed.
        """
        b = self.batching()
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
            b.call(bound, *args, **kwargs)
        return b.run()

    def _run_batch(self, pending: list[_Pending]) -> None:
        self._check_open()
        send: list[_Pending] = []
        for p in pending:
            cached = self._cached(p.spec, p.call)
            if cached is not None:
                p.outcome.value, p.outcome.done = cached[0], True
            else:
                send.append(p)
        if not send:
            return
        code = "\n".join(_helper_call(p.call) for p in send)
        timeout = sum(self._timeout(p.spec.timeout_ms) for p in send)
        exclusive = any(p.spec.exclusive for p in send)

        def parse(out: str) -> None:
            records, rest = _records(out)
            if rest:
                self._log.debug("batch printed: {}", rest)
            for i, p in enumerate(send):
                p.outcome.done = True
                if i >= len(records):
                    p.outcome.error = ResultParseError(
                        f"{self.key}: no result for {p.spec.name} in the batch output",
                        task=p.spec.name,
                        device=self.key,
                        text=out[-200:],
                    )
                elif records[i].ok:
                    try:
                        p.outcome.value = parse_result(
                            records[i].text, task=p.spec.name, device=self.key
                        )
                    except ResultParseError as e:
                        p.outcome.error = e
                else:
                    p.outcome.error = _board_error(
                        records[i].text, task=p.spec.name, device=self.key
                    )

        try:
            self._invoke(
                code,
                timeout=timeout,
                exclusive=exclusive,
                what=f"{self.key} batch of {len(send)}",
                parse=parse,
            )
        except BaseException as e:
            for p in send:
                p.outcome.done, p.outcome.error = True, e
            raise
        for p in send:
            if p.outcome.error is None:
                self._store(p.spec, p.call, p.outcome.value)

    # --- background loops ----------------------------------------------------------------

    def _start_loop(self, spec: Background) -> None:
        thread = threading.Thread(
            target=self._loop,
            args=(spec,),
            name=f"actorhw-bg-{self.key}-{spec.name}",
            daemon=True,
        )
        with self._loop_cond:
            self._loops[spec.name] = _Loop(spec, thread)
        thread.start()

    def _loop(self, spec: Background) -> None:
        interval = spec.interval_ms / 1000
        log = self._log.bind(loop=spec.name)
        loop = self._loops[spec.name]
        next_run = time.monotonic()
        while not self.closing.is_set():
            if self._rt is not None and not self._rt.running:
                log.info("background {} ends: the runtime stopped", spec.name)
                break
            error: BaseException | None = None
            try:
                spec.func(self)
            except Exception as e:
                error = e
                log.opt(exception=e).warning("background {} failed: {}", spec.name, e)
            except BaseException as e:  # SystemExit, KeyboardInterrupt: end this loop
                log.opt(exception=e).error("background {} ends: {!r}", spec.name, e)
                with self._loop_cond:
                    loop.errors += 1
                    loop.last_error = e
                break
            with self._loop_cond:
                loop.runs += 1
                if error is not None:
                    loop.errors += 1
                    loop.last_error = error
                self._loop_cond.notify_all()
            now = time.monotonic()
            next_run = max(next_run + interval, now)
            if self.closing.wait(next_run - now):
                break
        with self._loop_cond:
            loop.ended = True
            self._loop_cond.notify_all()

    def _join_loops(self, deadline: float) -> None:
        me = threading.current_thread()
        for loop in list(self._loops.values()):
            if loop.thread is not me and loop.thread.ident is not None:
                loop.thread.join(max(0.0, deadline - time.monotonic()))

    @property
    def background_errors(self) -> dict[str, int]:
        """Exceptions counted so far, per background loop."""
        with self._loop_cond:
            return {name: loop.errors for name, loop in self._loops.items()}

    def background_status(self) -> dict[str, BackgroundStatus]:
        """Runs, errors, last error and liveness of every background loop."""
        with self._loop_cond:
            return {
                name: BackgroundStatus(
                    name, loop.runs, loop.errors, loop.last_error, loop.thread.is_alive()
                )
                for name, loop in self._loops.items()
            }

    def wait_background(self, name: str, *, runs: int, timeout: float) -> bool:
        """Wait until loop ``name`` finished at least ``runs`` runs; False on timeout.

        Raises:
            InvalidArgumentError: no loop of that name runs.
        """
        with self._loop_cond:
            loop = self._loops.get(name)
            if loop is None:
                raise InvalidArgumentError(
                    f"no background loop {name!r}; loops: {', '.join(self._loops) or 'none'}",
                    argument="name",
                )
            return (
                self._loop_cond.wait_for(lambda: loop.runs >= runs or loop.ended, timeout=timeout)
                and loop.runs >= runs
            )


def _helper_call(call: str) -> str:
    """``collect(3,10)`` -> ``_ahw_c(collect,3,10)``; ``status()`` -> ``_ahw_c(status)``."""
    name, _, rest = call.partition("(")
    return f"_ahw_c({name}{',' if rest != ')' else ''}{rest}"


def _by_order(spec: Any) -> int:
    return int(spec.order)


def _by_priority(spec: _Snippet) -> tuple[int, int]:
    return (spec.priority, spec.order)


def _aggregate(primary: BaseException, others: Sequence[BaseException]) -> BaseException:
    """``primary``, with every other failure in its notes and ``teardown_errors``."""
    if others:
        for other in others:
            primary.add_note(f"also failed: {type(other).__name__}: {other}")
        with contextlib.suppress(AttributeError):
            setattr(primary, "teardown_errors", list(others))  # noqa: B010
    return primary
