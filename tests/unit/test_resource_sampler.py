"""The MicroPython resource sampler: defined on the board once per connection, then one
short call per sample; gc.collect() only when asked (issue 14, goal 4)."""

from __future__ import annotations

from typing import Any

import pytest

from actorhw.core.errors import DeviceExceptionError
from actorhw.core.ids import DeviceKind
from actorhw.core.lifecycle import SharingPolicy
from actorhw.drivers import mpy_resources as res
from actorhw.drivers.definitions import DeviceSpec
from actorhw.drivers.mpy_peripherals import BoardDevice

SAMPLE_OUT = (
    "GC: total: 1000, used: 400, free: 600\nmax free sz: 8\n\x1eRES((None, 12, None), 2500)\x1f"
)


class FakeLink:
    """Answers the probe, the definition and the call as a MicroPython board would; a
    soft reset (``forget``) drops the defined sampler."""

    def __init__(self) -> None:
        self.sent: list[str] = []
        self.defined = False

    def exec_checked(self, code: str, *, timeout: float) -> str:
        assert timeout > 0
        self.sent.append(code)
        if code == res.PROBE_CODE:
            return "(False, True, True, 0)"
        if code.startswith(f"def {res.SAMPLER}():"):
            self.defined = True
            return ""
        if code == res.SAMPLE_CALL:
            if not self.defined:
                raise DeviceExceptionError(
                    "NameError: name not defined", exc_name="NameError", device="b"
                )
            return SAMPLE_OUT
        raise AssertionError(f"unexpected code {code!r}")

    def forget(self) -> None:
        self.defined = False


def test_the_sampler_is_defined_once_per_connection_then_each_sample_is_one_call() -> None:
    sampler, link = res.Sampler(), FakeLink()
    figures = [sampler.read(link, timeout=2.0) for _ in range(3)]
    assert figures[0]["memory.free"] == 600 and figures[0]["storage.used"] == 12
    assert figures[0]["cpu.uptime_s"] == 2.5 and figures[0] == figures[2]
    assert link.sent[0] == res.PROBE_CODE and link.sent[1].startswith("def ")
    assert link.sent[2:] == [res.SAMPLE_CALL] * 3  # a few bytes each, not the code
    assert "gc.collect()" not in link.sent[1]  # not asked for
    link.forget()  # a soft reset: NameError, defined again, answered
    assert sampler.read(link, timeout=2.0)["memory.used"] == 400
    assert [c[:4] for c in link.sent[5:]] == [res.SAMPLE_CALL[:4], "def ", res.SAMPLE_CALL[:4]]
    other = FakeLink()  # a reconnect is a new link: probed and defined again
    sampler.read(other, timeout=2.0)
    assert other.sent[:2] == [res.PROBE_CODE, link.sent[1]]


def test_other_board_errors_are_not_taken_for_a_forgotten_sampler() -> None:
    sampler, link = res.Sampler(), FakeLink()
    sampler.read(link, timeout=2.0)

    def fail(code: str, *, timeout: float) -> str:
        raise DeviceExceptionError("MemoryError", exc_name="MemoryError", device="b")

    link.exec_checked = fail  # type: ignore[method-assign]
    with pytest.raises(DeviceExceptionError, match="MemoryError"):
        sampler.read(link, timeout=2.0)


class _Board:
    board = "b"
    api = "machine"
    link: Any = None

    def __init__(self) -> None:
        self.works: list[Any] = []

    def submit(self, work: Any, *, what: str = "exec") -> Any:
        self.works.append((work, what))
        return None


@pytest.mark.parametrize("asked", [False, True])
def test_the_generic_board_device_collects_garbage_only_when_asked(asked: bool) -> None:
    options = {"collect_garbage": True} if asked else {}
    spec = DeviceSpec(
        name="BOARD", kind=DeviceKind.BOARD, policy=SharingPolicy.SHARED, options=options
    )
    board = _Board()
    device = BoardDevice(spec, board)
    device.resources()
    ((work, what),) = board.works
    link = FakeLink()
    assert what == "resources" and work(link)["memory.total"] == 1000
    assert ("gc.collect()" in link.sent[1]) is asked
    work(link)
    assert link.sent[-1] == res.SAMPLE_CALL
