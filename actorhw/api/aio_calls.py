"""How the asyncio facade runs blocking Runtime calls: its worker pool, deadlines, and
`Twin`, the awaitable twin of a Runtime method (same signature, by construction).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import inspect
import threading
from collections.abc import Awaitable, Callable, Coroutine
from types import TracebackType
from typing import (
    Any,
    Concatenate,
    Final,
    Generic,
    ParamSpec,
    Protocol,
    Self,
    TypeVar,
    overload,
)

from actorhw.api.runtime import Runtime
from actorhw.core.errors import InvalidArgumentError, RuntimeStoppedError, TimedOutError
from actorhw.tree.asks import DEFAULT_ASK_TIMEOUT

__all__ = [
    "AWAIT_GRACE",
    "DEFAULT_WORKERS",
    "ClosingOnExit",
    "Twin",
    "WorkerPool",
    "check_timeout",
]

P = ParamSpec("P")
T = TypeVar("T")

#: Seconds an await waits beyond the deadline of the blocking call it wraps: that call
#: times out first and raises its own precise error; the grace only catches a worker
#: pool that could not start the call at all.
AWAIT_GRACE: Final = 1.0

#: Worker threads of one AsyncRuntime: calls beyond this many queue for a free worker.
DEFAULT_WORKERS: Final = 16


def check_timeout(value: float, name: str = "timeout") -> float:
    """``value`` as a float, if it is a positive number of seconds."""
    if isinstance(value, bool) or not isinstance(value, int | float) or not value > 0:
        raise InvalidArgumentError(
            f"{name} must be a positive number of seconds, not {value!r}", argument=name
        )
    return float(value)


class ClosingOnExit:
    """``async with`` gives the object itself and awaits its `aclose()` on the way
    out, also on an exception or a cancellation."""

    async def aclose(self) -> None:
        """Let go of what the object holds."""
        raise NotImplementedError

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()


class WorkerPool:
    """The facade's worker threads: blocking calls run here, never on the event loop."""

    def __init__(self, workers: int) -> None:
        self._pool = concurrent.futures.ThreadPoolExecutor(
            max_workers=workers, thread_name_prefix="actorhw-aio"
        )
        self.stopped = False

    def submit(
        self, what: str, func: Callable[P, T], *args: P.args, **kwargs: P.kwargs
    ) -> asyncio.Future[T]:
        """Start ``func`` on a worker; RuntimeStoppedError once the pool is shut."""
        if self.stopped:
            raise RuntimeStoppedError(f"{what}: the runtime is stopped")
        try:
            return asyncio.wrap_future(self._pool.submit(func, *args, **kwargs))
        except RuntimeError as e:  # the pool was shut down under us
            raise RuntimeStoppedError(f"{what}: the runtime is stopped") from e

    @staticmethod
    async def wait(what: str, deadline: float, future: Awaitable[T]) -> T:
        """``future``'s result within ``deadline`` + AWAIT_GRACE seconds."""
        try:
            async with asyncio.timeout(deadline + AWAIT_GRACE):
                return await future
        except TimeoutError:
            raise TimedOutError(
                f"{what}: no answer within {deadline + AWAIT_GRACE:.3g} s "
                "(all workers busy, or a call overran its deadline)",
                operation=what,
                timeout=deadline,
            ) from None

    async def call(
        self, what: str, deadline: float, func: Callable[P, T], *args: P.args, **kwargs: P.kwargs
    ) -> T:
        """Run ``func`` on a worker; wait at most ``deadline`` + AWAIT_GRACE seconds."""
        return await self.wait(what, deadline, self.submit(what, func, *args, **kwargs))

    def shutdown(self) -> None:
        """Refuse new calls; calls not started yet are cancelled."""
        self.stopped = True
        self._pool.shutdown(wait=False, cancel_futures=True)


class Facade(Protocol):
    """What a `Twin` needs of the facade it is a method of."""

    runtime: Runtime
    timeout: float
    workers: WorkerPool


class Twin(Generic[P, T]):
    """The awaitable twin of a Runtime method: the very same parameters (to mypy too),
    run on the facade's workers within the call's own deadline.

    The deadline is the call's ``timeout`` argument (or the one ``deadline`` names),
    plus ``slack`` for methods that wait a little past it; a control call given no
    deadline takes the facade's default.
    """

    def __init__(
        self,
        method: Callable[Concatenate[Runtime, P], T],
        *,
        deadline: str = "timeout",
        slack: float = 0.0,
    ) -> None:
        self.method = method
        self.name = method.__name__
        self._signature = inspect.signature(method)
        self._deadline = deadline
        self._slack = slack
        #: The twin's parameters: the method's, without ``self``.
        self.signature = self._signature.replace(
            parameters=list(self._signature.parameters.values())[1:]
        )
        param = self._signature.parameters.get(deadline)
        self._control = param is not None and param.default == DEFAULT_ASK_TIMEOUT
        self.__doc__ = f"Awaitable `Runtime.{self.name}()`. {method.__doc__ or ''}"

    def __set_name__(self, owner: type, name: str) -> None:
        if name != self.name:
            raise TypeError(f"{owner.__name__}.{name} is a twin of Runtime.{self.name}")

    @overload
    def __get__(self, obj: None, owner: type | None = None) -> Twin[P, T]: ...
    @overload
    def __get__(
        self, obj: Facade, owner: type | None = None
    ) -> Callable[P, Coroutine[Any, Any, T]]: ...
    def __get__(
        self, obj: Facade | None, owner: type | None = None
    ) -> Twin[P, T] | Callable[P, Coroutine[Any, Any, T]]:
        if obj is None:
            return self
        facade = obj

        async def twin(*args: P.args, **kwargs: P.kwargs) -> T:
            call: dict[str, Any] = dict(kwargs)
            if self._control and self._deadline not in call:
                call[self._deadline] = facade.timeout
            bound = self._signature.bind(facade.runtime, *args, **call)
            bound.apply_defaults()
            timeout = bound.arguments.get(self._deadline)
            deadline = facade.timeout if timeout is None else check_timeout(timeout)
            # The runtime's own method: a Runtime subclass's override is the one called.
            method: Callable[..., T] = getattr(facade.runtime, self.name)
            return await facade.workers.call(
                self.name, deadline + self._slack, method, *args, **call
            )

        twin.__name__ = twin.__qualname__ = self.name
        twin.__doc__ = self.__doc__
        twin.__signature__ = self.signature  # type: ignore[attr-defined]
        return twin


def stop_abandoned(future: asyncio.Future[Runtime]) -> None:
    """Stop the runtime a cancelled or overrun start brings up later, off the loop."""
    if not future.cancelled() and future.exception() is None:
        # Off the loop: stopping blocks until every actor has stopped.
        threading.Thread(target=future.result().stop, name="actorhw-aio-stop").start()
