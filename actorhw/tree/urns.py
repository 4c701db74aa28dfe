"""The running actors of the tree by URN: an O(1) map, not pykka's linear registry scan.

``pykka.ActorRegistry.get_by_urn`` compares every registered actor's URN (a list scan
under a lock): with 20,000 devices, finding one costs milliseconds and listing them all
grows quadratically.  Every actor of the tree records its ref here as it is built
(:class:`~actorhw.tree.dispatch.DispatchActor` does); entries hold the ref weakly, so a
stopped actor that no one holds any more leaves the map by itself, and :func:`find`
answers only actors that still run.
"""

from __future__ import annotations

import weakref
from typing import Any

import pykka

_refs: weakref.WeakValueDictionary[str, pykka.ActorRef[Any]] = weakref.WeakValueDictionary()


def remember(ref: pykka.ActorRef[Any]) -> None:
    """Record ``ref`` under its URN (called once per actor, as it is built)."""
    _refs[ref.actor_urn] = ref


def find(urn: str) -> pykka.ActorRef[Any] | None:
    """The running actor of the tree with this URN, or None (stopped, or unknown)."""
    ref = _refs.get(urn)
    return ref if ref is not None and ref.is_alive() else None


def running() -> list[pykka.ActorRef[Any]]:
    """Every running actor of the tree (and any other pykka actor of the process)."""
    seen = {ref.actor_urn: ref for ref in pykka.ActorRegistry.get_all()}
    for urn, ref in list(_refs.items()):
        if ref.is_alive():
            seen.setdefault(urn, ref)
    return list(seen.values())
