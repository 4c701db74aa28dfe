"""The codec's short way for flat messages: no cattrs between the msgpack and the class.

A message class is *flat* when each of its fields is a plain type (``str``, ``int``,
``bool``, ``bytes``, ``float``, each maybe ``| None``), ``tuple[Any, ...]``,
``dict[str, Any]``, or a tuple of messages.  For such a class this module makes two
straight-line functions (as cattrs generates its own, but with no hook per field):

- ``unstructure(message)``: the payload map of every field, in order, as cattrs makes
  it, when every value is plain (a tuple of messages only when empty); else None;
- ``structure(payload)``: the message, from a payload holding every field (as the
  codec writes it) whose every value is exactly what the codec's cattrs hooks accept as
  is (an int for a float is turned into a float, as they do), a ``tuple[Any, ...]``
  holding plain values only and a ``dict[str, Any]`` empty; else None.

A None sends the codec the long way (cattrs), which decides and says why: the short way
never accepts what that one refuses, nor builds anything else.  ``prefix`` is how the
codec's envelope of such a message starts (see `Flat.prefix`).

Why: a cluster request and its reply are each encoded once and decoded once per call
in a thread just woken up, with cold caches: there every function, global and object
touched costs, and cattrs' generated functions and hooks cost tens of microseconds more
than these (see docs/cluster.md, "The hot path").
"""

from __future__ import annotations

import types
import typing
from collections.abc import Callable
from typing import Any, Final, Union, get_args, get_origin

import attrs

#: Scalar types a plain value may have (exactly: no subclasses such as enums).
PLAIN: Final = frozenset({str, int, float, bool, bytes, type(None)})

_MISSING: Final = object()


class Flat:
    """A flat message class's short way: ``names`` (its fields, in order),
    ``unstructure``, ``structure``, and ``prefix``: the first bytes of its envelope as
    the codec writes it (a map of "t", "v" and "m" in that order, "m" a map of every
    field), None if those are not one-byte headers.  A message starting so holds no
    duplicate key (each map's header says as many entries as its decoded map has)."""

    __slots__ = ("names", "prefix", "structure", "unstructure")

    def __init__(
        self,
        names: tuple[str, ...],
        unstructure: Callable[[Any], dict[str, Any] | None],
        structure: Callable[[dict[str, Any]], Any],
        prefix: bytes | None,
    ) -> None:
        self.names = names
        self.unstructure = unstructure
        self.structure = structure
        self.prefix = prefix


def plan(cls: type, version: int) -> Flat | None:
    """``cls``'s short way (envelopes of schema ``version``); None if it is not flat."""
    try:
        hints = typing.get_type_hints(cls)
    except Exception:
        return None
    kinds = []
    for field in attrs.fields(cls):
        kind = _kind(hints.get(field.name))
        if kind is None or not field.init or field.alias != field.name:
            return None
        kinds.append((field.name, kind))
    names = tuple(name for name, _kind_ in kinds)
    tag = cls.__name__.encode()
    prefix = None
    if len(tag) <= 31 and 0 <= version < 128 and len(names) <= 15:
        prefix = b"\x83\xa1t%c%s\xa1v%c\xa1m%c" % (0xA0 | len(tag), tag, version, 0x80 | len(names))
    return Flat(names, _unstructurer(cls, kinds), _structurer(cls, kinds), prefix)


def _kind(hint: Any) -> str | None:
    """What a field of type ``hint`` is to the short way: a scalar's exact types
    ("str", "int|None"...), "float", "float|None", "tuple", "dict" or "messages"."""
    origin, args = get_origin(hint), get_args(hint)
    optional = origin in (Union, types.UnionType) and len(args) == 2 and type(None) in args
    if optional:
        hint = next(a for a in args if a is not type(None))
    if hint in (str, int, bool, bytes, float):
        return f"{hint.__name__}{'|None' if optional else ''}"
    if optional:
        return None
    if hint == tuple[Any, ...]:
        return "tuple"
    if hint == dict[str, Any]:
        return "dict"
    args = get_args(hint)
    homogeneous = get_origin(hint) is tuple and len(args) == 2 and args[1] is Ellipsis
    if homogeneous and isinstance(args[0], type) and attrs.has(args[0]):
        return "messages"
    return None


_SCOPE: Final = {"PLAIN": PLAIN, "MISSING": _MISSING, "STR": frozenset({str})}


def _make(name: str, lines: list[str], scope: dict[str, Any]) -> Any:
    namespace = dict(_SCOPE, **scope)
    exec("\n".join(lines), namespace)  # the code is made above, from field names
    return namespace[name]


def _unstructurer(cls: type, kinds: list[tuple[str, str]]) -> Any:
    lines = ["def unstructure(m):"]
    for i, (name, kind) in enumerate(kinds):
        lines.append(f"    v{i} = m.{name}")
        if kind == "tuple":
            check = f"type(v{i}) is not tuple or not PLAIN.issuperset(map(type, v{i}))"
        elif kind == "dict":
            check = (
                f"type(v{i}) is not dict or not PLAIN.issuperset(map(type, v{i}.values()))"
                f" or not STR.issuperset(map(type, v{i}))"
            )
        elif kind == "messages":
            check = f"v{i} != ()"
        else:
            check = f"type(v{i}) not in PLAIN"
        lines.append(f"    if {check}: return None")
    items = ", ".join(f"{name!r}: v{i}" for i, (name, _kind_) in enumerate(kinds))
    lines.append(f"    return {{{items}}}")
    return _make("unstructure", lines, {"cls": cls})


def _structurer(cls: type, kinds: list[tuple[str, str]]) -> Any:
    lines = ["def structure(p):", f"    if len(p) != {len(kinds)}: return None"]
    for i, (name, kind) in enumerate(kinds):
        lines.append(f"    v{i} = p.get({name!r}, MISSING)")
        base, _bar, optional = kind.partition("|")
        none = f" and v{i} is not None" if optional else ""
        if base == "float":
            lines += [
                f"    if type(v{i}) is int: v{i} = float(v{i})",
                f"    elif type(v{i}) is not float{none}: return None",
            ]
        elif base in ("str", "int", "bool", "bytes"):
            lines.append(f"    if type(v{i}) is not {base}{none}: return None")
        elif kind == "tuple":
            lines += [
                f"    if type(v{i}) is not list or not PLAIN.issuperset(map(type, v{i})):",
                "        return None",
                f"    v{i} = tuple(v{i})",
            ]
        elif kind == "dict":
            lines.append(f"    if type(v{i}) is not dict or v{i}: return None")
        else:  # messages: only none here
            lines += [f"    if type(v{i}) is not list or v{i}: return None", f"    v{i} = ()"]
    arguments = ", ".join(f"{name}=v{i}" for i, (name, _kind_) in enumerate(kinds))
    lines += ["    try:", f"        return cls({arguments})", "    except Exception:"]
    lines.append("        return None")
    return _make("structure", lines, {"cls": cls})
