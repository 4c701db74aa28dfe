"""The codec refuses bad input with a typed CodecError, and never anything else."""

from __future__ import annotations

from typing import Any

import msgpack
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from actorhw.core.codec import MESSAGE_TYPES, SCHEMA_VERSION, Codec
from actorhw.core.errors import (
    CodecError,
    MalformedMessageError,
    MessageTooLargeError,
    SchemaVersionError,
    TruncatedMessageError,
    UnknownMessageTypeError,
)
from actorhw.core.ids import DeviceId, DeviceKind, make_id_enum
from actorhw.core.lifecycle import DeviceState, SharingPolicy
from actorhw.core.messages import (
    DeviceInfo,
    GetInfo,
    Lease,
    Register,
    RegistryEntry,
    StateChanged,
    Use,
)

pytestmark = pytest.mark.timeout(60)

B1 = make_id_enum("RefusalB1", "b1", ["UART0", "LED_GREEN"])
B2 = make_id_enum("RefusalB2", "b2", ["UART0"])
BOARDS: dict[str, type[DeviceId]] = {B1.board: B1, B2.board: B2}


def resolve(board: str, name: str) -> DeviceId:
    """Resolve a wire id over the two test boards."""
    return BOARDS[board][name]


CODEC = Codec(resolve_device=resolve)
LEASE = Lease(device=B1.UART0, owner="job", token=7, generation=1)
SAMPLES: list[object] = [
    GetInfo(),
    LEASE,
    Use(lease=LEASE, op="uart.write", args=(b"hi", 3, [1, "x"], {"k": None})),
    DeviceInfo(
        device=B2.UART0,
        kind=DeviceKind.UART,
        state=DeviceState.ACTIVE,
        policy=SharingPolicy.SHARED,
        owners=("a", "b"),
        owners_count=2,
        open_count=1,
        generation=3,
        last_error="boom",
    ),
    Register(
        entries=(
            RegistryEntry(
                device=B1.LED_GREEN,
                kind=DeviceKind.LED,
                policy=SharingPolicy.SINGLE,
                actor_urn="urn:x",
            ),
        )
    ),
    StateChanged(
        device=B1.UART0,
        from_state=DeviceState.ACTIVE,
        to_state=DeviceState.ERROR,
        reason="fault",
        attempt=0,
        at=12.5,
    ),
]
ENCODED = [CODEC.encode(m) for m in SAMPLES]
LEASE_PAYLOAD: dict[str, Any] = {
    "device": ["b1", "UART0"],
    "owner": "job",
    "token": 7,
    "generation": 1,
}


def envelope(tag: str, payload: Any, version: Any = SCHEMA_VERSION) -> bytes:
    """A hand-made wire envelope."""
    data: bytes = msgpack.packb({"t": tag, "v": version, "m": payload}, use_bin_type=True)
    return data


def test_samples_decode() -> None:
    assert [CODEC.decode(data) for data in ENCODED] == SAMPLES


def test_unknown_tag() -> None:
    with pytest.raises(UnknownMessageTypeError) as info:
        CODEC.decode(envelope("NoSuchMessage", {}))
    assert info.value.context["tag"] == "NoSuchMessage"


@pytest.mark.parametrize("version", [0, 2, -1, 2**40])
def test_wrong_schema_version(version: int) -> None:
    with pytest.raises(SchemaVersionError):
        CODEC.decode(envelope("GetInfo", {}, version))


@pytest.mark.parametrize("version", ["1", 1.0, None, True, [1]])
def test_version_of_wrong_type_is_malformed(version: Any) -> None:
    with pytest.raises(MalformedMessageError):
        CODEC.decode(envelope("GetInfo", {}, version))


def test_oversized_input_is_refused_before_unpacking() -> None:
    small = Codec(resolve_device=resolve, max_size=32)
    with pytest.raises(MessageTooLargeError):
        small.decode(b"\xc1" * 33)  # garbage: the size check comes first
    with pytest.raises(MessageTooLargeError):
        small.decode(envelope("Acquire", {"owner": "x" * 64}))


def test_encode_refuses_what_decode_would_refuse_for_size() -> None:
    small = Codec(resolve_device=resolve, max_size=32)
    with pytest.raises(MessageTooLargeError):
        small.encode(Use(lease=LEASE, op="x", args=("y" * 64,)))


def test_container_headers_claiming_more_than_max_size() -> None:
    small = Codec(max_size=64)
    for header in (b"\xdd\xff\xff\xff\xff", b"\xdf\xff\xff\xff\xff", b"\xdb\xff\xff\xff\xff"):
        with pytest.raises((MalformedMessageError, TruncatedMessageError)):
            small.decode(header)


@pytest.mark.parametrize("index", range(len(ENCODED)))
def test_every_prefix_is_truncated_or_malformed(index: int) -> None:
    data = ENCODED[index]
    for end in range(len(data)):
        with pytest.raises((TruncatedMessageError, MalformedMessageError)):
            CODEC.decode(data[:end])
    with pytest.raises(TruncatedMessageError):
        CODEC.decode(b"")
    with pytest.raises(TruncatedMessageError):
        CODEC.decode(data[:-1])


