"""Id enums: the fast constructor builds the same enum as Enum's functional API."""

from __future__ import annotations

import copy
import pickle

import pytest

from actorhw.core.ids import DeviceId, make_id_enum

NAMES = ["BOARD", "UART0", "PIN3", "LED_GREEN"]


def functional(enum_name: str, board: str, names: list[str]) -> type[DeviceId]:
    cls: type[DeviceId] = DeviceId(enum_name, [(n, n) for n in names])  # type: ignore[call-arg, assignment]
    cls.board = board
    return cls


def test_fast_enum_behaves_as_the_functional_one() -> None:
    fast, slow = make_id_enum("Ids", "b1", NAMES), functional("Ids", "b1", NAMES)
    assert [m.name for m in fast] == [m.name for m in slow] == NAMES
    assert [m.value for m in fast] == NAMES
    assert list(fast.__members__) == list(slow.__members__)
    assert len(fast) == len(slow) == len(NAMES)
    assert fast.PIN3 is fast["PIN3"] is fast("PIN3")
    assert (fast.PIN3.key, str(fast.PIN3), f"{fast.PIN3}") == ("b1.PIN3",) * 3
    assert repr(fast.PIN3) == repr(slow.PIN3) == "<Ids.PIN3 of b1>"
    assert isinstance(fast.PIN3, DeviceId) and issubclass(fast, DeviceId)
    assert hash(fast.PIN3) == object.__hash__(fast.PIN3)  # identity hash, as DeviceId's
    assert fast.PIN3 != slow.PIN3 and fast.PIN3 in {fast.PIN3}
    assert copy.deepcopy(fast.PIN3) is fast.PIN3
    assert (fast.__module__, fast.__doc__) == ("actorhw.core.ids", None)
    with pytest.raises(ValueError, match="is not a valid Ids"):
        fast("PIN4")
    with pytest.raises(KeyError):
        fast["PIN4"]


def test_two_boards_never_share_ids() -> None:
    a, b = make_id_enum("Ids", "a", NAMES), make_id_enum("Ids", "b", NAMES)
    assert a.PIN3 != b.PIN3 and a.PIN3.key == "a.PIN3" and b.PIN3.key == "b.PIN3"


@pytest.mark.parametrize("names", [["_HIDDEN", "PIN0"], ["_sunder_", "PIN0"], ["PIN0", "PIN0"]])
def test_unusual_names_get_the_functional_apis_answer(names: list[str]) -> None:
    """A name Enum treats specially, or a repeat, is judged by the functional API."""
    try:
        expected: object = [m.name for m in functional("Odd", "b", names)]
    except (ValueError, TypeError) as e:
        expected = type(e)
    try:
        got: object = [m.name for m in make_id_enum("Odd", "b", names)]
    except (ValueError, TypeError) as e:
        got = type(e)
    assert got == expected


def test_members_pickle_by_value_check() -> None:
    ids = make_id_enum("Ids", "p", NAMES)
    # Dynamic enums are not importable by name: pickling fails loudly, as for the
    # functional API's (ids travel on the wire as keys, never pickled).
    with pytest.raises((pickle.PicklingError, AttributeError, TypeError)):
        pickle.dumps(ids.PIN3)
