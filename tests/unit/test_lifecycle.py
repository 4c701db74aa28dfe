"""The lifecycle table: every legal edge allowed, every other refused by name."""

from __future__ import annotations

import itertools

import pytest

from actorhw.core.errors import InvalidTransitionError
from actorhw.core.lifecycle import (
    TRANSITIONS,
    DeviceState,
    check_transition,
    legal_path,
    recovery_path,
)

pytestmark = pytest.mark.timeout(10)
S = DeviceState

LEGAL = {
    (S.UNKNOWN, S.DISCOVERED),
    (S.DISCOVERED, S.INITIALIZED),
    (S.INITIALIZED, S.CONNECTED),
    (S.CONNECTED, S.ACTIVE),
    (S.ACTIVE, S.CONNECTED),
    (S.ACTIVE, S.ERROR),
    (S.ERROR, S.DISCONNECTED),
    (S.DISCONNECTED, S.INITIALIZED),
    (S.INITIALIZED, S.DISCONNECTED),
    (S.CONNECTED, S.DISCONNECTED),
}


def test_table_is_exactly_the_seeds_table() -> None:
    assert {(a, b) for a, targets in TRANSITIONS.items() for b in targets} == LEGAL


@pytest.mark.parametrize(("a", "b"), list(itertools.product(S, S)))
def test_every_edge_checked(a: DeviceState, b: DeviceState) -> None:
    if (a, b) in LEGAL:
        check_transition("dev", a, b)
    else:
        with pytest.raises(InvalidTransitionError) as e:
            check_transition("dev", a, b)
        assert (e.value.from_state, e.value.to_state) == (a.name, b.name)
        assert e.value.code == "invalid_transition"


@pytest.mark.parametrize("start", list(S))
def test_recovery_paths_are_legal_and_end_connected(start: DeviceState) -> None:
    state = start
    for step in recovery_path(start):
        check_transition("dev", state, step)
        state = step
    assert state is S.CONNECTED


def test_device_actor_refuses_illegal_transition(sim_runtime: object) -> None:
    from actorhw import Runtime
    from actorhw.core.messages import Transition
    from actorhw.tree.asks import ask

    assert isinstance(sim_runtime, Runtime)
    ids = sim_runtime.ids("same70-xplained")
    _entry, ref = sim_runtime._route(ids.UART0, timeout=5)
    with pytest.raises(InvalidTransitionError, match="CONNECTED -> UNKNOWN"):
        ask(ref, Transition(to=S.UNKNOWN, reason="test"), timeout=5)
    assert sim_runtime.info(ids.UART0).state is S.CONNECTED


@pytest.mark.parametrize("goal", list(DeviceState))
def test_legal_path_from_unknown_takes_only_legal_edges(goal: DeviceState) -> None:
    path = legal_path(DeviceState.UNKNOWN, goal)
    state = DeviceState.UNKNOWN
    for step in path:
        check_transition("x", state, step)
        state = step
    assert state is goal