@pytest.mark.parametrize("garbage", [b"\x00", b"\xc0", b"\x81\xa1t\x01", ENCODED[0]])
def test_trailing_bytes(garbage: bytes) -> None:
    with pytest.raises(MalformedMessageError, match="trailing"):
        CODEC.decode(ENCODED[1] + garbage)


@pytest.mark.parametrize(
    "data",
    [
        msgpack.packb(msgpack.ExtType(1, b"x")),
        envelope("GetInfo", msgpack.ExtType(5, b"payload")),
        envelope("Use", {"lease": LEASE_PAYLOAD, "op": "x", "args": [msgpack.ExtType(0, b"")]}),
        envelope("Use", {"lease": LEASE_PAYLOAD, "op": "x", "args": [msgpack.Timestamp(1, 0)]}),
        envelope("Use", {"lease": LEASE_PAYLOAD, "op": "x", "args": [{"t": msgpack.Timestamp(1)}]}),
    ],
    ids=["top-level", "payload", "in-args", "timestamp", "timestamp-in-map"],
)
def test_ext_types_are_never_decoded(data: bytes) -> None:
    with pytest.raises(MalformedMessageError, match="ext"):
        CODEC.decode(data)


@pytest.mark.parametrize(
    "data",
    [
        msgpack.packb([1, 2, 3]),
        msgpack.packb("GetInfo"),
        msgpack.packb({"t": "GetInfo", "v": 1}),
        msgpack.packb({"t": "GetInfo", "v": 1, "m": {}, "x": 0}),
        msgpack.packb({"t": 1, "v": 1, "m": {}}),
        msgpack.packb({"t": "GetInfo", "v": 1, "m": {}, 1: 0}),
        msgpack.packb({"t": "GetInfo", "v": 1, "m": {b"x": 1}}),
        # a map with a duplicate key ("m" twice)
        b"\x84"
        + msgpack.packb("t")
        + msgpack.packb("GetInfo")
        + msgpack.packb("v")
        + b"\x01"
        + msgpack.packb("m")
        + b"\x80"
        + msgpack.packb("m")
        + b"\x80",
        b"\xc1",  # a byte msgpack never uses
        b"\x81\xa1t\xa2\xff\xfe",  # invalid utf-8 in a str
        b"\x91" * 5000,  # nesting deeper than the unpacker's stack
    ],
)
def test_malformed_envelopes(data: bytes) -> None:
    with pytest.raises(MalformedMessageError):
        CODEC.decode(data)


@pytest.mark.parametrize(
    ("tag", "payload"),
    [
        ("Lease", {**LEASE_PAYLOAD, "token": "7"}),
        ("Lease", {**LEASE_PAYLOAD, "token": 7.0}),
        ("Lease", {**LEASE_PAYLOAD, "token": True}),
        ("Lease", {**LEASE_PAYLOAD, "owner": b"job"}),
        ("Lease", {**LEASE_PAYLOAD, "owner": 3}),
        ("Lease", {**LEASE_PAYLOAD, "device": "b1.UART0"}),
        ("Lease", {**LEASE_PAYLOAD, "device": ["b1"]}),
        ("Lease", {**LEASE_PAYLOAD, "device": ["b1", "UART0", "x"]}),
        ("Lease", {**LEASE_PAYLOAD, "device": ["b1", 0]}),
        ("Lease", [LEASE_PAYLOAD]),
        ("Lease", None),
        ("Use", {"lease": LEASE_PAYLOAD, "op": "x", "args": "abc"}),
        ("Use", {"lease": LEASE_PAYLOAD, "op": "x", "args": {"a": 1}}),
        ("Use", {"lease": [LEASE_PAYLOAD], "op": "x"}),
        ("Register", {"entries": [["b1", "UART0"]]}),
        ("Register", {"entries": "entries"}),
        (
            "StateChanged",
            {
                "device": ["b1", "UART0"],
                "from_state": "active",
                "to_state": "ERROR",
                "reason": "r",
                "attempt": 0,
                "at": 1.0,
            },
        ),
        (
            "StateChanged",
            {
                "device": ["b1", "UART0"],
                "from_state": "active",
                "to_state": "error",
                "reason": "r",
                "attempt": 0,
                "at": "1.0",
            },
        ),
        ("Transition", {"to": "active", "reason": "r", "attempt": None}),
        ("ListDevices", {"board": 1}),
        (
            "DeviceInfo",
            {
                "device": ["b1", "UART0"],
                "kind": "uart",
                "state": "active",
                "policy": "single",
                "owners": ["a", 1],
                "owners_count": 1,
                "open_count": 0,
                "generation": 0,
                "last_error": None,
            },
        ),
    ],
)
def test_wrong_field_types(tag: str, payload: Any) -> None:
    with pytest.raises(MalformedMessageError) as info:
        CODEC.decode(envelope(tag, payload))
    assert info.value.context["tag"] == tag


@pytest.mark.parametrize("field", sorted(LEASE_PAYLOAD))
def test_missing_fields(field: str) -> None:
    payload = {k: v for k, v in LEASE_PAYLOAD.items() if k != field}
    with pytest.raises(MalformedMessageError, match=f"required field missing @ \\$.{field}"):
        CODEC.decode(envelope("Lease", payload))


