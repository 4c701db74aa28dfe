"""Request: the base of every message that is answered, naming its answer's type."""

from __future__ import annotations

from typing import Generic, TypeVar

#: The type of a request's answer.
R_co = TypeVar("R_co", covariant=True)


class Request(Generic[R_co]):
    """A message that is answered with an ``R_co``.

    Each request subclasses ``Request[<its answer's type>]``, so that
    ``actorhw.tree.asks.ask(ref, GetInfo())`` is a `DeviceInfo` to the type
    checker. Messages that are only told (events, notes an actor sends itself) do not
    subclass it, and `ask()` refuses them to the type checker.
    """

    __slots__ = ()
