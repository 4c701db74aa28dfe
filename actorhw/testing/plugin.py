"""The pytest plugin: boards as fixtures, picked by markers, one transcript per test.

Installed with actorhw (entry point ``pytest11``); nothing happens unless a test asks for
a fixture.  Select boards with ``--actorhw-board NAME[=PORT]`` (or ``actorhw_boards`` in
the ini file), then:

- ``board``: a leased, opened Board handle of one selected board, released after the test
  (also when it fails);
- ``each_board``: the same, but the test runs once per selected board;
- ``actorhw_target``: the board the test got (name, ids, runtime) without leasing a
  device, for boards that have no BOARD device;
- ``actorhw_device``: a factory of Belay-style device classes (actorhw.programming) on
  the test's board;
- ``actorhw_runtime``: a session-scoped Runtime over every selected board;
- ``actorhw_cluster``: the cluster of ``--actorhw-cluster``.

Markers: ``@pytest.mark.actorhw_board("microbit-*")`` picks boards by glob and
``@pytest.mark.actorhw_needs("display", "i2c")`` skips, with the reason, on boards
without those devices.  A failed test's report carries its board transcript.  Under
pytest-xdist every worker takes distinct boards (see actorhw.testing.pool).
See docs/testing.md.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Generator, Iterator
from typing import Any, TypeVar

import attrs
import pytest

from actorhw.api.runtime import Runtime
from actorhw.core.errors import ActorHwError
from actorhw.core.ids import DeviceId
from actorhw.testing.leaks import LEAK_GRACE, leftover_threads, no_leaks, sim_runtime
from actorhw.testing.options import (
    SelectedBoard,
    Settings,
    add_options,
    check_cluster_support,
    read_settings,
)
from actorhw.testing.pool import BoardPool
from actorhw.testing.transcript import RecordingBoard, RecordingRuntime, Transcript

__all__ = [
    "LEAK_GRACE",
    "Target",
    "actorhw_cluster",
    "actorhw_device",
    "actorhw_pool",
    "actorhw_runtime",
    "actorhw_settings",
    "actorhw_target",
    "board",
    "each_board",
    "leftover_threads",
    "no_leaks",
    "pytest_addoption",
    "pytest_configure",
    "pytest_generate_tests",
    "pytest_runtest_call",
    "pytest_runtest_makereport",
    "pytest_runtest_teardown",
    "sim_runtime",
]

D = TypeVar("D")

SETTINGS = pytest.StashKey[Settings]()
TRANSCRIPTS = pytest.StashKey[list[Transcript]]()
POOL = pytest.StashKey[BoardPool]()

#: The parameter ``each_board`` is parametrised over (a board's instance name).
PARAM = "actorhw_board_name"


def pytest_addoption(parser: pytest.Parser) -> None:
    """The ``--actorhw-*`` options and their ini twins (actorhw.testing.options)."""
    add_options(parser)


def pytest_configure(config: pytest.Config) -> None:
    """Register the markers; read and check the options (a usage error names the fault)."""
    config.addinivalue_line(
        "markers",
        "actorhw_board(*globs): run only on selected boards whose name matches a glob",
    )
    config.addinivalue_line(
        "markers",
        "actorhw_needs(*devices): skip on a board without these device kinds or names",
    )
    config.stash[SETTINGS] = read_settings(config)


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """Run a test that asks for ``each_board`` once per selected (matching) board."""
    if "each_board" not in metafunc.fixturenames:
        return
    settings = metafunc.config.stash[SETTINGS]
    marker = metafunc.definition.get_closest_marker("actorhw_board")
    boards = [b for b in settings.boards if marker is None or b.matches(marker.args)]
    xdist = metafunc.config.pluginmanager.hasplugin("xdist")
    params = [
        # --dist loadgroup keeps each board's tests on one worker: fewer hand-overs.
        pytest.param(b.name, id=b.name, marks=[pytest.mark.xdist_group(b.name)] if xdist else [])
        for b in boards
    ] or [pytest.param(None, id="no-board")]
    metafunc.parametrize(PARAM, params)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    """A failed phase's report gets the board transcripts of its test."""
    report = yield
    if report.failed:
        for transcript in item.stash.get(TRANSCRIPTS, []):
            transcript.flush()
            report.sections.append((f"actorhw transcript: {transcript.board}", transcript.render()))
    return report


