"""Property: the codec's short way for flat messages (actorhw.core.codec_flat) agrees
with cattrs' way: the same bytes out, and from any payload either the same message or
"not mine" (cattrs then decides, and says why)."""

from __future__ import annotations

from typing import Any

import msgpack
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from actorhw.core import codec_flat as flat
from actorhw.core.codec import _FLAT, MESSAGE_TYPES, SCHEMA_VERSION
from actorhw.core.errors import CodecError
from actorhw.core.messages import DeviceInfo, Lease, Use
from actorhw.core.messages.cluster import RemoteCall, RemoteReply, RemoteTarget, Step
from tests.property.test_codec_roundtrip import CODEC, STRATEGIES

pytestmark = pytest.mark.timeout(120)

FLAT = sorted(cls.__name__ for cls in _FLAT)
VALUES = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**63), 2**64 - 1)
    | st.floats(allow_nan=False)
    | st.text(max_size=6)
    | st.binary(max_size=6),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=4), inner),
    max_leaves=6,
)


def test_the_cluster_hot_path_messages_are_flat_and_device_ids_are_not() -> None:
    assert {RemoteCall, RemoteReply, RemoteTarget, Step} <= set(_FLAT)
    assert not {Lease, Use, DeviceInfo} & set(_FLAT)  # device ids, enums: cattrs' way
    assert flat.plan(Lease, SCHEMA_VERSION) is None


@pytest.mark.parametrize("tag", FLAT)
@settings(max_examples=25, deadline=None)
@given(data=st.data())
def test_the_short_way_writes_the_same_bytes(tag: str, data: st.DataObject) -> None:
    cls = MESSAGE_TYPES[tag]
    message = data.draw(STRATEGIES[cls], label=tag)
    short = _FLAT[cls].unstructure(message)
    if short is not None:
        pack = CODEC._converter.unstructure(message)
        assert msgpack.packb(short, use_bin_type=True) == msgpack.packb(pack, use_bin_type=True)


def _decoded_by_cattrs(cls: type, payload: Any) -> Any:
    """What cattrs' way makes of ``payload``: a message, or the CodecError."""
    try:
        return CODEC.structure(payload, cls)
    except CodecError as e:
        return e


@pytest.mark.parametrize("tag", FLAT)
@settings(max_examples=40, deadline=None)
@given(data=st.data())
def test_the_short_way_accepts_only_what_cattrs_accepts_and_builds_the_same(
    tag: str, data: st.DataObject
) -> None:
    cls = MESSAGE_TYPES[tag]
    names = list(_FLAT[cls].names)
    # A real message's payload, then some of its fields replaced, left out or added.
    payload = msgpack.unpackb(CODEC.encode(data.draw(STRATEGIES[cls], label=tag)))["m"]
    changes = data.draw(
        st.dictionaries(
            st.sampled_from([*names, "extra"]) if names else st.just("extra"),
            VALUES | st.just([]) | st.just({}),
        ),
        label="changes",
    )
    dropped = data.draw(st.sets(st.sampled_from(names)) if names else st.just(set()))
    payload = {k: v for k, v in {**payload, **changes}.items() if k not in dropped}
    envelope = msgpack.packb({"t": tag, "v": SCHEMA_VERSION, "m": payload}, use_bin_type=True)
    checked = CODEC._unpack(envelope, len(envelope))["m"]  # what the long way structures
    short = CODEC._short(envelope)
    slow = _decoded_by_cattrs(cls, checked)
    if short is not None:
        assert type(short) is cls and short == slow
    try:
        decoded = CODEC.decode(envelope)
    except CodecError as e:
        assert isinstance(slow, CodecError) and str(e) == str(slow)
    else:
        assert decoded == slow


def _entry(key: str, value: Any) -> bytes:
    return msgpack.packb(key) + msgpack.packb(value)


def test_a_duplicate_key_or_another_layout_is_left_to_the_long_way() -> None:
    call = {"op": "use", "board": "b", "token": 3}
    head = _entry("t", "RemoteCall") + _entry("v", SCHEMA_VERSION)
    # "op" twice in the payload (its header says 4 entries, the map has 3).
    twice = (
        b"\x83"
        + head
        + msgpack.packb("m")
        + b"\x84"
        + b"".join(_entry(k, v) for k, v in [*call.items(), ("op", "open")])
    )
    assert CODEC._short(twice) is None
    with pytest.raises(CodecError, match="duplicate"):
        CODEC.decode(twice)
    # "t" twice in the envelope.
    envelope = b"\x84" + head + _entry("m", call) + _entry("t", "RemoteReply")
    assert CODEC._short(envelope) is None
    with pytest.raises(CodecError, match="duplicate"):
        CODEC.decode(envelope)
    # The same message, its envelope's keys in another order: decoded the long way.
    other = msgpack.packb({"m": call, "v": SCHEMA_VERSION, "t": "RemoteCall"})
    assert CODEC._short(other) is None
    assert CODEC.decode(other) == RemoteCall(op="use", board="b", token=3)


def test_a_use_request_and_its_reply_take_the_short_way_both_ways() -> None:
    call = RemoteCall(op="use", board="microbit", device="BOARD", owner="ci", token=42,
                      name="exec", args=("print(1)", 10.0), timeout=12.0)  # fmt: skip
    reply = RemoteReply(value=("1\r\n",))
    for message in (call, reply):
        assert _FLAT[type(message)].unstructure(message) is not None
        data = CODEC.encode(message)
        assert CODEC._short(data) == message
        assert CODEC.decode(data) == message
