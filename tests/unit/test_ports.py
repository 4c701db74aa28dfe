"""Port forms, USB lookup and the power hook (no real ports: a fake OS port list)."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest
from serial.tools.list_ports_common import ListPortInfo

from actorhw.core.errors import (
    DeviceUnavailableError,
    InvalidArgumentError,
    LinkError,
    TimedOutError,
)
from actorhw.links.ports import list_candidates, parse_port, resolve_port
from actorhw.links.power import PowerHook


def port(device: str, vid: int | None = None, pid: int | None = None, **kw: str) -> ListPortInfo:
    info = ListPortInfo(device, skip_link_detection=True)
    info.vid, info.pid = vid, pid
    for key, value in kw.items():
        setattr(info, key, value)
    return info


PICO = port("/dev/ttyACM0", 0x2E8A, 0x0005, serial_number="E6614103E7", location="1-1.2:1.0")
ESP = port("/dev/ttyUSB0", 0x10C4, 0xEA60, serial_number="0001")
MOUSE = port("/dev/ttyS0")


@pytest.mark.parametrize(
    ("text", "kind", "value"),
    [
        ("/dev/ttyACM0", "path", "/dev/ttyACM0"),
        ("COM3", "path", "COM3"),
        ("socket://localhost:7000", "url", "socket://localhost:7000"),
        ("rfc2217://host:2217", "url", "rfc2217://host:2217"),
        ("serial:E6614103E7", "serial", "E6614103E7"),
        ("location:1-1.2", "location", "1-1.2"),
        ("2e8a:0005", "vidpid", "2e8a:0005"),
        ("auto", "auto", ""),
    ],
)
def test_port_forms(text: str, kind: str, value: str) -> None:
    spec = parse_port(text)
    assert (spec.kind, spec.value) == (kind, value)
    assert spec.by_usb == (kind in ("serial", "vidpid", "location", "auto"))


@pytest.mark.parametrize("bad", ["", "  ", "serial:", "location:"])
def test_bad_port_values(bad: str) -> None:
    with pytest.raises(InvalidArgumentError):
        parse_port(bad)


def test_resolve_by_usb_identity() -> None:
    listed = [MOUSE, ESP, PICO]
    assert resolve_port("serial:E6614103E7", lister=lambda: listed) == "/dev/ttyACM0"
    assert resolve_port("2e8a:0005", lister=lambda: listed) == "/dev/ttyACM0"
    assert resolve_port("location:1-1.2", lister=lambda: listed) == "/dev/ttyACM0"
    assert resolve_port("/dev/ttyS9", lister=lambda: listed) == "/dev/ttyS9"  # as given
    with pytest.raises(DeviceUnavailableError, match="serial:NOPE"):
        resolve_port("serial:NOPE", board="b", lister=lambda: listed)
    with pytest.raises(DeviceUnavailableError):
        resolve_port("2e8a:0005:1", lister=lambda: listed)  # no second Pico


def test_auto_takes_the_one_known_board() -> None:
    assert resolve_port("auto", lister=lambda: [MOUSE, PICO]) == "/dev/ttyACM0"
    with pytest.raises(DeviceUnavailableError, match="no MicroPython board"):
        resolve_port("auto", lister=lambda: [MOUSE])
    with pytest.raises(InvalidArgumentError, match="2 MicroPython boards") as info:
        resolve_port("auto", lister=lambda: [PICO, ESP])
    assert info.value.candidates == ["/dev/ttyACM0", "/dev/ttyUSB0"]  # type: ignore[attr-defined]


def test_candidates_only_known_usb_ids_unless_all() -> None:
    found = list_candidates(lister=lambda: [MOUSE, ESP, PICO])
    assert [c.device for c in found] == ["/dev/ttyACM0", "/dev/ttyUSB0"]
    assert found[0].port_value == "serial:E6614103E7"
    assert found[0].to_dict()["vid"] == "2e8a"
    assert "Raspberry Pi" in (found[0].family or "")
    assert len(list_candidates(lister=lambda: [MOUSE], all_ports=True)) == 1


def test_power_hook_runs_with_its_environment(tmp_path: Path) -> None:
    out = tmp_path / "out"
    env = "os.environ['ACTORHW_POWER_ACTION'] + os.environ['ACTORHW_BOARD']"
    script = f"import os; open({str(out)!r}, 'w').write({env})"
    hook = PowerHook([sys.executable, "-c", script], board="b1", port="/dev/x")
    hook.run("cycle", timeout=10)
    assert out.read_text() == "cycleb1"
    assert hook.runs == 1


def test_power_hook_failures_are_typed() -> None:
    with pytest.raises(LinkError, match="exited with 3"):
        PowerHook([sys.executable, "-c", "raise SystemExit(3)"], board="b").run(timeout=10)
    with pytest.raises(TimedOutError):
        PowerHook([sys.executable, "-c", "import time; time.sleep(5)"], board="b").run(timeout=0.3)
    with pytest.raises(LinkError, match="could not start"):
        PowerHook("/nonexistent/relay on", board="b").run(timeout=1)
    with pytest.raises(InvalidArgumentError):
        PowerHook("", board="b")
    with pytest.raises(InvalidArgumentError):
        PowerHook([1, 2], board="b")  # type: ignore[list-item]
    with pytest.raises(InvalidArgumentError):
        PowerHook("x", board="b").run("explode", timeout=1)


def test_open_leaves_dtr_and_rts_alone_unless_asked(monkeypatch: pytest.MonkeyPatch) -> None:
    """pyserial asserts both lines in open(); an ESP32's auto-reset circuit resets on them."""
    import serial

    from actorhw.links.serial_port import open_serial

    touched: list[str] = []
    monkeypatch.setattr(serial.Serial, "_update_dtr_state", lambda self: touched.append("dtr"))
    monkeypatch.setattr(serial.Serial, "_update_rts_state", lambda self: touched.append("rts"))
    master, slave = os.openpty()
    try:
        path = os.ttyname(slave)
        port = open_serial(path, exclusive=False)
        assert touched == []  # left alone
        port.close()
        port = open_serial(path, exclusive=False, dtr=False, rts=False)
        assert sorted(touched) == ["dtr", "rts"]  # set, as a board definition asked
        assert port.dtr is False and port.rts is False
        port.close()
    finally:
        os.close(master)
        os.close(slave)
