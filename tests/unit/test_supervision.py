"""Actor crashes are detected and the actor restarted under its stable name (sim boards).

Crashes here are real exceptions inside actors: a tell that raises (injected with
Runtime.inject_crash) and an on_start that raises (a driver plugin whose first
peripheral() fails), where pykka itself calls no on_failure.
"""

from __future__ import annotations

import textwrap
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from actorhw import Runtime
from actorhw.api.handles import Led, Uart
from actorhw.core.errors import DeviceResetError, RuntimeStoppedError
from actorhw.core.events import Subscription
from actorhw.core.lifecycle import DeviceState
from actorhw.core.messages import BoardEvent
from actorhw.core.recovery import RecoveryPolicy

pytestmark = pytest.mark.timeout(30)
WAIT = 10.0
S = DeviceState


def _event(what: str, board: str | None = None) -> Any:
    def match(e: object) -> bool:
        return isinstance(e, BoardEvent) and e.what == what and (board is None or e.board == board)

    return match


@pytest.fixture
def rt() -> Iterator[Runtime]:
    with Runtime.start(boards=["same70-xplained", "microbit"]) as rt:
        yield rt


@pytest.fixture
def events(rt: Runtime) -> Iterator[Subscription]:
    with rt.subscribe() as sub:
        yield sub


def test_a_device_actor_that_raises_in_a_tell_is_restarted_and_keeps_its_leases(
    rt: Runtime, events: Subscription
) -> None:
    ids = rt.ids("same70-xplained")
    uart = rt.lease(Uart, ids.UART0, owner="a")
    uart.write(b"before")
    rt.inject_crash(ids.UART0, reason="bug")
    restarted = events.wait_for(_event("actor_restarted", "same70-xplained"), timeout=WAIT)
    assert "UART0" in restarted.reason
    info = rt.info(ids.UART0)
    assert info.owners == ("a",)
    assert info.state is S.ACTIVE  # still opened by its lease
    uart.write(b"after")  # the same lease and handle work on the new actor
    assert rt.info(ids.UART0).generation == info.generation
    uart.close()
    uart.release()
    assert rt.info(ids.UART0).owners_count == 0


def test_a_board_actor_that_raises_in_a_tell_is_restarted_and_comes_back(
    rt: Runtime, events: Subscription
) -> None:
    ids = rt.ids("same70-xplained")
    led = rt.lease(Led, ids.LED_GREEN, owner="a")
    led.on()
    other = rt.ids("microbit")
    rt.inject_crash("same70-xplained")
    events.wait_for(_event("actor_restarted", "same70-xplained"), timeout=WAIT)
    assert rt.wait_for_board("same70-xplained", S.CONNECTED, timeout=WAIT).state is S.CONNECTED
    # The lease survived; the board's state did not, so the handle must open again.
    assert rt.info(ids.LED_GREEN).owners == ("a",)
    with pytest.raises(DeviceResetError, match="open it again"):
        led.on()
    led.open()
    led.on()
    assert led.is_on() is True
    led.release()
    # The other board was not touched.
    assert rt.board_status("microbit").state is S.CONNECTED
    assert rt.board_status("microbit").restarts == 0
    assert rt.info(other.BUTTON_A).state is S.CONNECTED


def test_a_registry_crash_restarts_the_core_services_after_it_and_boards_reregister(
    rt: Runtime, events: Subscription
) -> None:
    ids = rt.ids("same70-xplained")
    before = len(rt.devices())
    rt.inject_crash("registry")
    events.wait_for(_event("actor_restarted", "registry"), timeout=WAIT)
    # Lookups reach the new registry by its stable name; every board re-registered.
    with rt.lease(Uart, ids.UART0, owner="b") as uart:
        uart.write(b"x")
    assert len(rt.devices()) == before


