"""The seeds' DeviceDriverManager API on the actors, with the simulated driver."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from actorhw import Runtime
from actorhw.api.manager import DeviceDriverManager
from actorhw.core.errors import (
    DriverError,
    InvalidArgumentError,
    InvalidTransitionError,
    NoSuchBoardError,
    UnsupportedOperationError,
)
from actorhw.core.events import Subscription
from actorhw.core.lifecycle import DeviceState
from actorhw.core.messages import StateChanged

pytestmark = pytest.mark.timeout(30)

BOARD = "same70-xplained"
SIM_BOARDS = {"microbit", "same70-xplained", "stm32f4-discovery"}
S = DeviceState


@pytest.fixture
def rt() -> Iterator[Runtime]:
    runtime = Runtime.start()
    try:
        yield runtime
    finally:
        runtime.stop()


@pytest.fixture
def manager(rt: Runtime) -> DeviceDriverManager:
    return rt.manager


def states_of(sub: Subscription, board: str) -> list[tuple[S, S]]:
    """The distinct (from, to) edges the board's devices took, in order."""
    edges: list[tuple[S, S]] = []
    for event in sub.drain():
        if isinstance(event, StateChanged) and type(event.device).board == board:
            edge = (event.from_state, event.to_state)
            if edge not in edges:
                edges.append(edge)
    return edges


def test_scan_finds_every_board_of_the_driver(manager: DeviceDriverManager) -> None:
    result = manager.scan_devices("sim")
    assert result["status"] == "success" and result["driver"] == "sim" and not result["errors"]
    assert {d["device_id"] for d in result["devices"]} == SIM_BOARDS
    same70 = next(d for d in result["devices"] if d["device_id"] == BOARD)
    assert same70 == {
        "device_id": BOARD,
        "driver": "sim",
        "definition": BOARD,
        "title": "Atmel SAME70 Xplained",
        "state": "discovered",
    }
    # a second scan lists them as they are and moves nothing
    again = manager.scan_devices("sim")
    assert {d["state"] for d in again["devices"]} == {"discovered"}


def test_the_seeds_walkthrough(rt: Runtime, manager: DeviceDriverManager) -> None:
    with rt.subscribe() as sub:
        device = manager.scan_devices("sim")["devices"][1]
        assert manager.initialize_device("sim", device) == {
            "driver": "sim",
            "device_id": device["device_id"],
            "status": "success",
            "state": "initialized",
        }
        connected = manager.connect_device("sim", device)
        assert connected["status"] == "success" and connected["state"] == "connected"
        assert connected["steps"] == ["connect"]
        result = manager.execute_command("sim", "status", device_id=device["device_id"], args={})
        assert result == {
            "driver": "sim",
            "device_id": device["device_id"],
            "command": "status",
            "status": "success",
            "result": {"board": device["device_id"], "unplugged": False, "hung": False},
        }
        closed = manager.close_device("sim", device)
        assert closed["status"] == "success" and closed["state"] == "disconnected"
    assert states_of(sub, device["device_id"]) == [
        (S.UNKNOWN, S.DISCOVERED),
        (S.DISCOVERED, S.INITIALIZED),
        (S.INITIALIZED, S.CONNECTED),
        (S.CONNECTED, S.DISCONNECTED),
    ]


def test_connecting_an_unknown_device_scans_and_initializes_first(
    rt: Runtime, manager: DeviceDriverManager
) -> None:
    assert manager.device_state("sim", BOARD) is S.UNKNOWN
    result = manager.connect_device("sim", BOARD)
    assert result["status"] == "success" and result["state"] == "connected"
    assert result["steps"] == ["scan", "initialize", "connect"]
    assert rt.board_status(BOARD).state is S.CONNECTED
    assert {d.state for d in rt.devices(BOARD)} == {S.CONNECTED}


def test_connecting_a_discovered_device_initializes_it_first(
    manager: DeviceDriverManager,
) -> None:
    manager.scan_devices("sim")
    assert manager.connect_device("sim", BOARD)["steps"] == ["initialize", "connect"]
    assert manager.device_state("sim", BOARD) is S.CONNECTED


def test_a_disconnected_device_is_initialized_again_on_connect(
    manager: DeviceDriverManager,
) -> None:
    manager.connect_device("sim", BOARD)
    manager.close_device("sim", BOARD)
    assert manager.connect_device("sim", BOARD)["steps"] == ["initialize", "connect"]


@pytest.mark.parametrize(
    ("setup", "operation", "edge"),
    [
        ([], "initialize", "UNKNOWN -> INITIALIZED"),
        ([], "command", "UNKNOWN -> ACTIVE"),
        (["scan"], "command", "DISCOVERED -> ACTIVE"),
        (["scan"], "close", "DISCOVERED -> DISCONNECTED"),
        (["connect"], "initialize", "CONNECTED -> INITIALIZED"),
        (["connect", "close"], "close", "DISCONNECTED -> DISCONNECTED"),
        (["connect", "close"], "command", "DISCONNECTED -> ACTIVE"),
    ],
)
def test_an_operation_in_the_wrong_state_is_refused_by_the_table(
    rt: Runtime, manager: DeviceDriverManager, setup: list[str], operation: str, edge: str
) -> None:
    steps = {
        "scan": lambda: manager.scan_devices("sim"),
        "connect": lambda: manager.connect_device("sim", BOARD),
        "close": lambda: manager.close_device("sim", BOARD),
        "initialize": lambda: manager.initialize_device("sim", BOARD),
        "command": lambda: manager.execute_command("sim", "status", device_id=BOARD),
    }
    for step in setup:
        steps[step]()
    before = manager.device_state("sim", BOARD)
    with pytest.raises(InvalidTransitionError, match=edge):
        steps[operation]()
    assert manager.device_state("sim", BOARD) is before


