"""Device lifecycle: the states, the one transition table, and sharing policies.

The table is the seeds' (SAT toolkit driver guide) and is enforced in one place,
`check_transition()`; every state change in actorhw goes through it.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from types import MappingProxyType

from actorhw.core.errors import InvalidTransitionError


class DeviceState(enum.Enum):
    """Where a device is in its lifecycle."""

    UNKNOWN = "unknown"
    DISCOVERED = "discovered"
    INITIALIZED = "initialized"
    CONNECTED = "connected"
    ACTIVE = "active"
    ERROR = "error"
    DISCONNECTED = "disconnected"

    #: Members are singletons compared by identity: hashed by identity too, in C (Enum's
    #: own hash is a Python call hashing the name; every transition checks the table).
    __hash__ = object.__hash__


S = DeviceState

#: Every legal edge of the lifecycle, and nothing else.
TRANSITIONS: Mapping[DeviceState, frozenset[DeviceState]] = MappingProxyType(
    {
        S.UNKNOWN: frozenset({S.DISCOVERED}),
        S.DISCOVERED: frozenset({S.INITIALIZED}),
        S.INITIALIZED: frozenset({S.CONNECTED, S.DISCONNECTED}),
        S.CONNECTED: frozenset({S.ACTIVE, S.DISCONNECTED}),
        S.ACTIVE: frozenset({S.CONNECTED, S.ERROR}),
        S.ERROR: frozenset({S.DISCONNECTED}),
        S.DISCONNECTED: frozenset({S.INITIALIZED}),
    }
)

#: States in which a device takes acquire/open/use requests.
AVAILABLE: frozenset[DeviceState] = frozenset({S.CONNECTED, S.ACTIVE})


def check_transition(device: str, from_state: DeviceState, to_state: DeviceState) -> None:
    """Raise InvalidTransitionError unless ``from_state -> to_state`` is in the table."""
    if to_state not in TRANSITIONS[from_state]:
        allowed = ", ".join(sorted(s.name for s in TRANSITIONS[from_state]))
        raise InvalidTransitionError(
            f"{device}: no transition {from_state.name} -> {to_state.name} "
            f"(from {from_state.name} only to {allowed})",
            device=device,
            from_state=from_state.name,
            to_state=to_state.name,
        )


def recovery_path(state: DeviceState) -> tuple[DeviceState, ...]:
    """The legal steps from ``state`` back to CONNECTED, the seeds' recovery path."""
    paths = {
        S.ACTIVE: (S.ERROR, S.DISCONNECTED, S.INITIALIZED, S.CONNECTED),
        S.ERROR: (S.DISCONNECTED, S.INITIALIZED, S.CONNECTED),
        S.CONNECTED: (S.DISCONNECTED, S.INITIALIZED, S.CONNECTED),
        S.DISCONNECTED: (S.INITIALIZED, S.CONNECTED),
        S.INITIALIZED: (S.CONNECTED,),
        S.DISCOVERED: (S.INITIALIZED, S.CONNECTED),
        S.UNKNOWN: (S.DISCOVERED, S.INITIALIZED, S.CONNECTED),
    }
    return paths[state]


def legal_path(start: DeviceState, goal: DeviceState) -> list[DeviceState]:
    """The shortest legal path from ``start`` to ``goal`` (states after ``start``)."""
    paths: dict[DeviceState, list[DeviceState]] = {start: []}
    frontier = [start]
    while frontier and goal not in paths:
        nxt = []
        for state in frontier:
            for to in sorted(TRANSITIONS.get(state, ()), key=lambda s: s.name):
                if to not in paths:
                    paths[to] = [*paths[state], to]
                    nxt.append(to)
        frontier = nxt
    return paths.get(goal, [])


class SharingPolicy(enum.Enum):
    """How many owners a device may have at once; fixed when the device is built."""

    SINGLE = "single"
    """One owner; a second acquire fails at once with device_or_resource_busy."""
    SHARED = "shared"
    """Any number of owners; owners_count counts them."""
