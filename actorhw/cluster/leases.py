"""Leases across hosts, in the leases bucket.

A device's key (``<host>.<board>.<DEVICE>``) holds a :class:`LeaseRecord`: its holders.

- acquire, SINGLE: a create, which fails if the key holds anything (busy);
- acquire, SHARED: a compare-and-set that adds a holder to the record;
- the fencing token of a holder is the revision of the write that added it (a second
  write stores it in the record, before acquire returns);
- renewal: an update against the last revision the holder wrote, every third of the TTL;
- release: a compare-and-set that removes the holder (a delete when it was the last);
- expiry: the bucket's TTL removes a key nobody renews, and the server's marker tells
  every watcher (hosts drop the holder's local lease at once).  A SHARED holder that
  stops renewing while others renew is dropped by the next writer, ``ttl`` after its last
  renewal (wall clocks: keep the lab's machines in NTP sync).
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

import attrs

from actorhw.cluster import wire
from actorhw.core.errors import DeviceBusyError, StaleLeaseError, TimedOutError
from actorhw.core.lifecycle import SharingPolicy
from actorhw.core.log import logger
from actorhw.core.messages.cluster import LeaseHolder, LeaseRecord

if TYPE_CHECKING:
    from nats.js.kv import KeyValue


@attrs.define
class Held:
    """One lease this client holds."""

    key: str
    owner: str
    token: int
    revision: int
    """The revision of this client's last write of the key."""
    record: LeaseRecord
    opened: bool = False
    renewed: float = attrs.field(factory=time.monotonic)
    """time.monotonic() of the last write of this holder."""
    lost: str | None = None
    """Why the lease was lost (expired, taken over), once it is."""