def test_reset_is_refused_outside_connected_active_and_error(
    manager: DeviceDriverManager,
) -> None:
    manager.scan_devices("sim")
    with pytest.raises(InvalidTransitionError, match="cannot reset a board that is DISCOVERED"):
        manager.reset_device("sim", BOARD)


def test_a_failed_command_moves_the_device_to_error_and_the_seeds_recovery_works(
    rt: Runtime, manager: DeviceDriverManager
) -> None:
    manager.connect_device("sim", BOARD)
    rt.inject_fault(BOARD, "unplug")
    result = manager.execute_command("sim", "status", device_id=BOARD)
    assert result["status"] == "error"
    assert (result["code"], result["state"]) == ("link_lost", "error")
    assert "unplugged" in result["message"]
    assert rt.board_status(BOARD).state is S.ERROR
    assert {d.state for d in rt.devices(BOARD)} == {S.DISCONNECTED}
    # the seeds' recovery: reset, initialize, connect
    assert manager.reset_device("sim", BOARD)["state"] == "disconnected"
    assert manager.initialize_device("sim", BOARD)["state"] == "initialized"
    assert manager.connect_device("sim", BOARD)["state"] == "connected"
    assert manager.execute_command("sim", "status", device_id=BOARD)["status"] == "success"


def test_a_soft_reset_keeps_the_device_connected(manager: DeviceDriverManager) -> None:
    manager.connect_device("sim", BOARD)
    manager.execute_command("sim", "start", device_id=BOARD, args={"interval": 0.01})
    assert manager.device_state("sim", BOARD) is S.ACTIVE
    assert manager.reset_device("sim", BOARD)["state"] == "connected"  # the stream stopped


def test_an_unknown_command_lists_the_supported_ones(manager: DeviceDriverManager) -> None:
    manager.connect_device("sim", BOARD)
    with pytest.raises(UnsupportedOperationError) as info:
        manager.execute_command("sim", "launch", device_id=BOARD)
    assert "driver 'sim' has no command 'launch'; supported: echo (" in str(info.value)
    assert info.value.supported == ["echo", "start", "status", "stop"]  # type: ignore[attr-defined]
    assert manager.device_state("sim", BOARD) is S.CONNECTED
    assert manager.supported_commands("can-virtual").keys() >= {"send", "receive", "start"}


def test_caller_mistakes_are_raised_before_anything_changes(
    rt: Runtime, manager: DeviceDriverManager
) -> None:
    with pytest.raises(DriverError, match=r"no driver named 'nope'; loaded: .*sim"):
        manager.scan_devices("nope")
    with pytest.raises(NoSuchBoardError, match="driver 'sim' has no device 'mars'; its devices: "):
        manager.connect_device("sim", "mars")
    with pytest.raises(InvalidArgumentError, match="a device is its device_id or a device dict"):
        manager.connect_device("sim", 42)  # type: ignore[arg-type]
    with pytest.raises(InvalidArgumentError, match="give device_id: driver 'sim' has 0 connected"):
        manager.execute_command("sim", "status")
    manager.connect_device("sim", BOARD)
    manager.connect_device("sim", "microbit")
    with pytest.raises(InvalidArgumentError, match=r"has 2 connected devices \(microbit, same70"):
        manager.execute_command("sim", "status")
    with pytest.raises(InvalidArgumentError, match="args must be a dict with str keys"):
        manager.execute_command("sim", "echo", device_id=BOARD, args={1: 2})  # type: ignore[dict-item]
    with pytest.raises(InvalidArgumentError, match="attached by driver 'sim', not 'can-virtual'"):
        manager.connect_device("can-virtual", BOARD)
    with pytest.raises(InvalidArgumentError, match="timeout must be a positive number"):
        manager.connect_device("sim", BOARD, timeout=0)
    assert manager.device_state("sim", BOARD) is S.CONNECTED


def test_a_board_started_by_the_runtime_is_a_device_of_its_driver() -> None:
    with Runtime.start(boards=[BOARD]) as rt:
        assert rt.manager.device_state("sim", BOARD) is S.CONNECTED
        result = rt.manager.execute_command("sim", "echo", args={"n": [1, 2]})
        assert result["device_id"] == BOARD and result["result"] == {"n": [1, 2]}


def test_cleanup_all_devices_closes_everything_in_use(
    rt: Runtime, manager: DeviceDriverManager
) -> None:
    manager.connect_device("sim", BOARD)
    manager.connect_device("sim", "microbit")
    manager.execute_command("sim", "start", device_id="microbit", args={"interval": 0.01})
    manager.scan_devices("can-virtual")  # DISCOVERED: nothing to clean up
    result = manager.cleanup_all_devices()
    assert result["status"] == "success"
    assert set(result["results"]) == {BOARD, "microbit"}
    assert all(r["state"] == "disconnected" for r in result["results"].values())
    assert manager.device_state("can-virtual", "can-virtual") is S.DISCOVERED
