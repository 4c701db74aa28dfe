"""Sessions own leases and allocations and release them all when they end, when their
owner thread dies, or when their heartbeat stops; allocation keeps a 10% reserve."""

from __future__ import annotations

import threading
from collections.abc import Iterator

import pytest

from actorhw import Runtime
from actorhw.core.errors import (
    AllocationRefusedError,
    DeviceBusyError,
    InvalidArgumentError,
    NoSuchSessionError,
    QuotaExceededError,
)
from actorhw.core.messages import (
    CpuStatus,
    MemoryStatus,
    ResourceKind,
    ResourceStatus,
    SessionEnded,
    StorageStatus,
)
from actorhw.tree.books import RESERVE, allocatable

pytestmark = pytest.mark.timeout(20)
WAIT = 5.0
MEM = ResourceKind.MEMORY


@pytest.fixture
def rt() -> Iterator[Runtime]:
    with Runtime.start(boards=["microbit"]) as rt:
        yield rt


def _status(ids: type, total: int | None, free: int | None) -> ResourceStatus:
    used = None if total is None or free is None else total - free
    return ResourceStatus(
        device=ids.BOARD,  # type: ignore[attr-defined]
        memory=MemoryStatus(total=total, used=used, free=free),
        storage=StorageStatus(),
        cpu=CpuStatus(),
        at=0.0,
    )


def test_allocatable_is_free_minus_reserve_minus_allocated(rt: Runtime) -> None:
    ids = rt.ids("microbit")
    assert allocatable(_status(ids, 10_000, 6_000), MEM, 0) == 6_000 - 1_000
    assert allocatable(_status(ids, 10_000, 6_000), MEM, 4_500) == 500
    assert allocatable(_status(ids, 10_000, 500), MEM, 0) == 0
    assert allocatable(_status(ids, None, None), MEM, 0) is None  # unknown, never 0
    assert allocatable(_status(ids, 10_000, 6_000), ResourceKind.STORAGE, 0) is None


