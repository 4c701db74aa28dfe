"""Steps: a device's work as data, run by the local run_job exactly as a function of
the handle would be (the cluster sends the same steps to hosts: tests/cluster)."""

from __future__ import annotations

import pytest

from actorhw import Runtime
from actorhw.api.jobs import run_job
from actorhw.api.steps import Steps
from actorhw.core.errors import InvalidArgumentError

pytestmark = pytest.mark.timeout(60)


def test_a_local_job_of_steps_calls_each_handle_in_order() -> None:
    with Runtime.start(boards=["same70-xplained"] * 2, timeout=10.0) as rt:
        leds = [rt.ids(b.board).LED_GREEN for b in rt.boards()]
        result = run_job(rt, leds, Steps("on", "is_on", *["toggle"] * 3), owner="t", limit=2)
        assert result.values == {led: [None, True, False, True, False] for led in leds}
        bad = run_job(rt, leds[:1], Steps(("write", b"x")), owner="t")
        error = bad.errors[leds[0]]
        assert isinstance(error, InvalidArgumentError)
        assert "toggle" in error.message  # the steps a Led has
