"""The cluster's wire: messages through the project's codec, errors as replies, and
the key-value operations leases are made of (create, compare-and-set, delete).

A bucket revision is a lease's fencing token; every write here says which revision it
expects (``last``), so two writers can never both win.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any, TypeVar

import msgpack

from actorhw.core import errors
from actorhw.core.codec import Codec
from actorhw.core.codec_flat import PLAIN
from actorhw.core.errors import ActorHwError, HostUnreachableError, MalformedMessageError
from actorhw.core.lifecycle import SharingPolicy
from actorhw.core.messages.cluster import LeaseRecord, RemoteReply

if TYPE_CHECKING:
    from nats.js.kv import KeyValue

M = TypeVar("M")
T = TypeVar("T")

#: The largest message, in bytes (the codec's limit).
MAX_SIZE = 1 << 20
#: Cluster messages hold no device ids, so one codec serves every host and client.
CODEC = Codec(max_size=MAX_SIZE)

#: Largest number of compare-and-set retries of one read-modify-write.
CAS_RETRIES = 8


def encode(message: object) -> bytes:
    """One message's msgpack bytes."""
    return CODEC.encode(message)


def decode(data: bytes, kind: type[M]) -> M:
    """Decode ``data`` as a ``kind`` message (CodecError if it is not one)."""
    message = CODEC.decode(data)
    if not isinstance(message, kind):
        raise MalformedMessageError(
            f"expected {kind.__name__}, got {type(message).__name__}", tag=type(message).__name__
        )
    return message


def _value_reply_parts() -> tuple[bytes, bytes]:
    """The bytes of ``RemoteReply(value=(v,))`` before and after ``v``'s own."""
    mark = "\x00actorhw: the value\x00"
    data = CODEC.encode(RemoteReply(value=(mark,)))
    packed: bytes = msgpack.packb(mark, use_bin_type=True)
    assert data.count(packed) == 1
    head, _, tail = data.partition(packed)
    return head, tail


_REPLY_HEAD, _REPLY_TAIL = _value_reply_parts()


def encode_value_reply(value: Any) -> bytes:
    """``encode(RemoteReply(value=(value,)))``: the same bytes, made by packing
    ``value`` alone into the reply's fixed bytes when it is a plain value (a call's
    usual answer: a str, a number, None)."""
    if type(value) in PLAIN:
        packed: bytes = msgpack.packb(value, use_bin_type=True)
        data = _REPLY_HEAD + packed + _REPLY_TAIL
        if len(data) <= MAX_SIZE:
            return data
    return encode(RemoteReply(value=(value,)))


def decode_value_reply(data: bytes) -> Any:
    """``raise_reply(decode(data, RemoteReply))``, taking the value out of the reply's
    fixed bytes when they are exactly those of a plain value's reply (no error)."""
    head, tail = _REPLY_HEAD, _REPLY_TAIL
    if (
        type(data) is bytes
        and len(head) + len(tail) < len(data) <= MAX_SIZE
        and data.startswith(head)
        and data.endswith(tail)
    ):
        try:
            value = msgpack.unpackb(data[len(head) : len(data) - len(tail)], ext_hook=_no_ext)
        except Exception:
            value = _NOT_PLAIN
        if type(value) in PLAIN:
            return value
    return raise_reply(decode(data, RemoteReply))


_NOT_PLAIN: Any = object()


def _no_ext(code: int, data: bytes) -> Any:
    raise ValueError(code)


def structure(value: Any, kind: type[M]) -> M:
    """A reply's nested message (it travels as a map) back as a checked ``kind``."""
    return CODEC.structure(value, kind)


def error_reply(error: ActorHwError) -> RemoteReply:
    """The reply that carries ``error`` to the caller."""
    context = {k: _plain(v) for k, v in error.context.items()}
    return RemoteReply(error_type=type(error).__name__, error=error.message, context=context)


def _plain(value: Any) -> Any:
    if value is None or isinstance(value, str | int | float | bool | bytes):
        return value
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    return str(value)


def raise_reply(reply: RemoteReply) -> Any:
    """The reply's value, or its error raised as the same actorhw error type."""
    if not reply.error_type:
        return reply.value[0] if reply.value else None
    cls = getattr(errors, reply.error_type, None)
    if not (isinstance(cls, type) and issubclass(cls, ActorHwError)):
        cls = ActorHwError
    error = cls.__new__(cls)
    ActorHwError.__init__(error, reply.error, **reply.context)
    raise error


# --- key-value operations ----------------------------------------------------------------

#: Seconds one bucket operation keeps retrying while the servers are away (a server
#: restarting, a JetStream leader being elected): then HostUnreachableError.
PATIENCE = 15.0