def test_extra_fields() -> None:
    with pytest.raises(MalformedMessageError, match="extra fields"):
        CODEC.decode(envelope("Lease", {**LEASE_PAYLOAD, "secret": 1}))
    with pytest.raises(MalformedMessageError, match="extra fields"):
        CODEC.decode(envelope("GetInfo", {"x": 1}))


def test_device_of_unknown_board() -> None:
    with pytest.raises(MalformedMessageError, match=r"b9\.UART0"):
        CODEC.decode(envelope("Lease", {**LEASE_PAYLOAD, "device": ["b9", "UART0"]}))
    with pytest.raises(MalformedMessageError, match=r"b2\.LED_GREEN"):
        CODEC.decode(envelope("Lease", {**LEASE_PAYLOAD, "device": ["b2", "LED_GREEN"]}))


def test_device_without_a_resolver() -> None:
    with pytest.raises(MalformedMessageError, match=r"b1\.UART0"):
        Codec().decode(ENCODED[1])
    assert Codec().decode(ENCODED[0]) == GetInfo()  # no device id, no resolver needed


def test_resolver_returning_a_non_device_id() -> None:
    codec = Codec(resolve_device=lambda board, name: f"{board}.{name}")  # type: ignore[arg-type,return-value]
    with pytest.raises(MalformedMessageError, match=r"b1\.UART0"):
        codec.decode(ENCODED[1])


def test_tuples_come_back_as_tuples_and_args_hold_lists() -> None:
    message = Use(lease=LEASE, op="x", args=((1, 2), [3]))
    decoded = CODEC.decode(CODEC.encode(message))
    assert isinstance(decoded, Use)
    assert decoded.args == ([1, 2], [3])
    info = CODEC.decode(ENCODED[3])
    assert isinstance(info, DeviceInfo)
    assert info.owners == ("a", "b")


@pytest.mark.parametrize(
    "value",
    [object(), {"a": 1}, "GetInfo", None, GetInfo, RegistryEntry],
)
def test_encode_refuses_non_messages(value: object) -> None:
    with pytest.raises(MalformedMessageError):
        CODEC.encode(value)


@pytest.mark.parametrize(
    "message",
    [
        Use(lease=LEASE, op="x", args=(object(),)),
        Use(lease=LEASE, op="x", args=({1, 2},)),
        Use(lease=LEASE, op="x", args=(2**64,)),
        Use(lease=LEASE, op="x", args=("\ud800",)),
        Lease(device="b1.UART0", owner="x", token=1, generation=0),
    ],
)
def test_encode_refuses_values_msgpack_cannot_carry(message: object) -> None:
    with pytest.raises(MalformedMessageError):
        CODEC.encode(message)


def _decode_or_codec_error(data: bytes) -> None:
    try:
        result = CODEC.decode(data)
    except CodecError:
        return
    assert type(result) in MESSAGE_TYPES.values()


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=256))
def test_random_bytes(data: bytes) -> None:
    _decode_or_codec_error(data)


@settings(max_examples=300, deadline=None)
@given(
    index=st.integers(0, len(ENCODED) - 1),
    position=st.integers(0, 10_000),
    replacement=st.binary(min_size=0, max_size=4),
    cut=st.integers(0, 4),
)
def test_mutated_encodings(index: int, position: int, replacement: bytes, cut: int) -> None:
    data = ENCODED[index]
    at = position % (len(data) + 1)
    _decode_or_codec_error(data[:at] + replacement + data[at + cut :])


MSGPACK_VALUES = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**63), 2**64 - 1)
    | st.floats()
    | st.text(max_size=8)
    | st.binary(max_size=8),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3)
    ),
    max_leaves=10,
)


@settings(max_examples=300, deadline=None)
@given(
    tag=st.sampled_from(sorted(MESSAGE_TYPES)),
    payload=MSGPACK_VALUES
    | st.dictionaries(
        st.sampled_from(["device", "lease", "owner", "token", "args", "entries", "to", "x"]),
        MSGPACK_VALUES | st.just(["b1", "UART0"]) | st.just(LEASE_PAYLOAD),
    ),
)
def test_random_payloads_for_real_tags(tag: str, payload: Any) -> None:
    _decode_or_codec_error(envelope(tag, payload))


def test_structure_of_a_nested_payload_checks_it_as_decode_does() -> None:
    # A message nested in a decoded one (a map in a reply's value) is structured from
    # that map, with decode's checks of its fields.
    use = Use(lease=LEASE, op="x", args=(1, "y"))
    data = CODEC.encode(use)
    outer = msgpack.unpackb(data)
    assert CODEC.structure(outer["m"], Use) == use
    with pytest.raises(MalformedMessageError, match="malformed Use"):
        CODEC.structure({**outer["m"], "op": 5}, Use)
    with pytest.raises(MalformedMessageError, match="malformed Use"):
        CODEC.structure({**outer["m"], "extra": 1}, Use)
    with pytest.raises(UnknownMessageTypeError):
        CODEC.structure(outer["m"], dict)
