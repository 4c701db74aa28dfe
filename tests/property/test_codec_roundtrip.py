"""Property: every message type survives ``decode(encode(m)) == m``."""

from __future__ import annotations

import typing
from typing import Any

import attrs
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from actorhw.core import messages
from actorhw.core.codec import MESSAGE_TYPES, Codec
from actorhw.core.ids import DeviceId, make_id_enum

pytestmark = pytest.mark.timeout(60)

B1 = make_id_enum("RoundTripB1", "b1", ["UART0", "LED_GREEN"])
B2 = make_id_enum("RoundTripB2", "b2", ["UART0"])
BOARDS: dict[str, type[DeviceId]] = {B1.board: B1, B2.board: B2}


def resolve(board: str, name: str) -> DeviceId:
    """Resolve a wire id over the two test boards."""
    return BOARDS[board][name]


CODEC = Codec(resolve_device=resolve)

INT64 = st.integers(min_value=-(2**63), max_value=2**64 - 1)
"""Every int msgpack carries."""
FLOATS = st.floats(allow_nan=False)
"""NaN never compares equal, so it cannot show a round trip."""
SCALARS = st.none() | st.booleans() | INT64 | FLOATS | st.text(max_size=16) | st.binary(max_size=16)
ARG_VALUES = st.recursive(
    SCALARS,
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3)
    ),
    max_leaves=8,
)
"""msgpack values: nested sequences are lists, since that is how they come back."""

FIELD_STRATEGIES: dict[Any, st.SearchStrategy[Any]] = {
    int: INT64,
    float: FLOATS,
    tuple[Any, ...]: st.lists(ARG_VALUES, max_size=4).map(tuple),
    dict[str, Any]: st.dictionaries(st.text(max_size=8), ARG_VALUES, max_size=3),
    int | None: st.none() | INT64,
    float | None: st.none() | FLOATS,
    tuple[int, ...]: st.lists(INT64, max_size=4).map(tuple),
    tuple[float, ...]: st.lists(FLOATS, max_size=4).map(tuple),
}
"""Field types whose default hypothesis strategy holds values msgpack cannot carry."""


def message_strategy(cls: type) -> st.SearchStrategy[Any]:
    """``builds(cls)`` with every field drawn, defaults included."""
    hints = typing.get_type_hints(cls)
    return st.builds(
        cls,
        **{
            f.name: FIELD_STRATEGIES.get(hints[f.name], st.from_type(hints[f.name]))
            for f in attrs.fields(cls)
        },
    )


st.register_type_strategy(DeviceId, st.sampled_from([*B1, *B2]))
for _cls in MESSAGE_TYPES.values():
    # A callable, resolved at draw time, so that nested messages (Release.lease,
    # Register.entries) resolve through from_type to these strategies too.
    st.register_type_strategy(_cls, message_strategy)
STRATEGIES: dict[type, st.SearchStrategy[Any]] = {
    cls: st.from_type(cls) for cls in MESSAGE_TYPES.values()
}


def test_message_types_are_every_attrs_class_of_messages() -> None:
    expected = {
        name
        for name, obj in vars(messages).items()
        if isinstance(obj, type)
        and attrs.has(obj)
        and obj.__module__.startswith(f"{messages.__name__}.")
    }
    assert set(MESSAGE_TYPES) == expected
    assert {"Use", "Lease", "DeviceInfo", "GetInfo", "Register"} <= expected
    assert all(cls.__name__ == tag for tag, cls in MESSAGE_TYPES.items())


def test_every_message_type_has_a_strategy() -> None:
    missing = [tag for tag, cls in MESSAGE_TYPES.items() if cls not in STRATEGIES]
    assert not missing, f"no strategy for {missing}"
    for cls in MESSAGE_TYPES.values():
        for hint in typing.get_type_hints(cls).values():
            # Raises ResolutionFailed if a field type has no strategy.
            FIELD_STRATEGIES.get(hint, st.from_type(hint)).validate()


@pytest.mark.parametrize("tag", sorted(MESSAGE_TYPES))
@settings(max_examples=50, deadline=None)
@given(data=st.data())
def test_roundtrip(tag: str, data: st.DataObject) -> None:
    cls = MESSAGE_TYPES[tag]
    message = data.draw(STRATEGIES[cls], label=tag)
    decoded = CODEC.decode(CODEC.encode(message))
    assert type(decoded) is cls
    assert decoded == message
