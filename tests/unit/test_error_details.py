"""Errors that say what they promise (issue 13, item 13): valid ids on the blocking API,
an id looked up by its name, plain data from to_dict(), every code in docs/errors.md,
units in an allocation refusal, and a limiter query that changes nothing."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path

import pytest

from actorhw import Runtime
from actorhw.api.jobs import JobRunner
from actorhw.core import errors
from actorhw.core.errors import AllocationRefusedError, JobFailedError, NoSuchDeviceError
from actorhw.core.messages import Priority, ResourceKind
from actorhw.drivers.definitions import BoardCatalog

pytestmark = pytest.mark.timeout(30)
DOCS = Path(__file__).resolve().parents[2] / "docs"


@pytest.fixture
def rt() -> Iterator[Runtime]:
    with Runtime.start(boards=["same70-xplained", "microbit"], timeout=30) as runtime:
        yield runtime


def test_no_such_device_lists_valid_ids_for_a_board_not_running(rt: Runtime) -> None:
    other = BoardCatalog.discover().get("stm32f4-discovery").ids()
    with pytest.raises(NoSuchDeviceError) as info:
        rt.info(next(iter(other)))
    assert "same70-xplained.UART0" in info.value.valid_ids
    assert "same70-xplained.UART0" in str(info.value)


def test_no_such_device_for_a_string_id_lists_ids_and_says_how(rt: Runtime) -> None:
    with pytest.raises(NoSuchDeviceError) as info:
        rt.info("same70-xplained.UART0")  # type: ignore[arg-type]
    assert "microbit.BOARD" in info.value.valid_ids
    assert "rt.device_id('same70-xplained.UART0')" in info.value.message


def test_blocking_lookup_of_an_id_by_its_name(rt: Runtime) -> None:
    device = rt.device_id("same70-xplained.UART0")
    assert device is rt.ids("same70-xplained").UART0
    with pytest.raises(NoSuchDeviceError) as info:
        rt.device_id("same70-xplained.NOPE")
    assert "UART0" in info.value.valid_ids
    with pytest.raises(errors.NoSuchBoardError, match="did you mean 'same70-xplained'"):
        rt.device_id("same70-xplaned.UART0")
    with pytest.raises(errors.InvalidArgumentError):
        rt.device_id("UART0")


def test_job_failed_to_dict_is_plain_data(rt: Runtime) -> None:
    def boom(target: str) -> str:
        raise errors.InvalidArgumentError(f"bad {target}", argument=target)

    with JobRunner(rt, workers=2) as runner:
        result = runner.submit(["a", "b"], boom, name="boom").wait(timeout=10)
    with pytest.raises(JobFailedError) as info:
        result.raise_for_errors()
    data = info.value.to_dict()
    assert data["errors"]["a"] == {
        "code": "invalid_argument", "message": "bad a", "argument": "a"
    }  # fmt: skip
    assert data["failed"] == ["a", "b"]
    assert json.loads(json.dumps(data)) == data


def test_docs_errors_lists_every_code() -> None:
    text = (DOCS / "errors.md").read_text(encoding="utf-8")
    listed = set(re.findall(r"^\| ([a-z_]+) \|", text, flags=re.M))
    listed |= set(re.findall(r"`([a-z_]+)`", text))
    codes = {
        cls.code
        for cls in vars(errors).values()
        if isinstance(cls, type) and issubclass(cls, errors.ActorHwError)
    }
    assert {"actor_dead", "runtime_stopped"} <= codes
    assert codes - listed == set()


def test_allocation_refusal_says_bytes(rt: Runtime) -> None:
    ids = rt.ids("microbit")
    free = rt.monitor.status(ids.BOARD).memory.free
    assert free is not None
    with rt.session("alloc") as s, pytest.raises(AllocationRefusedError) as info:
        s.allocate(ids.BOARD, ResourceKind.MEMORY, free)
    assert re.search(rf"requested {free} bytes of memory, allocatable \d+ bytes", str(info.value))


def test_limiter_can_run_is_a_query_without_side_effects(rt: Runtime) -> None:
    ids = rt.ids("microbit")
    limiter = rt.limiter
    limiter.configure(max_global=1, max_per_device=1)
    before = limiter.statistics()
    assert limiter.can_run(ids.BOARD) is True
    assert limiter.statistics() == before and limiter.operations() == ()
    low = limiter.admit(ids.BOARD, priority=Priority.LOW, what="low")
    try:
        taken = limiter.statistics()
        assert limiter.can_run(ids.BOARD) is False
        assert limiter.can_run(ids.BOARD, priority=Priority.HIGH) is True  # would preempt
        assert limiter.statistics() == taken  # nothing queued, preempted or counted
        assert [o.op_id for o in limiter.operations()] == [low.op_id]
        assert not low.revoked.done()
    finally:
        limiter.finish(low)
