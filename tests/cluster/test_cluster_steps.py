"""A job given as Steps over boards of two hosts: one request per host, each device's
steps run next to its board, results and typed errors per device, every lease fenced
and released after."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from actorhw.api.steps import Steps
from actorhw.cluster import Cluster, NatsServer, wire
from actorhw.cluster.batch import _steps_call
from actorhw.core.errors import DeviceBusyError, InvalidArgumentError, StaleLeaseError
from actorhw.core.messages.cluster import RemoteReply

pytestmark = pytest.mark.timeout(120)


def test_a_job_of_steps_runs_on_each_host_next_to_its_boards(
    nats_server: NatsServer, hosts: Any, connect: Callable[..., Cluster]
) -> None:
    hosts.start(nats_server.url, "lab-1", ["same70-xplained"])
    hosts.start(nats_server.url, "lab-2", ["same70-xplained"])
    cl = connect("ci-job-18")
    cl.wait_for(lambda c: c.online("lab-1") and c.online("lab-2"), timeout=10)
    devices = [cl.ids(f"{h}/same70-xplained")[n] for h in ("lab-1", "lab-2")
               for n in ("LED_GREEN", "LED_RED")]  # fmt: skip
    other = connect("someone-else")
    busy = other.acquire(devices[-1])  # one target is held: its error, not the job's

    result = cl.run_job(devices, Steps("on", "is_on", "toggle", "is_on"))
    assert [r.ok for r in result.results] == [True, True, True, False]
    assert result.values[devices[0]] == [None, True, False, False]
    assert isinstance(result.errors[devices[-1]], DeviceBusyError)
    other.release(busy)
    # Every lease of the job is released: another owner takes them all at once.
    for device in devices:
        other.release(other.acquire(device))

    # A step the device's handle has not: that target's typed error, naming the steps.
    bad = cl.run_job(devices[:1], Steps("toggle", ("write", b"x")))
    error = bad.errors[devices[0]]
    assert isinstance(error, InvalidArgumentError)
    assert "toggle" in error.message


def test_steps_are_handle_calls_checked_when_made() -> None:
    assert len(Steps.repeat("toggle", times=3)) == 3
    assert Steps(("exec", "print(1)", 5.0)).steps[0].args == ("print(1)", 5.0)
    for wrong in ("release", "_lease", ("open",), 3):
        with pytest.raises(InvalidArgumentError):
            Steps(wrong)  # type: ignore[arg-type]
    with pytest.raises(InvalidArgumentError):
        Steps.repeat("toggle", times=-1)


def test_a_job_request_with_a_stale_token_is_refused_on_the_fast_lane(
    nats_server: NatsServer, hosts: Any, connect: Callable[..., Cluster]
) -> None:
    # A holder that lost its lease (released here; expired or taken over alike) sends
    # the job's request with its old token straight to the host's fast lane: refused,
    # nothing runs, the new holder's device is untouched.
    hosts.start(nats_server.url, "lab-1", ["same70-xplained"])
    cl, other = connect("old-holder"), connect("new-holder")
    cl.wait_for(lambda c: c.online("lab-1"), timeout=10)
    led = cl.ids("lab-1/same70-xplained").LED_GREEN
    old = cl.acquire(led)
    cl.release(old)
    with other.lease(led) as handle:
        handle.off()
        direct = cl._direct
        assert direct is not None and direct.blocking
        call = _steps_call([(0, old)], Steps("on"), "old-holder", 5.0)
        [answer] = direct.call_many([("lab-1", call)], 5.0)
        [reply] = answer
        with pytest.raises(StaleLeaseError):
            wire.raise_reply(wire.structure(reply, RemoteReply))
        assert handle.is_on() is False
