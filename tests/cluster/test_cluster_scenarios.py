"""Scenarios and jobs across hosts, against a real nats-server with hosts as separate
processes: a scenario whose boards live on two hosts passes end to end (with faults it
expects), a host killed -9 mid-scenario fails its step at once with a typed error and
the other host's leases are released, and a file's cluster boards are checked (host,
board, device) with the file, line and key."""

from __future__ import annotations

import os
import runpy
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from actorhw import Gpio, Handle, Uart
from actorhw.api.jobs import run_job
from actorhw.cluster import Cluster, NatsServer
from actorhw.core.errors import ScenarioFileError
from actorhw.core.messages import JobProgress
from actorhw.scenario import StepEvent, load_scenario, run_scenario
from actorhw.scenario.report import FAILED, PASSED, SKIPPED, leaves
from tests.cluster.conftest import TTL, Hosts

pytestmark = pytest.mark.timeout(120)

ROOT = Path(__file__).parents[2]
EXAMPLE = ROOT / "docs" / "examples" / "cluster_scenario.py"
LAB = ROOT / "docs" / "examples" / "cluster_lab.toml"


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[NatsServer, Cluster]]:
    """A server, host lab-1 (same70-xplained) and lab-2 (microbit), and a client."""
    hosts = Hosts()
    store = tmp_path_factory.mktemp("jetstream")
    with NatsServer(store_dir=store) as server:
        try:
            hosts.start(server.url, "lab-1", ["same70-xplained"])
            hosts.start(server.url, "lab-2", ["microbit"])
            with Cluster.connect(server.url, owner="ci", lease_ttl=TTL) as cl:
                cl.wait_for(lambda c: c.online("lab-1") and c.online("lab-2"), timeout=5)
                yield server, cl
        finally:
            for host in hosts.started:
                host.stop()


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "lab.toml"
    path.write_text(text)
    return path


def test_a_scenario_on_two_hosts_passes_with_the_faults_it_expects(
    lab: tuple[NatsServer, Cluster],
) -> None:
    _server, cl = lab
    scenario = load_scenario(LAB, cluster=cl)
    assert scenario.board_names == ("lab-1/same70-xplained", "lab-2/microbit")
    report = run_scenario(scenario, runtime=cl)
    failed = [f"{s.name}: {s.message}" for s in leaves(report.steps) if s.status != PASSED]
    assert report.passed, failed
    by_name = {s.name: s for s in report.steps}
    assert by_name["read it back"].value == "b'hello'"  # lab-1's UART, through its host
    assert by_name["lab-2's PIN0 reads low (leased for this step only)"].value == "False"
    assert by_name["no fault on a board someone else holds"].status == PASSED
    assert by_name["the next call meets the fault"].status == PASSED  # link_lost, expected
    children = by_name["every board is CONNECTED"].children
    assert [c.name.split("]")[0] for c in children] == ["[lab-1/same70-xplained", "[lab-2/microbit"]
    # the teardown released everything: nobody holds a device of either board
    cl.wait_for(lambda c: not any(i.owners for i in c.devices()), timeout=5)