def test_an_actor_that_raises_in_on_start_is_restarted(tmp_path: Path) -> None:
    (tmp_path / "drv_flaky.py").write_text(
        textwrap.dedent(
            '''
            from actors.sim.drv_sim import SimBoard

            class FlakyBoard(SimBoard):
                """Its first peripheral() raises: the board actor's on_start fails once."""

                name = "flaky"
                failures = 1

                def peripheral(self, spec):
                    if type(self).failures:
                        type(self).failures -= 1
                        raise RuntimeError("flaky driver: first start fails")
                    return super().peripheral(spec)
            '''
        )
    )
    boards = tmp_path / "boards"
    boards.mkdir()
    (boards / "flaky.toml").write_text(
        '[board]\nname = "flaky"\ntitle = "a board whose first start crashes"\n'
        'enum = "Flaky"\ndriver = "flaky"\n[devices]\nLED0 = { kind = "led" }\n'
    )
    with Runtime.start(boards_dirs=[boards], drivers_dirs=[tmp_path]) as rt:
        with rt.subscribe() as sub:
            (status,) = rt.add_boards(["flaky"], timeout=WAIT)
            assert status.state is S.CONNECTED
            crashed = sub.wait_for(_event("actor_crashed", "flaky"), timeout=WAIT)
            assert "first start fails" in crashed.reason
        with rt.lease(Led, rt.ids("flaky").LED0, owner="a") as led:
            led.on()


def test_root_intensity_gives_up_and_stops_the_tree(rt: Runtime, events: Subscription) -> None:
    for n in range(4):  # three restarts are allowed in 60 s; the fourth crash stops all
        rt.inject_crash("registry", reason=f"crash {n}")
        if n < 3:
            events.wait_for(_event("actor_restarted", "registry"), timeout=WAIT)
    gave_up = events.wait_for(_event("root_gave_up"), timeout=WAIT)
    assert "3 restarts in 60 s" in gave_up.reason
    rt.stop()  # waits for the tree; safe although the supervisor stopped itself
    with pytest.raises(RuntimeStoppedError):
        rt.devices()


def test_quarantine_after_the_intensity_and_an_operator_reset(tmp_path: Path) -> None:
    (tmp_path / "drv_broken.py").write_text(
        textwrap.dedent(
            '''
            from actorhw.core.errors import LinkLostError
            from actors.sim.drv_sim import SimBoard

            class BrokenBoard(SimBoard):
                """Connects once; after an unplug every reconnect fails until fixed."""

                name = "broken"
                fixed = False

                def connect(self, *, timeout):
                    if self.unplugged and not type(self).fixed:
                        raise LinkLostError("the cable is cut", board=self.board)
                    super().connect(timeout=timeout)

                def reset(self, *, timeout):
                    self.connect(timeout=timeout)

                def power_cycle(self, *, timeout):
                    pass  # power comes back; the cable stays cut
            '''
        )
    )
    boards = tmp_path / "boards"
    boards.mkdir()
    (boards / "broken.toml").write_text(
        '[board]\nname = "broken"\ntitle = "a board that fails every restart"\n'
        'enum = "Broken"\ndriver = "broken"\n[devices]\nLED0 = { kind = "led" }\n'
    )
    policy = RecoveryPolicy(max_restarts=3, window=30, min_backoff=0.01, max_backoff=0.05)
    with Runtime.start(
        ["broken", "microbit"], boards_dirs=[boards], drivers_dirs=[tmp_path], recovery=policy
    ) as rt:
        led0 = rt.ids("broken").LED0
        with rt.subscribe() as sub, rt.lease(Led, led0, owner="a") as led:
            rt.inject_fault("broken", "unplug")
            with pytest.raises(Exception, match="unplugged"):
                led.on()  # the fault is seen: recovery starts and fails every time
            seen = sub.until(_event("quarantined", "broken"), timeout=WAIT)
            assert [e.what for e in seen if _event("recovering", "broken")(e)] == ["recovering"] * 3
            status = rt.board_status("broken")
            assert status.quarantined and status.state is S.DISCONNECTED
            assert "quarantined after 3 restarts" in status.reason
            # Others are unaffected.
            assert rt.board_status("microbit").state is S.CONNECTED
            sys_driver = rt.drivers.get("broken")
            sys_driver.fixed = True  # type: ignore[attr-defined]
            assert rt.reset_board("broken", timeout=WAIT).state is S.CONNECTED
            led.open()
            led.on()


def test_the_supervision_docs_example_prints_what_the_docs_say(
    capsys: pytest.CaptureFixture[str],
) -> None:
    import runpy

    runpy.run_path(str(Path(__file__).parents[2] / "docs/examples/supervision.py"))
    out = capsys.readouterr().out
    assert "during the fault: link_lost" in out
    assert "after recovery: device_was_reset" in out
    assert "LED on after reopen: True" in out
    assert "owners after the restart: ('demo',)" in out