@pytest.hookimpl(wrapper=True)
def pytest_runtest_call(item: pytest.Item) -> Generator[None, None, None]:
    """A test of the session runtime gets a transcript of every board's state changes."""
    runtime = getattr(item, "funcargs", {}).get("actorhw_runtime")
    if not isinstance(runtime, Runtime):
        return (yield)
    transcripts = []
    for status in runtime.boards():
        transcript = Transcript(status.board, owner=f"pytest:{item.name}")
        transcript.follow(runtime.subscribe())
        transcripts.append(transcript)
    item.stash.setdefault(TRANSCRIPTS, []).extend(transcripts)
    try:
        return (yield)
    finally:
        for transcript in transcripts:
            transcript.close()


@pytest.hookimpl(trylast=True)
def pytest_runtest_teardown(item: pytest.Item) -> None:
    """After every test (board tests or not), give back boards another process waits for."""
    pool = item.config.stash.get(POOL, None)
    if pool is not None:
        pool.give_back(only_wanted=True)


# --- session fixtures ---------------------------------------------------------------------


@pytest.fixture(scope="session")
def actorhw_settings(pytestconfig: pytest.Config) -> Settings:
    """The plugin's settings: selected boards, folders, timeouts."""
    return pytestconfig.stash[SETTINGS]


@pytest.fixture(scope="session")
def actorhw_pool(actorhw_settings: Settings, pytestconfig: pytest.Config) -> Iterator[BoardPool]:
    """The boards this process (this xdist worker) holds; all released at the end."""
    pool = BoardPool(
        actorhw_settings,
        worker=os.environ.get("PYTEST_XDIST_WORKER", "main"),
        run_id=os.environ.get("PYTEST_XDIST_TESTRUNUID"),
    )
    pytestconfig.stash[POOL] = pool
    try:
        yield pool
    finally:
        del pytestconfig.stash[POOL]
        pool.close()


@pytest.fixture(scope="session")
def actorhw_runtime(actorhw_pool: BoardPool) -> Runtime:
    """A Runtime over every selected board, up for the whole session (of this worker)."""
    if not actorhw_pool.boards:
        pytest.fail(_NO_BOARDS, pytrace=False)
    return actorhw_pool.take_all()


@pytest.fixture(scope="session")
def actorhw_cluster(actorhw_settings: Settings, actorhw_pool: BoardPool) -> Iterator[Any]:
    """The cluster of ``--actorhw-cluster URL``, joined for the session (as the owner
    ``pytest:WORKER``); closed at the end, which releases its leases."""
    if actorhw_settings.cluster is None:
        pytest.fail("no cluster: pass --actorhw-cluster URL or set actorhw_cluster", pytrace=False)
    check_cluster_support()
    from actorhw.cluster import Cluster  # only with cluster support installed

    cluster = Cluster.connect(actorhw_settings.cluster, owner=f"pytest:{actorhw_pool.worker}")
    try:
        yield cluster
    finally:
        cluster.close()


# --- per-test fixtures ----------------------------------------------------------------------


@attrs.frozen
class Target:
    """The board a test got: which one, its ids, the runtime it runs in, its transcript."""

    board: SelectedBoard
    runtime: Runtime
    transcript: Transcript

    @property
    def name(self) -> str:
        """The board's instance name."""
        return self.board.name

    @property
    def ids(self) -> type[DeviceId]:
        """The board's device id enum."""
        return self.runtime.ids(self.board.name)

    @property
    def owner(self) -> str:
        """The owner name of this test's leases: ``pytest:TEST``."""
        return self.transcript.owner