async def patiently(make: Callable[[], Awaitable[T]], what: str) -> T:
    """``await make()``, retried while the cluster's servers are briefly away.

    A retried write may have been applied the first time: the callers' compare-and-set
    loops see their own write and go on from it.
    """
    from nats.errors import (
        ConnectionReconnectingError,
        NoRespondersError,
        StaleConnectionError,
    )
    from nats.js.errors import NoStreamResponseError, ServiceUnavailableError

    transient = (
        TimeoutError, NoRespondersError, StaleConnectionError, ConnectionReconnectingError,
        ServiceUnavailableError, NoStreamResponseError,
    )  # fmt: skip
    deadline = time.monotonic() + PATIENCE
    pause = 0.05
    while True:
        try:
            return await make()
        except transient as e:
            if time.monotonic() + pause > deadline:
                raise HostUnreachableError(
                    f"{what}: the cluster's servers did not answer for {PATIENCE:g} s ({e!r})",
                    host="",
                ) from e
            await asyncio.sleep(pause)  # a retry's backoff while a server comes back
            pause = min(pause * 2, 0.5)


class KeyTaken(Exception):
    """A create found the key held; ``value`` and ``revision`` are what holds it."""

    def __init__(self, value: bytes, revision: int) -> None:
        super().__init__(revision)
        self.value = value
        self.revision = revision


class Conflict(Exception):
    """A write's expected revision was not the key's last one."""


async def read(kv: KeyValue, key: str) -> tuple[bytes | None, int]:
    """The key's value (None if absent, deleted or expired) and its last revision (0 if
    the key never existed or its marker is gone)."""
    from nats.js.errors import KeyNotFoundError

    try:
        entry = await patiently(lambda: kv.get(key), f"read {key}")
    except KeyNotFoundError as e:
        marker = getattr(e, "entry", None)
        return None, int(getattr(marker, "revision", 0) or 0)
    # A server-placed expiry marker (nats-server >= 2.11) comes back as an empty value.
    return (entry.value or None), int(entry.revision or 0)


async def write(kv: KeyValue, key: str, value: bytes, *, last: int) -> int:
    """Put ``value`` if the key's last revision is ``last`` (0: the key has none);
    returns the new revision.

    Raises:
        Conflict: someone wrote the key since.
    """
    from nats.js.errors import KeyWrongLastSequenceError

    try:
        return int(await patiently(lambda: kv.update(key, value, last=last), f"write {key}"))
    except KeyWrongLastSequenceError as e:
        raise Conflict(key) from e


async def create(kv: KeyValue, key: str, value: bytes, *, last: int = 0) -> int:
    """Put ``value`` only if the key holds nothing now; returns the new revision.
    ``last`` is the revision of the key's delete or expiry marker, if known (saves a
    read).

    Raises:
        KeyTaken: it holds a value (what, and at which revision).
    """
    for _ in range(CAS_RETRIES):
        try:
            return await write(kv, key, value, last=last)
        except Conflict:
            current, last = await read(kv, key)
            if current is not None:
                raise KeyTaken(current, last) from None
    raise KeyTaken(b"", last)


async def delete(kv: KeyValue, key: str, *, last: int) -> None:
    """Delete the key if its last revision is ``last``.

    Raises:
        Conflict: someone wrote the key since.
    """
    from nats.js.errors import APIError

    try:
        await patiently(lambda: kv.delete(key, last=last), f"delete {key}")
    except APIError as e:
        if e.err_code in (10071, 10164):  # wrong last sequence
            raise Conflict(key) from e
        raise


def lease_key(host: str, board: str, device: str) -> str:
    """The leases bucket's key of one device."""
    return f"{host}.{board}.{device}"


def tokens(record: LeaseRecord, revision: int) -> set[int]:
    """The current fencing tokens of ``record`` (at ``revision``).

    A SINGLE record is written by a create whose revision is the holder's token, and
    until the holder's first renewal stores it, the record says 0: that holder's token is
    the revision of the record itself (only its creator writes a SINGLE record).
    """
    if record.policy is SharingPolicy.SINGLE:
        return {h.token or revision for h in record.holders}
    return {h.token for h in record.holders if h.token}


def record_of(value: bytes) -> LeaseRecord:
    """Decode a leases bucket value."""
    return decode(value, LeaseRecord)


class Records:
    """The leases bucket's records by key, as a watch delivers them: each value is kept
    as it came and decoded when first read (a watch delivers every write; most are never
    read before the next one replaces them)."""

    __slots__ = ("_held",)

    def __init__(self) -> None:
        self._held: dict[str, tuple[bytes | LeaseRecord, int]] = {}

    def put(self, key: str, value: bytes, revision: int) -> None:
        """``key`` holds ``value`` (undecoded) at ``revision``."""
        self._held[key] = (value, revision)

    def pop(self, key: str) -> None:
        """``key`` holds nothing (deleted, expired)."""
        self._held.pop(key, None)

    def revision(self, key: str) -> int | None:
        """The revision of ``key``'s record; None if it holds nothing."""
        held = self._held.get(key)
        return held[1] if held is not None else None

    def get(self, key: str) -> tuple[LeaseRecord, int] | None:
        """``key``'s record and its revision; None if it holds nothing.

        Raises:
            MalformedMessageError: the value is not a LeaseRecord.
        """
        held = self._held.get(key)
        if held is None:
            return None
        record, revision = held
        if not isinstance(record, LeaseRecord):
            record = record_of(record)
            if self._held.get(key) is held:
                self._held[key] = (record, revision)
        return record, revision