class LeaseBook:
    """The leases one client holds, and the bucket operations on them."""

    def __init__(self, kv: KeyValue, *, ttl: float, client: str) -> None:
        self.kv = kv
        self.ttl = ttl
        self.client = client
        self.held: dict[tuple[str, int], Held] = {}

    def _fresh(self, holders: tuple[LeaseHolder, ...], now: float) -> tuple[LeaseHolder, ...]:
        """The holders that renewed within the TTL."""
        return tuple(h for h in holders if now - h.renewed <= self.ttl)

    async def acquire(
        self,
        key: str,
        *,
        owner: str,
        record: LeaseRecord,
        name: str,
        timeout: float,
        last: int = 0,
    ) -> Held:
        """Become a holder of ``key`` (``record`` says which device and its policy;
        ``last`` is the key's last revision if the caller's watch knows it).

        Raises:
            DeviceBusyError: SINGLE and held (naming owner, client and host).
        """
        deadline = time.monotonic() + timeout
        mine = LeaseHolder(owner=owner, token=0, client=self.client, renewed=time.time())
        if record.policy is SharingPolicy.SINGLE:
            # One create: its revision is the token (wire.tokens); the first renewal
            # stores it in the record.
            current = attrs.evolve(record, holders=(mine,))
            try:
                revision = await wire.create(self.kv, key, wire.encode(current), last=last)
            except wire.KeyTaken as e:
                if not self._mine(e.value, mine):
                    raise self._busy(name, e.value, record) from None
                revision = e.revision  # our own create, applied before a retry
            return self._hold(Held(key=key, owner=owner, token=revision, revision=revision,
                                   record=current))  # fmt: skip
        while True:
            value, last = await wire.read(self.kv, key)
            current = wire.record_of(value) if value is not None else record
            others = tuple(h for h in self._fresh(current.holders, time.time()) if h != mine)
            current = attrs.evolve(current, holders=(*others, mine))
            try:
                revision = await wire.write(self.kv, key, wire.encode(current), last=last)
            except wire.Conflict:
                if time.monotonic() > deadline:
                    raise TimedOutError(
                        f"{name}: acquire kept conflicting", timeout=timeout
                    ) from None
                continue
            # SHARED: store the token (that write's revision) before anyone uses it.
            held = Held(key=key, owner=owner, token=revision, revision=revision, record=current)
            if await self._renew(held, adopt=mine):
                return self._hold(held)

    @staticmethod
    def _mine(value: bytes, mine: LeaseHolder) -> bool:
        try:
            return wire.record_of(value).holders == (mine,)
        except Exception:
            return False

    def _hold(self, held: Held) -> Held:
        self.held[(held.key, held.token)] = held
        return held

    def _busy(self, name: str, value: bytes, wanted: LeaseRecord) -> DeviceBusyError:
        try:
            record = wire.record_of(value)
        except Exception:  # an unreadable value still means the key is taken
            record = attrs.evolve(wanted, holders=())
        owners = [h.owner for h in record.holders]
        clients = [h.client for h in record.holders]
        return DeviceBusyError(
            f"{name} is SINGLE and held by {', '.join(owners) or 'another owner'} "
            f"(from {', '.join(clients) or '?'}; the board is on host {record.host})",
            device=name,
            owners=owners,
            owners_count=len(owners),
            host=record.host,
            clients=clients,
        )

    async def renew_all(self) -> None:
        """Renew every held lease once (the client's renewal task calls this)."""
        for held in list(self.held.values()):
            if held.lost is None:
                try:
                    await self._renew(held)
                except Exception as e:  # the server is away: the next round retries
                    logger.warning("renewal of {} failed: {!r}", held.key, e)

    async def _renew(self, held: Held, *, adopt: LeaseHolder | None = None) -> bool:
        """Write ``held``'s holder again with a fresh time and its token; False (and
        ``lost`` set) if it is no longer a holder.  ``adopt`` is the tokenless holder a
        SHARED acquire just wrote."""
        record, last = held.record, held.revision

        def mine(h: LeaseHolder) -> bool:
            if h.token == held.token:
                return True
            if h.token:
                return False
            if adopt is not None:
                return h == adopt
            return record.policy is SharingPolicy.SINGLE and last == held.token

        for _ in range(wire.CAS_RETRIES):
            now = time.time()
            if not any(mine(h) for h in record.holders):
                held.lost = "taken over by another holder, or expired"
                return False
            holders = tuple(
                attrs.evolve(h, renewed=now, token=held.token) if mine(h) else h
                for h in record.holders
                if mine(h) or now - h.renewed <= self.ttl
            )
            fresh = attrs.evolve(record, holders=holders)
            try:
                held.revision = await wire.write(self.kv, held.key, wire.encode(fresh), last=last)
                held.record = fresh
                held.renewed = time.monotonic()
                return True
            except wire.Conflict:
                value, last = await wire.read(self.kv, held.key)
                if value is None:
                    held.lost = "expired (not renewed within the TTL)"
                    return False
                record = wire.record_of(value)
        held.lost = "renewal kept conflicting"
        return False

    async def check(self, key: str, token: int, name: str) -> Held:
        """The held lease, if this client still holds it; else StaleLeaseError.

        A lease not renewed for two thirds of the TTL (this process was paused, or cut
        off) is renewed first: only a renewal proves it is still held."""
        held = self.held.get((key, token))
        stale = held is not None and time.monotonic() - held.renewed > self.ttl * 2 / 3
        if held is not None and held.lost is None and stale:
            await self._renew(held)
        if held is None or held.lost is not None:
            why = held.lost if held is not None else "released"
            raise StaleLeaseError(f"{name}: lease token {token} is stale ({why})", device=name)
        return held

    async def release(self, key: str, token: int) -> int:
        """Stop being a holder; returns the holders left. A lease already lost is
        forgotten (0 left as far as this client knows)."""
        held = self.held.pop((key, token), None)
        if held is None or held.lost is not None:
            return 0
        record, last = held.record, held.revision
        for _ in range(wire.CAS_RETRIES):
            now = time.time()
            left = (
                ()
                if record.policy is SharingPolicy.SINGLE
                else tuple(
                    h for h in record.holders if h.token != token and now - h.renewed <= self.ttl
                )
            )
            try:
                if left:
                    await wire.write(
                        self.kv, key, wire.encode(attrs.evolve(record, holders=left)), last=last
                    )
                else:
                    await wire.delete(self.kv, key, last=last)
                return len(left)
            except wire.Conflict:
                value, last = await wire.read(self.kv, key)
                if value is None:
                    return 0
                record = wire.record_of(value)
        raise TimedOutError(f"release of {key} kept conflicting", device=key, timeout=0)