@pytest.fixture
def actorhw_target(request: pytest.FixtureRequest, actorhw_pool: BoardPool) -> Iterator[Target]:
    """One selected board for this test (matching its markers), held until it ends."""
    # A test that uses ``board`` (or the device factory) needs a board that runs code.
    needs_code = "board" in request.fixturenames
    candidates = _candidates(request, actorhw_pool.boards, board_device=needs_code)
    holding, chosen = actorhw_pool.take(candidates)
    transcript = Transcript(chosen.name, owner=_owner(request))
    transcript.follow(holding.runtime.subscribe())
    request.node.stash.setdefault(TRANSCRIPTS, []).append(transcript)
    try:
        yield Target(chosen, holding.runtime, transcript)
    finally:
        transcript.close()
        actorhw_pool.done(chosen)


@pytest.fixture
def board(request: pytest.FixtureRequest, actorhw_target: Target) -> Iterator[RecordingBoard]:
    """A leased, opened Board handle of one selected board; released after the test."""
    target = actorhw_target
    device = target.ids[str(target.board.board_device())]
    handle = RecordingBoard(target.runtime, device, timeout=10.0, transcript=target.transcript)
    handle.acquire(target.owner)
    try:
        handle.open()
        yield handle
    finally:
        if handle.lease is not None:
            handle.release()


@pytest.fixture
def each_board(board: RecordingBoard, actorhw_board_name: str | None) -> RecordingBoard:
    """``board``, with the test run once per selected board (ids are the board names)."""
    return board


@pytest.fixture
def actorhw_device(
    request: pytest.FixtureRequest, board: RecordingBoard
) -> Iterator[Callable[..., Any]]:
    """A factory of Belay-style device classes on the test's board: ``make(Cls, **kw)``.

    The device leases the board's BOARD device (SHARED, beside ``board``), its traffic
    goes into the test's transcript, and it is closed after the test.
    """
    made: list[Any] = []

    def make(cls: type[D], **kwargs: Any) -> D:
        owner = kwargs.pop("owner", f"{_owner(request)}:{cls.__name__}")
        runtime = RecordingRuntime(board.runtime, board.transcript)
        device = cls(runtime, board.device, owner=owner, **kwargs)  # type: ignore[call-arg]
        made.append(device)
        return device

    try:
        yield make
    finally:
        errors = []
        for device in reversed(made):
            try:
                device.close()
            except ActorHwError as e:
                errors.append(e)
        if errors:
            raise errors[0]


def _owner(request: pytest.FixtureRequest) -> str:
    return f"pytest:{request.node.name}"


_NO_BOARDS = (
    "no boards selected: pass --actorhw-board NAME[=PORT] (e.g. microbit-qemu) "
    "or list them under actorhw_boards in the ini file"
)


def _candidates(
    request: pytest.FixtureRequest, boards: tuple[SelectedBoard, ...], *, board_device: bool
) -> list[SelectedBoard]:
    """The selected boards this test may run on; skips (with the reason) if none."""
    if not boards:
        pytest.fail(_NO_BOARDS, pytrace=False)
    node = request.node
    param = getattr(getattr(node, "callspec", None), "params", {}).get(PARAM, "-")
    marker = node.get_closest_marker("actorhw_board")
    chosen = [b for b in boards if marker is None or b.matches(marker.args)]
    if param != "-":
        chosen = [b for b in chosen if b.name == param]
    if not chosen:
        pytest.skip(
            f"no selected board matches {', '.join(marker.args) if marker else '-'} "
            f"(selected: {', '.join(b.name for b in boards)})"
        )
    needs = [str(n) for m in node.iter_markers("actorhw_needs") for n in m.args]
    fit = [b for b in chosen if not b.missing(needs)]
    if not fit:
        lacks = "; ".join(f"{b.name} lacks {', '.join(b.missing(needs))}" for b in chosen)
        pytest.skip(f"needs {', '.join(needs)}: {lacks}")
    if board_device:
        fit = [b for b in fit if b.has_board_device]
        if not fit:
            pytest.skip(
                "the board fixture needs a board that runs code (a BOARD device): "
                f"{', '.join(b.name for b in chosen)} has none; use actorhw_target"
            )
    return fit
