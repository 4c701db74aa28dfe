"""A msgpack codec for every message in :mod:`actorhw.messages`.

Wire form: one msgpack map ``{"t": tag, "v": SCHEMA_VERSION, "m": payload}``, where the
tag is the message's class name and the payload is the message unstructured by
``cattrs``.  Enums travel as their value; a :class:`~actorhw.ids.DeviceId` travels as
``[board, name]`` and is decoded through the codec's ``resolve_device``.

The decoder is strict and total: it returns a message or raises a
:class:`~actorhw.errors.CodecError`, never another exception type.  Notes on the types:

* Tuple fields come back as tuples; inside ``tuple[Any, ...]`` fields (``Use.args``)
  values are plain msgpack values, so nested sequences come back as *lists* and maps
  must have str keys.
* A field with a default may be left out of the payload; it then takes its default.
* ``encode`` trusts field types (attrs does not check them); ``decode`` checks them all.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from types import MappingProxyType
from typing import Any, Final, TypeVar, get_args, get_origin

import attrs
import cattrs
import msgpack
from cattrs.cols import homogenous_tuple_structure_factory
from cattrs.v import format_exception, transform_error

from actorhw.core import codec_flat as flat
from actorhw.core import messages
from actorhw.core.errors import (
    CodecError,
    MalformedMessageError,
    MessageTooLargeError,
    SchemaVersionError,
    TruncatedMessageError,
    UnknownMessageTypeError,
)
from actorhw.core.ids import DeviceId

M = TypeVar("M")

__all__ = ["MESSAGE_TYPES", "SCHEMA_VERSION", "Codec", "DeviceResolver"]

SCHEMA_VERSION: Final = 1
"""The schema version this codec writes and the only one it reads."""

MESSAGE_TYPES: Mapping[str, type] = MappingProxyType(
    {
        name: obj
        for name, obj in sorted(vars(messages).items())
        if isinstance(obj, type)
        and attrs.has(obj)
        and obj.__module__.startswith(f"{messages.__name__}.")
    }
)
"""Every message class, by its wire tag (the class name)."""

_FLAT: Mapping[type, flat.Flat] = MappingProxyType(
    {
        cls: short
        for cls in MESSAGE_TYPES.values()
        if (short := flat.plan(cls, SCHEMA_VERSION)) is not None
    }
)
"""The flat message classes (codec_flat), encoded and decoded the short way."""

DeviceResolver = Callable[[str, str], DeviceId]
"""Turns a wire ``(board, name)`` pair into the live id member."""

_ENVELOPE_KEYS: Final = frozenset({"t", "v", "m"})


class _WireValueError(ValueError):
    """A payload value the wire form refuses; its message is reported as is."""


def _describe(exc: BaseException, type_: Any) -> str:
    """Format one cattrs leaf error, keeping our own messages verbatim."""
    return str(exc) if isinstance(exc, _WireValueError) else format_exception(exc, type_)


def _errors(exc: BaseException) -> list[str]:
    """The cattrs error tree as ``"<problem> @ <path>"`` lines."""
    try:
        return transform_error(exc, format_exception=_describe)
    except Exception:  # a formatter bug must not leak a non-codec error
        return [repr(exc)]


def _exact(kind: type[Any]) -> Callable[[Any, Any], Any]:
    """A structure hook accepting only values of exactly ``kind`` (no coercion)."""

    def structure(value: Any, _: Any) -> Any:
        if type(value) is not kind:
            raise _WireValueError(f"expected {kind.__name__}, got {type(value).__name__}")
        return value

    return structure


def _structure_float(value: Any, _: Any) -> float:
    if type(value) not in (float, int):
        raise _WireValueError(f"expected float, got {type(value).__name__}")
    return float(value)


def _unstructure_device(device: Any) -> list[str]:
    if not isinstance(device, DeviceId):
        raise _WireValueError(f"expected a DeviceId, got {type(device).__name__}")
    return [type(device).board, device.name]


def _is_device_id(type_: Any) -> bool:
    return isinstance(type_, type) and issubclass(type_, DeviceId)


def _is_tuple(type_: Any) -> bool:
    return get_origin(type_) is tuple


#: The only key type a map may have (strict_map_key leaves str and bytes).
_KEY_TYPES = frozenset({str})


def _check_keys(pairs: list[tuple[Any, Any]]) -> dict[str, Any]:
    """msgpack ``object_pairs_hook``: str keys only, no duplicates, no timestamps."""
    out = dict(pairs)
    if len(out) != len(pairs) or not _KEY_TYPES.issuperset(map(type, out)):
        raise MalformedMessageError("a map has duplicate or non-str keys")
    _check_items(out.values())
    return out


def _check_items(items: Any) -> Any:
    """msgpack ``list_hook`` (and map values): refuse ext-built Timestamp objects (the
    unpacker builds exactly that class: a type test in C, no Python call per item)."""
    if msgpack.Timestamp in map(type, items):
        raise MalformedMessageError("msgpack ext types are refused (timestamp)")
    return items


def _refuse_ext(code: int, data: bytes) -> Any:
    """msgpack ``ext_hook``: never build objects from ext types."""
    raise MalformedMessageError(f"msgpack ext types are refused (ext {code})", ext_code=code)


class Codec:
    """Encodes messages to msgpack bytes and decodes them back, refusing bad input.

    Args:
        resolve_device: maps a wire ``(board, name)`` to its :class:`DeviceId` member;
            without it, any message holding a device id fails to decode.
        max_size: the largest encoding, in bytes, that ``encode`` writes and ``decode``
            reads.
    """

    def __init__(
        self, *, resolve_device: DeviceResolver | None = None, max_size: int = 1 << 20
    ) -> None:
        if max_size < 1:
            raise ValueError(f"max_size must be positive, got {max_size}")
        self._resolve = resolve_device
        self._max_size = max_size
        self._converter = self._make_converter()

    def _make_converter(self) -> cattrs.Converter:
        conv = cattrs.Converter(forbid_extra_keys=True, detailed_validation=True)
        for kind in (str, int, bool, bytes):
            conv.register_structure_hook(kind, _exact(kind))
        conv.register_structure_hook(float, _structure_float)
        conv.register_unstructure_hook_func(_is_device_id, _unstructure_device)
        conv.register_structure_hook_func(_is_device_id, self._structure_device)

        def attrs_hook(cls: Any) -> Callable[[Any, Any], Any]:
            base = conv.gen_structure_attrs_fromdict(cls)

            def structure(value: Any, _: Any) -> Any:
                if type(value) is not dict:
                    raise _WireValueError(f"{cls.__name__} travels as a map")
                return base(value, cls)

            return structure

        def tuple_hook(type_: Any) -> Callable[[Any, Any], Any]:
            args = get_args(type_)
            homogeneous = len(args) == 2 and args[1] is Ellipsis
            base = (
                homogenous_tuple_structure_factory(type_, conv)
                if homogeneous
                else conv.gen_structure_hetero_tuple(type_)
            )

            def structure(value: Any, _: Any) -> Any:
                if type(value) is not list or (not homogeneous and len(value) != len(args)):
                    raise _WireValueError(f"expected an array for {type_}")
                return base(value, type_)

            return structure

        conv.register_structure_hook_factory(attrs.has, attrs_hook)
        conv.register_structure_hook_factory(_is_tuple, tuple_hook)
        return conv

    def _structure_device(self, value: Any, _: Any) -> DeviceId:
        if type(value) is not list or len(value) != 2 or any(type(p) is not str for p in value):
            raise _WireValueError("a device id travels as [board, name]")
        board, name = value
        if self._resolve is None:
            raise _WireValueError(f"device {board}.{name}: this codec has no device resolver")
        try:
            device = self._resolve(board, name)
        except Exception as exc:
            raise _WireValueError(f"unknown device {board}.{name}: {exc}") from exc
        if not isinstance(device, DeviceId):
            raise _WireValueError(f"device {board}.{name} resolved to a non-DeviceId")
        return device

    def encode(self, message: object) -> bytes:
        """Encode one message.

        Args:
            message: an instance of a class in :data:`MESSAGE_TYPES`.

        Returns:
            The msgpack envelope.

        Raises:
            MalformedMessageError: ``message`` is not a message, or holds values msgpack
                cannot carry.
            MessageTooLargeError: the encoding is larger than ``max_size``.
        """
        tag = type(message).__name__
        if MESSAGE_TYPES.get(tag) is not type(message):
            raise MalformedMessageError(f"not a message: {type(message).__qualname__}", tag=tag)
        try:
            short = _FLAT.get(type(message))
            payload = short.unstructure(message) if short is not None else None
            if payload is None:
                payload = self._converter.unstructure(message)
            data: bytes = msgpack.packb(
                {"t": tag, "v": SCHEMA_VERSION, "m": payload}, use_bin_type=True
            )
        except Exception as exc:
            raise MalformedMessageError(f"cannot encode {tag}: {exc}", tag=tag) from exc
        if len(data) > self._max_size:
            raise MessageTooLargeError(
                f"{tag} encodes to {len(data)} bytes, over {self._max_size}",
                size=len(data),
                max_size=self._max_size,
            )
        return data

    def decode(self, data: bytes) -> object:
        """Decode one message, refusing anything that is not exactly a valid encoding.

        Args:
            data: one msgpack envelope, with nothing after it.

        Returns:
            The message, an instance of a class in :data:`MESSAGE_TYPES`.

        Raises:
            MessageTooLargeError: ``data`` is longer than ``max_size`` (checked first).
            TruncatedMessageError: ``data`` ends before the envelope does.
            SchemaVersionError: the envelope's version is not :data:`SCHEMA_VERSION`.
            UnknownMessageTypeError: the tag names no message class.
            MalformedMessageError: anything else wrong (shape, fields, field types, ext
                types, trailing bytes, unresolvable device ids).
        """
        if type(data) is bytes:
            size = len(data)
        elif isinstance(data, bytes | bytearray | memoryview):
            size = memoryview(data).nbytes
        else:
            raise MalformedMessageError(f"expected bytes, got {type(data).__name__}")
        if size > self._max_size:
            raise MessageTooLargeError(
                f"message of {size} bytes, over {self._max_size}",
                size=size,
                max_size=self._max_size,
            )
        message = self._short(data)
        if message is not None:
            return message
        cls, payload = self._open(self._unpack(data, size))
        return self.structure(payload, cls)

    @staticmethod
    def _short(data: bytes | bytearray | memoryview) -> object | None:
        """decode's short way (codec_flat): a flat message laid out exactly as `encode`
        writes it; None for anything else (the long way decides, and says why)."""
        try:
            envelope = msgpack.unpackb(data, ext_hook=_refuse_ext)  # str keys, no raw
        except Exception:
            return None
        if type(envelope) is not dict or len(envelope) != 3:
            return None
        tag, payload = envelope.get("t"), envelope.get("m")
        cls = MESSAGE_TYPES.get(tag) if type(tag) is str else None
        short = _FLAT.get(cls) if cls is not None else None
        if short is None or short.prefix is None or type(payload) is not dict:
            return None
        if data[: len(short.prefix)] != short.prefix:
            return None  # another layout: a duplicate key, another version, fields left out
        message: object | None = short.structure(payload)
        return message

    def structure(self, payload: Any, cls: type[M]) -> M:
        """The ``cls`` message of ``payload``: decode's last step, for a message nested in
        one this codec decoded (a map inside a reply's value; its maps and lists were
        checked as they were unpacked), without packing it again.

        Raises:
            UnknownMessageTypeError: ``cls`` is not a message class.
            MalformedMessageError: ``payload`` is not a valid ``cls``.
        """
        if MESSAGE_TYPES.get(cls.__name__) is not cls:
            tag = cls.__name__
            raise UnknownMessageTypeError(f"not a message type: {cls.__qualname__}", tag=tag)
        try:
            message: M = self._converter.structure(payload, cls)
        except Exception as exc:
            errors = _errors(exc)
            raise MalformedMessageError(
                f"malformed {cls.__name__}: {'; '.join(errors)}", tag=cls.__name__, errors=errors
            ) from exc
        return message

    def _unpack(self, data: bytes | bytearray | memoryview, size: int) -> Any:
        """Unpack exactly one msgpack object, with size limits and no ext types."""
        limit = self._max_size
        unpacker = msgpack.Unpacker(
            raw=False,
            use_list=True,
            strict_map_key=True,
            ext_hook=_refuse_ext,
            object_pairs_hook=_check_keys,
            list_hook=_check_items,
            max_buffer_size=limit,
            max_str_len=limit,
            max_bin_len=limit,
            max_array_len=limit,
            max_map_len=limit // 2,
            max_ext_len=limit,
        )
        try:
            unpacker.feed(data)
            obj = unpacker.unpack()
        except msgpack.OutOfData as exc:
            raise TruncatedMessageError(f"message ends early ({size} bytes)", size=size) from exc
        except CodecError:
            raise
        except Exception as exc:
            raise MalformedMessageError(f"not valid msgpack: {exc!r}") from exc
        if unpacker.tell() != size:
            raise MalformedMessageError(
                f"{size - unpacker.tell()} trailing bytes after the message", size=size
            )
        return obj

    @staticmethod
    def _open(envelope: Any) -> tuple[type, Any]:
        """Check the envelope; return the message class and the payload."""
        if type(envelope) is not dict or envelope.keys() != _ENVELOPE_KEYS:
            raise MalformedMessageError('a message is a map with exactly "t", "v" and "m"')
        version, tag = envelope["v"], envelope["t"]
        if type(version) is not int or type(tag) is not str:
            raise MalformedMessageError('"v" must be an int and "t" a str')
        if version != SCHEMA_VERSION:
            raise SchemaVersionError(
                f"schema version {version}, this codec reads {SCHEMA_VERSION}",
                version=version,
                expected=SCHEMA_VERSION,
            )
        cls = MESSAGE_TYPES.get(tag)
        if cls is None:
            raise UnknownMessageTypeError(f"unknown message type {tag!r}", tag=tag)
        return cls, envelope["m"]
