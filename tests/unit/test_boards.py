"""Board files: bundled boards, user boards picked up, malformed files named precisely."""

from __future__ import annotations

from pathlib import Path

import pytest

from actorhw.core.errors import BoardDefinitionError, NoSuchBoardError
from actorhw.core.ids import DeviceKind
from actorhw.core.lifecycle import SharingPolicy
from actorhw.drivers.definitions import BoardCatalog, load_board_file

pytestmark = pytest.mark.timeout(20)

GOOD = """\
[board]
name = "my-board"
enum = "MyBoard"
driver = "sim"

[devices]
UART0 = { kind = "uart" }
PIN3 = { kind = "gpio", policy = "single", pin = 3 }
"""


def test_bundled_boards() -> None:
    catalog = BoardCatalog.discover()
    assert {"same70-xplained", "stm32f4-discovery", "microbit", "microbit-qemu"} <= set(
        catalog.boards
    )
    same70 = catalog.get("same70-xplained")
    assert [d.name for d in same70.devices] == [
        "UART0", "UART1", "UART2", "LED_GREEN", "LED_RED", "LED_BLUE", "I2C0", "I2C1",
        "I2C2", "SPI0", "SPI1", "ADC0", "DAC0", "PWM0",
    ]  # fmt: skip
    qemu = catalog.get("microbit-qemu")
    assert {d.name for d in qemu.devices} == {d.name for d in catalog.get("microbit").devices}
    kinds = {d.kind for d in qemu.devices}
    assert {DeviceKind.GPIO, DeviceKind.DISPLAY, DeviceKind.BUTTON, DeviceKind.BOARD} <= kinds


def test_user_board_picked_up_without_code(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "my-board.toml").write_text(GOOD)
    monkeypatch.setenv("ACTORHW_BOARDS_PATH", str(tmp_path))
    board = BoardCatalog.discover().get("my-board")
    pin = board.devices[1]
    assert (pin.kind, pin.policy, pin.options) == (
        DeviceKind.GPIO,
        SharingPolicy.SINGLE,
        {"pin": 3},
    )
    assert board.devices[0].policy is SharingPolicy.SINGLE  # uart default


def test_user_board_runs(tmp_path: Path) -> None:
    from actorhw import Gpio, Runtime

    (tmp_path / "my-board.toml").write_text(GOOD)
    with Runtime.start(boards=["my-board"], boards_dirs=[tmp_path]) as rt:
        ids = rt.ids("my-board")
        with rt.lease(Gpio, ids.PIN3, owner="t") as pin:
            pin.write(True)
            assert pin.read() is True


@pytest.mark.parametrize(
    ("text", "line", "key", "problem"),
    [
        (GOOD.replace('kind = "uart"', 'kind = "usart"'), 7, "devices.UART0.kind", "unknown kind"),
        (GOOD.replace('policy = "single"', 'policy = "many"'), 8, "devices.PIN3.policy",
         "unknown policy"),
        (GOOD.replace('enum = "MyBoard"\n', ""), 1, "board", "missing required key 'enum'"),
        (GOOD.replace('name = "my-board"', "name = 7"), 2, "board.name", "must be a string"),
        (GOOD.replace('driver = "sim"', 'driver = "sim"\ncolour = "red"'), 5, "board.colour",
         "unknown key"),
        (GOOD.replace("UART0 = {", "uart zero = {"), 7, "", "invalid TOML"),
        (GOOD.replace("UART0 = {", "_UART0 = {"), 7, "devices._UART0", "identifier"),
        (GOOD + "[extra]\nx = 1\n", 9, "extra", "unknown table"),
        (GOOD.replace('UART0 = { kind = "uart" }', 'UART0 = "uart"'), 7, "devices.UART0",
         "inline table"),
    ],
)  # fmt: skip
def test_malformed_board_names_file_line_key(
    tmp_path: Path, text: str, line: int, key: str, problem: str
) -> None:
    path = tmp_path / "bad.toml"
    path.write_text(text)
    with pytest.raises(BoardDefinitionError) as e:
        load_board_file(path)
    assert e.value.file == str(path)
    assert e.value.line == line, str(e.value)
    assert e.value.key == key
    assert problem in str(e.value)
    assert f"{path}:{line}:" in str(e.value)


def test_duplicate_board_name_names_both_files(tmp_path: Path) -> None:
    (tmp_path / "a.toml").write_text(GOOD.replace("my-board", "same70-xplained"))
    with pytest.raises(BoardDefinitionError, match=r"already defined in .*same70-xplained.toml"):
        BoardCatalog.discover([tmp_path])


def test_unknown_board_lists_known() -> None:
    with pytest.raises(NoSuchBoardError, match=r"known boards: .*\bmicrobit, microbit-qemu, "):
        BoardCatalog.discover().get("arduino")