def test_the_docs_example_runs_the_scenario_and_a_job_over_both_hosts(
    lab: tuple[NatsServer, Cluster],
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    server, _cl = lab
    monkeypatch.setenv("ACTORHW_CLUSTER", server.url)
    runpy.run_path(str(EXAMPLE), run_name="__main__")
    out = capsys.readouterr().out
    assert "two-hosts: PASS, 14 steps" in out
    assert "job lab-1/same70-xplained.LED_GREEN: True" in out
    assert "job lab-1/same70-xplained.LED_RED: True" in out
    assert "job lab-2/microbit.PIN0: False" in out


def test_the_cli_runs_a_cluster_scenario_and_refuses_a_bad_one(
    lab: tuple[NatsServer, Cluster], tmp_path: Path
) -> None:
    server, _cl = lab
    env = {**os.environ, "COLUMNS": "200"}
    done = subprocess.run(
        [sys.executable, "-m", "actorhw.cli", "--cluster", server.url, "--lease-ttl", str(TTL),
         "run", "--no-progress", str(LAB)],
        capture_output=True, text=True, timeout=60, env=env,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    assert "two-hosts" in done.stdout and "PASS" in done.stdout
    bad = _write(tmp_path, '[[boards]]\nhost = "lab-9"\nboard = "microbit"\n\n'
                           '[[steps]]\nacquire = "lab-9/microbit.PIN0"\n')  # fmt: skip
    done = subprocess.run(
        [sys.executable, "-m", "actorhw.cli", "--cluster", server.url, "run", str(bad)],
        capture_output=True, text=True, timeout=60, env=env,
    )  # fmt: skip
    assert done.returncode == 1, done.stdout + done.stderr
    assert f"[invalid_scenario_file] {bad}:2: key 'boards.0.host': no host 'lab-9'" in done.stderr


@pytest.mark.parametrize(
    ("boards", "step", "key", "words"),
    [
        ('board = "same70-xplained"', 'acquire = "lab-1/same70-xplained.UART0"',
         "boards.0", ['add host = "..."', "lab-1, lab-2", "HOST/same70-xplained"]),
        ('host = "lab-9"\nboard = "same70-xplained"', 'acquire = "lab-9/same70-xplained.UART0"',
         "boards.0.host", ["no host 'lab-9'", "hosts: lab-1, lab-2"]),
        ('host = "lab-1"\nboard = "same70-xplained"\nname = "sam"', 'acquire = "lab-1/sam.UART0"',
         "boards.0.name", ["host lab-1 has no board 'sam'", "its boards: same70-xplained"]),
        ('host = "lab-2"\nboard = "same70-xplained"\nname = "microbit"',
         'acquire = "lab-2/microbit.BOARD"',
         "boards.0.board", ["lab-2/microbit is a microbit board, not same70-xplained"]),
        ('host = "lab-1"\nboard = "same70-xplained"', 'acquire = "lab-1/same70-xplained.UART9"',
         "steps.0.acquire", ["no device 'UART9'", "UART0"]),
        ('host = "lab-1"\nboard = "same70-xplained"', 'acquire = "same70-xplained.UART0"',
         "steps.0.acquire", ["no board instance 'same70-xplained'", "named host/board"]),
        ('host = "lab-1"\nboard = "same70-xplained"',
         'measure = "memory.free"\non = "lab-1/same70-xplained.UART0"',
         "steps.0.measure", ["steps run on a local runtime only"]),
    ],
    ids=["no-host", "unknown-host", "unknown-board", "wrong-definition", "unknown-device",
         "board-without-host", "local-only-step"],
)  # fmt: skip
def test_a_cluster_files_boards_are_checked_with_file_line_and_key(
    lab: tuple[NatsServer, Cluster],
    tmp_path: Path,
    boards: str,
    step: str,
    key: str,
    words: list[str],
) -> None:
    _server, cl = lab
    path = _write(tmp_path, f"[[boards]]\n{boards}\n\n[[steps]]\n{step}\n")
    with pytest.raises(ScenarioFileError) as caught:
        load_scenario(path, cluster=cl)
    error = caught.value
    assert (error.file, error.key) == (str(path), key)
    assert error.line is not None and error.line >= 1
    assert str(path) in error.message
    for word in words:
        assert word in error.message


def test_a_cluster_file_needs_a_cluster(tmp_path: Path) -> None:
    path = _write(tmp_path, '[[boards]]\nhost = "lab-1"\nboard = "microbit"\n\n'
                            '[[steps]]\nacquire = "lab-1/microbit.PIN0"\n')  # fmt: skip
    with pytest.raises(ScenarioFileError, match="need a cluster") as caught:
        load_scenario(path)
    assert (caught.value.key, caught.value.line) == ("boards.0.host", 2)


KILLED = """
[scenario]
name = "lab-2-dies"
step_timeout = 10

[[boards]]
host = "lab-1"
board = "same70-xplained"

[[boards]]
host = "lab-2"
board = "same70-xplained"

[[steps]]
acquire = "lab-1/same70-xplained.LED_GREEN"
as = "one"

[[steps]]
open = "one"

[[steps]]
acquire = "lab-2/same70-xplained.LED_GREEN"
as = "two"

[[steps]]
open = "two"

[[steps]]
name = "light lab-1's LED"
command = "set"
on = "one"
args = [true]

[[steps]]
name = "light lab-2's LED"
command = "set"
on = "two"
args = [true]

[[steps]]
name = "never runs"
command = "set"
on = "one"
args = [false]
"""


def test_a_host_killed_mid_scenario_fails_its_step_at_once_and_frees_the_rest(
    nats_server: NatsServer, hosts: Hosts, connect: Any, tmp_path: Path
) -> None:
    hosts.start(nats_server.url, "lab-1", ["same70-xplained"])
    lab2 = hosts.start(nats_server.url, "lab-2", ["same70-xplained"])
    cl = connect("ci")
    cl.wait_for(lambda c: c.online("lab-1") and c.online("lab-2"), timeout=5)
    scenario = load_scenario(_write(tmp_path, KILLED), cluster=cl)
    began: dict[str, float] = {}

    def on_event(event: StepEvent) -> None:
        if event.status == "running" and event.step == "light lab-2's LED":
            lab2.kill()  # kill -9 (waits for the process to be gone)
            began["step"] = time.monotonic()

    report = run_scenario(scenario, runtime=cl, on_event=on_event)
    assert not report.passed
    statuses = {s.name: s.status for s in report.steps}
    assert statuses["light lab-1's LED"] == PASSED
    assert statuses["never runs"] == SKIPPED
    failed = [s for s in report.steps if s.status == FAILED]
    assert len(failed) == 1
    step = failed[0]
    line = KILLED.split("\n").index('name = "light lab-2\'s LED"')  # its [[steps]] line
    assert (step.name, step.line, step.code) == ("light lab-2's LED", line, "host_unreachable")
    assert "lab-2/same70-xplained.LED_GREEN" in step.message and "lab-2" in step.message
    # it failed within the host's offline window, not a step timeout
    assert step.elapsed < cl.aio.config.offline_after + 2.0
    # the teardown released both leases: lab-1's on its host, lab-2's in the bucket
    one = cl.device("lab-1/same70-xplained", "LED_GREEN")
    two = cl.device("lab-2/same70-xplained", "LED_GREEN")
    assert cl.info(one).owners_count == 0
    cl.wait_for(lambda c: c.holders(one) is None and c.holders(two) is None, timeout=5)
    other = connect("someone-else")
    with other.lease(one):  # free for anyone
        pass
    # run again with lab-2 gone: the bring-up says so before any step runs
    again = run_scenario(scenario, runtime=cl)
    assert again.error.startswith("bring-up failed: [host_unreachable]"), again.error
    assert "host lab-2 is offline" in again.error
    assert {s.status for s in again.steps} == {SKIPPED}


FIRMWARE = """
[scenario]
name = "real-firmware-on-a-host"
step_timeout = 10

[[boards]]
host = "lab-1"
board = "same70-xplained"

[[boards]]
host = "lab-2"
name = "mp"
board = "micropython"

[[steps]]
name = "MicroPython runs on lab-2's board"
exec = "print(6 * 7)"
on = "lab-2/mp.BOARD"
expect = { output = "42" }

[[steps]]
name = "a task's typed result comes back across hosts"
task = "pair"
define = "def pair(a, b):\\n    return [a + b, str(a)]"
args = [2, 3]
on = "lab-2/mp.BOARD"
expect = { value = [5, "2"] }

[[steps]]
name = "the board's exception, with its name"
exec = "1 / 0"
on = "lab-2/mp.BOARD"
expect = { raises = "ZeroDivisionError" }

[[steps]]
name = "a real MemoryError on lab-2's heap"
fault = "memory_error"
board = "lab-2/mp"
expect = { contains = "MemoryError" }

[[steps]]
name = "lab-1's LED meanwhile"
command = "set"
on = "lab-1/same70-xplained.LED_GREEN"
args = [true]
"""


def test_a_scenario_runs_real_micropython_on_one_host_beside_a_simulated_one(
    nats_server: NatsServer, hosts: Hosts, connect: Any, tmp_path: Path
) -> None:
    from tests.integration.serial_boards import unix_boards_in

    boards = unix_boards_in(tmp_path)
    firmware = next(boards)(heap="64K")
    try:
        hosts.start(nats_server.url, "lab-1", ["same70-xplained"])
        hosts.start(nats_server.url, "lab-2", [f"mp=micropython@{firmware.path}"])
        cl = connect("ci")
        cl.wait_for(lambda c: c.online("lab-1") and c.online("lab-2"), timeout=5)
        scenario = load_scenario(_write(tmp_path, FIRMWARE), cluster=cl)
        report = run_scenario(scenario, runtime=cl)
        failed = [f"{s.name}: {s.message}" for s in leaves(report.steps) if s.status != PASSED]
        assert report.passed, failed
        values = [s.value for s in report.steps]
        assert (values[0].strip(), values[1]) == ("42", "[5, '2']")
        assert "MemoryError" in values[3]
    finally:
        boards.close()


def test_the_local_run_job_runs_over_devices_of_two_hosts(lab: tuple[NatsServer, Cluster]) -> None:
    _server, cl = lab
    devices = [
        cl.device("lab-1/same70-xplained", "UART0"),
        cl.device("lab-1/same70-xplained", "UART1"),
        cl.device("lab-2/microbit", "PIN3"),
    ]
    progress: list[JobProgress] = []

    def one(device: Handle) -> object:
        if isinstance(device, Uart):
            device.write(b"ping")
            return device.read(4)
        assert isinstance(device, Gpio)
        return device.read()

    # the same function as on one Runtime (actorhw.jobs.run_job), given the cluster
    result = run_job(cl, devices, one, owner="job-17", limit=3, on_progress=progress.append)
    assert result.ok, result.errors
    assert list(result.values.values()) == [b"ping", b"ping", False]
    assert (progress[-1].succeeded, progress[-1].total) == (3, 3)
    cl.wait_for(lambda c: all(c.holders(d) is None for d in devices), timeout=5)


WAITING = """
[[boards]]
host = "lab-1"
board = "same70-xplained"

[[boards]]
host = "lab-2"
board = "same70-xplained"

[[steps]]
acquire = "lab-1/same70-xplained.UART0"
as = "uart"

[[steps]]
name = "wait on lab-2 for a state that never comes"
wait = "ERROR"
board = "lab-2/same70-xplained"
timeout = 30
"""


def test_a_host_killed_while_a_step_waits_on_it_fails_the_step_when_it_goes_offline(
    nats_server: NatsServer, hosts: Hosts, connect: Any, tmp_path: Path
) -> None:
    hosts.start(nats_server.url, "lab-1", ["same70-xplained"])
    lab2 = hosts.start(nats_server.url, "lab-2", ["same70-xplained"])
    cl = connect("ci")
    cl.wait_for(lambda c: c.online("lab-1") and c.online("lab-2"), timeout=5)
    scenario = load_scenario(_write(tmp_path, WAITING), cluster=cl)
    killer: list[threading.Thread] = []

    def on_event(event: StepEvent) -> None:
        if event.status == "running" and event.step.startswith("wait on lab-2"):
            # killed while the step runs: before or after its request reaches lab-2
            killer.append(threading.Thread(target=lab2.kill))
            killer[0].start()

    report = run_scenario(scenario, runtime=cl, on_event=on_event)
    killer[0].join(10)
    step = report.steps[-1]
    assert (step.status, step.code) == (FAILED, "host_unreachable"), step
    assert "lab-2" in step.message
    # the host's offline window and one tick, not the step's 30 s
    assert step.elapsed < cl.aio.config.offline_after + 3.0, step
    uart = cl.device("lab-1/same70-xplained", "UART0")
    cl.wait_for(lambda c: c.holders(uart) is None, timeout=5)


def test_a_stopped_cluster_scenario_releases_its_leases_on_every_host(
    lab: tuple[NatsServer, Cluster],
) -> None:
    _server, cl = lab
    scenario = load_scenario(LAB, cluster=cl)
    stop = threading.Event()

    def on_event(event: StepEvent) -> None:
        if event.status == "running" and event.step == "module-b takes a pin of lab-2's board":
            stop.set()  # as Ctrl-C does: the running step ends, the rest do not run

    report = run_scenario(scenario, runtime=cl, on_event=on_event, stop=stop)
    assert report.interrupted and not report.passed
    held = [s.name for s in report.steps if s.status == PASSED]
    assert "take lab-1's UART0" in held and "module-b takes a pin of lab-2's board" in held
    # lab-1's UART0 and lab-2's PIN1 were held when it stopped: both released
    cl.wait_for(lambda c: not any(i.owners for i in c.devices()), timeout=5)
