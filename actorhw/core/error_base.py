"""The base of actorhw's errors: `ActorHwError`, with an errno-style ``code`` and its
context as typed attributes, each declared on its class as a `Field`.

The errors themselves are in `actorhw.core.errors`, which re-exports both.
"""

from __future__ import annotations

from typing import Any, ClassVar, Generic, TypeVar, overload

__all__ = ["ActorHwError", "Field"]

T = TypeVar("T")


class Field(Generic[T]):
    """A typed attribute of an error, read from the context it was raised with.

    ``owners = Field[Sequence[str]](())`` on an error class makes ``e.owners`` the
    ``owners=`` keyword the error was raised with, or ``()`` when it was not given.
    """

    __slots__ = ("default", "name")

    def __init__(self, default: T) -> None:
        self.default = default
        self.name = ""

    def __set_name__(self, owner: type, name: str) -> None:
        self.name = name

    @overload
    def __get__(self, obj: None, objtype: type | None = None) -> Field[T]: ...
    @overload
    def __get__(self, obj: ActorHwError, objtype: type | None = None) -> T: ...
    def __get__(self, obj: ActorHwError | None, objtype: type | None = None) -> Field[T] | T:
        if obj is None:
            return self
        value: T = obj.context.get(self.name, self.default)
        return value


class ActorHwError(Exception):
    """Base of every error actorhw raises on purpose.

    Attributes:
        code: errno-style name of the error, stable across releases.
        context: the keyword arguments the error was raised with; each is declared on
            the error's class as a typed attribute (see `fields()`).
    """

    code: ClassVar[str] = "actorhw_error"

    def __init__(self, message: str, **context: Any) -> None:
        super().__init__(message)
        self.message = message
        self.context: dict[str, Any] = context

    def __str__(self) -> str:
        return f"[{self.code}] {self.message}"

    @classmethod
    def fields(cls) -> frozenset[str]:
        """The names of the context this error class declares (its own and inherited)."""
        return frozenset(
            name for klass in cls.__mro__ for name, v in vars(klass).items() if isinstance(v, Field)
        )

    def to_dict(self) -> dict[str, Any]:
        """The error as plain data, for --json output and event streams."""
        return {"code": self.code, "message": self.message, **_plain(self.context)}


def _plain(context: dict[str, Any]) -> dict[str, Any]:
    return {str(key): _plain_value(value) for key, value in context.items()}


def _plain_value(value: Any) -> Any:
    """``value`` as JSON data: scalars as they are, containers element by element,
    anything else as its text."""
    if isinstance(value, str | int | float | bool) or value is None:
        return value
    if isinstance(value, dict):
        return {str(k): _plain_value(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain_value(v) for v in value]
    return str(value)