def test_allocation_beyond_free_minus_reserve_is_refused_saying_what_is_left(
    rt: Runtime,
) -> None:
    ids = rt.ids("microbit")
    status = rt.monitor.status(ids.BOARD)
    assert status.memory.total is not None and status.memory.free is not None
    with rt.session("alloc") as s:
        with pytest.raises(AllocationRefusedError) as info:
            s.allocate(ids.BOARD, MEM, status.memory.free)
        error = info.value
        assert error.code == "allocation_refused" and error.requested == status.memory.free
        assert error.allocatable is not None
        assert error.allocatable <= status.memory.free - RESERVE * status.memory.total
        assert str(error.allocatable) in str(error)
        granted = s.allocate(ids.BOARD, MEM, error.allocatable // 2)
        with pytest.raises(AllocationRefusedError):
            s.allocate(ids.BOARD, MEM, error.allocatable)  # the half taken counts
        assert rt.monitor.allocations() == (granted,)
        with pytest.raises(AllocationRefusedError, match="unknown"):
            s.allocate(ids.BOARD, ResourceKind.STORAGE, 1)  # the sim has no fs total
        with pytest.raises(InvalidArgumentError):
            s.allocate(ids.BOARD, MEM, 0)


def test_quota_is_per_session(rt: Runtime) -> None:
    ids = rt.ids("microbit")
    with rt.session("q", quotas={MEM: 1000}) as s:
        s.allocate(ids.BOARD, MEM, 600)
        with pytest.raises(QuotaExceededError) as info:
            s.allocate(ids.BOARD, MEM, 600)
        assert (info.value.held, info.value.quota) == (600, 1000)
        with rt.session("other") as other:
            other.allocate(ids.BOARD, MEM, 600)  # another session's quota is its own
    with pytest.raises(InvalidArgumentError, match="ResourceKind"):
        rt.session("bad", quotas={"memory": 5})  # type: ignore[dict-item]


def test_ending_a_session_releases_its_leases_and_allocations(rt: Runtime) -> None:
    ids = rt.ids("microbit")
    with rt.subscribe() as sub:
        with rt.session("job") as s:
            s.lease(ids.DISPLAY)  # SINGLE: nobody else may have it meanwhile
            s.acquire(ids.PIN0)
            s.allocate(ids.BOARD, MEM, 100)
            with pytest.raises(DeviceBusyError):
                rt.acquire(ids.DISPLAY, owner="intruder")
            assert len(s.info().leases) == 2
        ended = sub.wait_for(lambda e: isinstance(e, SessionEnded), timeout=WAIT)
    assert (ended.reason, ended.leases, ended.allocations) == ("ended", 2, 1)
    assert rt.info(ids.DISPLAY).owners_count == 0 and rt.info(ids.PIN0).owners_count == 0
    assert rt.monitor.allocations() == ()
    assert s.end() is s.ended  # twice is fine
    with pytest.raises(NoSuchSessionError):
        s.heartbeat()


def test_a_lease_released_early_is_not_released_twice(rt: Runtime) -> None:
    ids = rt.ids("microbit")
    with rt.session("early") as s:
        lease = s.acquire(ids.PIN1)
        assert s.release(lease) == 0
        other = rt.acquire(ids.PIN1, owner="other")
    assert s.ended is not None and s.ended.leases == 0
    assert rt.info(ids.PIN1).owners == ("other",)
    rt.release(other)


def test_owner_thread_death_releases_everything(rt: Runtime) -> None:
    ids = rt.ids("microbit")
    opened = threading.Event()

    def owner() -> None:
        session = rt.session("worker")
        session.lease(ids.DISPLAY)
        session.allocate(ids.BOARD, MEM, 100)
        opened.set()  # ... and the thread ends without ending its session

    thread = threading.Thread(target=owner)
    with rt.subscribe() as sub:
        thread.start()
        assert opened.wait(WAIT)
        thread.join(WAIT)
        (ended,) = rt.monitor.reap_sessions()
        assert sub.wait_for(lambda e: isinstance(e, SessionEnded), timeout=WAIT) == ended
    assert (ended.owner, ended.reason, ended.leases, ended.allocations) == (
        "worker", "owner thread died", 1, 1,
    )  # fmt: skip
    assert rt.info(ids.DISPLAY).owners_count == 0 and rt.monitor.allocations() == ()


def test_owner_thread_death_is_noticed_without_being_asked(rt: Runtime) -> None:
    ids = rt.ids("microbit")
    thread = threading.Thread(target=lambda: rt.session("gone").lease(ids.DISPLAY))
    with rt.subscribe() as sub:
        thread.start()
        thread.join(WAIT)
        # The monitor's own tick (every 0.25 s) reaps it: wait for the event.
        ended = sub.wait_for(lambda e: isinstance(e, SessionEnded), timeout=WAIT)
    assert ended.reason == "owner thread died"
    assert rt.info(ids.DISPLAY).owners_count == 0


def test_a_stopped_heartbeat_expires_the_session(rt: Runtime) -> None:
    ids = rt.ids("microbit")
    s = rt.session("beating", ttl=0.2, watch_thread=False)
    s.lease(ids.DISPLAY)
    s.heartbeat()
    with rt.subscribe() as sub:
        ended = sub.wait_for(lambda e: isinstance(e, SessionEnded), timeout=WAIT)
    assert ended.reason == "heartbeat expired" and ended.leases == 1
    assert rt.info(ids.DISPLAY).owners_count == 0
    with pytest.raises(NoSuchSessionError):
        s.heartbeat()
    with s:  # leaving the block of an expired session is quiet
        pass


def test_bad_session_arguments(rt: Runtime) -> None:
    with pytest.raises(InvalidArgumentError, match="owner"):
        rt.session("")
    with pytest.raises(InvalidArgumentError, match="ttl"):
        rt.session("x", ttl=0)
