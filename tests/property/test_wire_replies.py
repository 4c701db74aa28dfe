"""Property: a call's reply made and read the short way (wire.encode_value_reply,
wire.decode_value_reply) is exactly the codec's RemoteReply: the same bytes, and from
any bytes the same value or the same error."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from actorhw.cluster import wire
from actorhw.core.errors import ActorHwError, DeviceBusyError, MalformedMessageError
from actorhw.core.messages.cluster import RemoteReply

pytestmark = pytest.mark.timeout(120)

SCALARS = (
    st.none()
    | st.booleans()
    | st.integers(-(2**63), 2**64 - 1)
    | st.floats(allow_nan=False)
    | st.text(max_size=12)
    | st.binary(max_size=12)
)
VALUES = st.recursive(
    SCALARS,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=4), inner),
    max_leaves=6,
)


def _long_way(data: bytes) -> Any:
    """What the codec's decode and raise_reply make of ``data``: a value or an error."""
    try:
        return ("value", wire.raise_reply(wire.decode(data, RemoteReply)))
    except ActorHwError as e:
        return ("error", type(e), str(e))


def _short_way(data: bytes) -> Any:
    try:
        return ("value", wire.decode_value_reply(data))
    except ActorHwError as e:
        return ("error", type(e), str(e))


@settings(max_examples=200, deadline=None)
@given(VALUES)
def test_a_value_reply_is_the_codecs_bytes_and_reads_back(value: Any) -> None:
    data = wire.encode_value_reply(value)
    assert data == wire.encode(RemoteReply(value=(value,)))
    assert _short_way(data) == _long_way(data) == ("value", value)


@settings(max_examples=200, deadline=None)
@given(
    value=SCALARS, position=st.integers(0, 200), cut=st.integers(0, 3), put=st.binary(max_size=3)
)
def test_any_damage_reads_as_the_long_way_reads_it(
    value: Any, position: int, cut: int, put: bytes
) -> None:
    data = wire.encode_value_reply(value)
    at = position % (len(data) + 1)
    damaged = data[:at] + put + data[at + cut :]
    assert _short_way(damaged) == _long_way(damaged)


def test_an_error_reply_raises_its_error_and_a_value_too_large_is_refused() -> None:
    error = wire.encode(wire.error_reply(DeviceBusyError("held", owners=["a"], host="h")))
    with pytest.raises(DeviceBusyError, match="held"):
        wire.decode_value_reply(error)
    with pytest.raises(MalformedMessageError):
        wire.encode_value_reply(object())
    with pytest.raises(ActorHwError):  # over the codec's max_size: refused as it refuses
        wire.encode_value_reply("x" * wire.MAX_SIZE)
