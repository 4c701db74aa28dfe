"""The codec's short way for flat messages: no cattrs between the msgpack and the class.

A message class is *flat* when each of its fields is a plain type (``str``, ``int``,
``bool``, ``bytes``, ``float``, each maybe ``| None``), ``tuple[Any, ...]``,
``dict[str, Any]``, or a tuple of messages.  For such a class, `unstructure` builds the
payload map itself when every value is plain (a tuple of messages only when empty), and
`structure` builds the message from a payload map whose every value is exactly what
the codec's cattrs hooks accept as is (an int for a float is turned into a float, as
they do).  Anything else answers None, and the codec takes cattrs' way, which decides
and says why: this way never accepts what that one refuses, nor builds anything else.

Why: a cluster request and its reply are each encoded once and decoded once per call,
and cattrs' generated functions and hooks, run once in a thread just woken up, cost
tens of microseconds more than these few lines (see docs/cluster.md, "The hot path").
"""

from __future__ import annotations

import functools
import types
import typing
from collections.abc import Callable
from typing import Any, Final, Union, get_args, get_origin

import attrs

#: Scalar types a plain value may have (exactly: no subclasses such as enums).
PLAIN: Final = frozenset({str, int, float, bool, bytes, type(None)})

_STR: Final = frozenset({str})
_MISSING: Final = object()

# Field kinds.
_SCALAR, _FLOAT, _ANY_TUPLE, _ANY_DICT, _MESSAGES = range(5)

#: One field: its name, its kind, the exact types a payload value may have (a scalar's),
#: and whether the field may be left out of a payload (it has a default).
Field = tuple[str, int, frozenset[type], bool]


def plan(cls: type) -> tuple[Field, ...] | None:
    """``cls``'s fields as `structure` and `unstructure` need them; None if it is not
    flat."""
    try:
        hints = typing.get_type_hints(cls)
    except Exception:
        return None
    fields = []
    for field in attrs.fields(cls):
        kind = _kind(hints.get(field.name))
        if kind is None or not field.init or field.alias != field.name:
            return None
        fields.append((field.name, *kind, field.default is not attrs.NOTHING))
    return tuple(fields)


def _kind(hint: Any) -> tuple[int, frozenset[type]] | None:
    origin, args = get_origin(hint), get_args(hint)
    optional = origin in (Union, types.UnionType) and len(args) == 2 and type(None) in args
    if optional:
        hint = next(a for a in args if a is not type(None))
    nothing = frozenset({type(None)} if optional else ())
    if hint in (str, int, bool, bytes):
        return _SCALAR, frozenset({hint}) | nothing
    if hint is float:
        return _FLOAT, frozenset({float, int}) | nothing
    if optional:
        return None
    if hint == tuple[Any, ...]:
        return _ANY_TUPLE, frozenset()
    if hint == dict[str, Any]:
        return _ANY_DICT, frozenset()
    args = get_args(hint)
    homogeneous = get_origin(hint) is tuple and len(args) == 2 and args[1] is Ellipsis
    if homogeneous and isinstance(args[0], type) and attrs.has(args[0]):
        return _MESSAGES, frozenset()
    return None


def unstructure(fields: tuple[Field, ...], message: Any) -> dict[str, Any] | None:
    """The payload map of ``message`` (every field, in order), as cattrs would make it;
    None if a value is not plain (cattrs unstructures it)."""
    out: dict[str, Any] = {}
    for name, kind, _types, _optional in fields:
        value = getattr(message, name)
        if kind == _ANY_TUPLE:
            if type(value) is not tuple or not PLAIN.issuperset(map(type, value)):
                return None
        elif kind == _ANY_DICT:
            if (
                type(value) is not dict
                or not PLAIN.issuperset(map(type, value.values()))
                or not _STR.issuperset(map(type, value))
            ):
                return None
        elif kind == _MESSAGES:
            if value != ():
                return None
        elif type(value) not in PLAIN:
            return None
        out[name] = value
    return out


def laid_out(head: bytes | bytearray | memoryview, tag: str, version: int, entries: int) -> bool:
    """Whether ``head`` (a message's bytes) starts as the codec writes an envelope: a
    map of exactly "t" (``tag``), "v" (``version``) and "m", in that order, "m" a map
    of ``entries`` entries.  Then neither map holds a duplicate key (each header says
    as many entries as its decoded map has)."""
    prefix = _prefix(tag, version, entries)
    return prefix is not None and head[: len(prefix)] == prefix


@functools.lru_cache(maxsize=1024)
def _prefix(tag: str, version: int, entries: int) -> bytes | None:
    name = tag.encode()
    if len(name) > 31 or not 0 <= version < 128 or entries > 15:
        return None  # not written with these one-byte headers: the long way decides
    return b"\x83\xa1t%c%s\xa1v%c\xa1m%c" % (0xA0 | len(name), name, version, 0x80 | entries)


def structure(fields: tuple[Field, ...], cls: Callable[..., Any], payload: Any) -> Any:
    """The ``cls`` message of ``payload`` (a decoded map whose keys and layout were
    checked: `laid_out`); None if anything in it is not exactly as expected (cattrs
    decides).  A ``tuple[Any, ...]`` may hold plain values only and a
    ``dict[str, Any]`` must be empty: nothing nested is taken the short way."""
    kwargs: dict[str, Any] = {}
    for name, kind, kinds, optional in fields:
        value = payload.get(name, _MISSING)
        if value is _MISSING:
            if not optional:
                return None
            continue
        if kind == _SCALAR:
            if type(value) not in kinds:
                return None
        elif kind == _FLOAT:
            if type(value) not in kinds:
                return None
            if type(value) is int:
                value = float(value)
        elif kind == _ANY_TUPLE:
            if type(value) is not list or not PLAIN.issuperset(map(type, value)):
                return None
            value = tuple(value)
        elif kind == _ANY_DICT:
            if type(value) is not dict or value:
                return None
        elif value != [] or type(value) is not list:  # _MESSAGES: only none here
            return None
        else:
            value = ()
        kwargs[name] = value
    if len(kwargs) != len(payload):
        return None  # extra keys
    try:
        return cls(**kwargs)
    except Exception:
        return None
