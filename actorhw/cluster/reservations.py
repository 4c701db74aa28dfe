"""Reservations: N boards matching a pattern, all at once, in a queue across hosts.

A waiter puts a ReservationRequest in the queue bucket (TTL: a vanished waiter's entry
expires; a live one renews it). The queue is ordered by priority (higher first), then
arrival (the entry's bucket revision). A waiter tries to take boards only when no waiter
ahead of it wants any of the boards it wants; it takes every device of N free boards, or
gives back what it took and waits for the next change (no partial holds, so no two
reservations ever wait on each other). It gives up at its deadline.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import time
from typing import Any

from actorhw.cluster import wire
from actorhw.core.errors import ActorHwError, DeviceBusyError, InvalidArgumentError, TimedOutError
from actorhw.core.messages import Lease
from actorhw.core.messages.cluster import ReservationRequest

#: The AsyncCluster a reservation runs on (not imported: it imports this module).
AsyncCluster = Any

_numbers = itertools.count(1)


class Reservation:
    """Boards held together; ``release()`` (or the end of its ``async with``) frees them."""

    def __init__(self, cl: AsyncCluster, boards: list[str], leases: list[Lease]) -> None:
        self.cluster = cl
        self.boards = boards
        """The reserved boards (``host/board``)."""
        self.leases = leases
        """A lease of every device of every reserved board."""

    async def release(self) -> None:
        """Give every board back."""
        leases, self.leases = self.leases, []
        for lease in leases:
            with contextlib.suppress(ActorHwError):
                await self.cluster.release(lease)

    async def __aenter__(self) -> Reservation:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.release()


def _matching(cl: AsyncCluster, pattern: str) -> set[str]:
    return {b.name for b in cl.boards(pattern)}


def waiters(cl: AsyncCluster) -> list[tuple[int, ReservationRequest]]:
    """The live waiters (from the client's watch of the queue), first served first."""
    live = [
        (r.arrival or first, r)
        for first, r in cl.waiting.values()
        if time.time() - r.renewed <= cl.ttl
    ]
    return sorted(live, key=lambda w: (-w[1].priority, w[0]))


async def _grab(cl: AsyncCluster, wanted: set[str], count: int, owner: str) -> Reservation | None:
    """Every device of ``count`` free online boards of ``wanted``, or nothing."""
    boards: list[str] = []
    leases: list[Lease] = []
    for board in sorted(b.name for b in cl.boards() if b.name in wanted and b.online):
        taken: list[Lease] = []
        try:
            for device in cl.ids(board):
                taken.append(await cl.acquire(device, owner=owner))
        except DeviceBusyError:
            for lease in taken:
                await cl.release(lease)
            continue
        boards.append(board)
        leases.extend(taken)
        if len(boards) == count:
            return Reservation(cl, boards, leases)
    await Reservation(cl, boards, leases).release()
    return None


async def reserve(
    cl: AsyncCluster, pattern: str, *, count: int, wait: float, priority: int, owner: str
) -> Reservation:
    """Wait in the queue for ``count`` boards matching ``pattern``; all of them at once.

    Raises:
        TimedOutError: not granted within ``wait`` s (its place in the queue is left).
    """
    if not isinstance(count, int) or count < 1:
        raise InvalidArgumentError("count must be an int >= 1", argument="count")
    deadline = time.monotonic() + wait
    kv = cl.buckets.queue
    key = "q." + "".join(c if c.isalnum() else "-" for c in f"{cl.client}-{next(_numbers)}")

    def request(arrival: int = 0) -> bytes:
        return wire.encode(
            ReservationRequest(
                owner=owner, pattern=pattern, count=count, priority=priority,
                client=cl.client, deadline=time.time() + max(0.0, deadline - time.monotonic()),
                renewed=time.time(), arrival=arrival,
            )
        )  # fmt: skip

    revision = await wire.create(kv, key, request())

    async def renew() -> None:
        while True:
            await asyncio.sleep(cl.ttl / 3)
            with contextlib.suppress(Exception):
                await kv.put(key, request(revision))

    renewing = asyncio.ensure_future(renew())
    try:
        while True:
            mine = _matching(cl, pattern)
            ahead = [
                r
                for rev, r in waiters(cl)
                if r.priority > priority or (r.priority == priority and rev < revision)
            ]
            if not any(_matching(cl, r.pattern) & mine for r in ahead):
                granted = await _grab(cl, mine, count, owner)
                if granted is not None:
                    return granted
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimedOutError(
                    f"{owner}: no {count} free boards matching {pattern!r} within {wait:g} s",
                    timeout=wait,
                )
            with contextlib.suppress(TimeoutError):
                async with cl.changed:
                    await asyncio.wait_for(cl.changed.wait(), min(left, cl.ttl / 2))
    finally:
        renewing.cancel()
        with contextlib.suppress(Exception):
            await kv.delete(key)
