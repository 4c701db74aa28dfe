"""The command line on boards on serial ports: --port, ports, fs, and the REPL passthrough.

Boards: the MicroPython unix port behind socat ptys; the micro:bit (1.9.2) in QEMU for
the file operations on a firmware without ``os.stat``/``ilistdir``.
"""

from __future__ import annotations

import concurrent.futures
import json
import os
import select
import time
from pathlib import Path

import pytest
import serial.tools.list_ports
from serial.tools.list_ports_common import ListPortInfo

from actorhw import Runtime
from actorhw.api.runtime import BoardSpec
from actorhw.cli import main
from tests.integration.conftest import BootedMicrobit
from tests.integration.serial_boards import UnixBoardFactory

pytestmark = pytest.mark.timeout(120)


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_exec_and_devices_by_port_alone(
    unix_boards: UnixBoardFactory, capsys: pytest.CaptureFixture[str]
) -> None:
    b = unix_boards()
    code, out, err = run(capsys, "exec", "--port", str(b.path), "print(1+1)")
    assert (code, out) == (0, "2\n"), err
    code, out, err = run(capsys, "devices", "--port", str(b.path), "--json")
    assert code == 0, err
    assert [row["id"] for row in json.loads(out)] == ["BOARD"]
    code, out, err = run(capsys, "exec", "--port", str(b.path), "1/0")
    assert code == 4 and "ZeroDivisionError" in err


def test_ports_lists_known_usb_ids_and_probes(
    unix_boards: UnixBoardFactory,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    b = unix_boards()
    pico = ListPortInfo(str(b.path), skip_link_detection=True)
    pico.vid, pico.pid, pico.serial_number = 0x2E8A, 0x0005, "E661"
    other = ListPortInfo("/dev/ttyS0", skip_link_detection=True)
    monkeypatch.setattr(
        serial.tools.list_ports, "comports", lambda include_links=False: [other, pico]
    )
    code, out, _ = run(capsys, "ports", "--json")
    rows = json.loads(out)
    assert code == 0 and [r["device"] for r in rows] == [str(b.path)]
    assert rows[0]["port"] == "serial:E661" and "probe" not in rows[0]  # nothing opened
    code, out, _ = run(capsys, "ports", "--probe", "--json")
    (row,) = json.loads(out)
    assert row["probe"]["platform"] == "linux"
    assert row["probe"]["raw_paste"] is True
    assert row["probe"]["board"] == "micropython"
    # --port auto finds the one known board, by the same list.
    code, out, err = run(capsys, "exec", "--port", "auto", "print('auto')")
    assert (code, out) == (0, "auto\n"), err


def test_fs_round_trip(
    unix_boards: UnixBoardFactory, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    b = unix_boards()
    board_root = tmp_path / "board"
    board_root.mkdir()
    port = ["--port", str(b.path), "--board", "micropython"]
    # The unix port's files are the host's: work in a folder of our own.
    blob = os.urandom(20_000)
    src = tmp_path / "blob.bin"
    src.write_bytes(blob)
    rel = os.path.relpath(board_root, Path.cwd())
    assert run(capsys, "fs", "mkdir", f":{rel}/lib", *port)[0] == 0
    code, out, err = run(capsys, "fs", "cp", str(src), f":{rel}/lib/blob.bin", *port, "--json")
    assert code == 0, err
    assert json.loads(out)["result"]["bytes"] == 20_000
    assert (board_root / "lib" / "blob.bin").read_bytes() == blob
    code, out, err = run(capsys, "fs", "ls", f":{rel}/lib", *port, "--json")
    assert json.loads(out)["result"] == [{"name": "blob.bin", "is_dir": False, "size": 20_000}]
    back = tmp_path / "back.bin"
    assert run(capsys, "fs", "cp", f":{rel}/lib/blob.bin", str(back), *port)[0] == 0
    assert back.read_bytes() == blob
    tree = tmp_path / "src"
    (tree / "pkg").mkdir(parents=True)
    (tree / "main.py").write_text("print('main')\n")
    (tree / "pkg" / "util.py").write_text("X = 1\n")
    code, out, err = run(capsys, "fs", "sync", str(tree), f":{rel}/app", *port, "--json")
    assert json.loads(out)["result"]["copied"] == [f"{rel}/app/main.py", f"{rel}/app/pkg/util.py"]
    (tree / "main.py").write_text("print('changed')\n")
    code, out, err = run(capsys, "fs", "sync", str(tree), f":{rel}/app", *port, "--json")
    result = json.loads(out)["result"]
    assert (result["copied"], result["unchanged"]) == (
        [f"{rel}/app/main.py"],
        [f"{rel}/app/pkg/util.py"],
    )
    assert run(capsys, "fs", "rm", f":{rel}/app/main.py", *port)[0] == 0
    assert not (board_root / "app" / "main.py").exists()
    code, _out, err = run(capsys, "fs", "rm", f":{rel}/app/main.py", *port)
    assert code == 4 and "ENOENT" in err  # the board's OSError, not a crash


def test_fs_on_micropython_1_9_2(
    microbit: BootedMicrobit, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    pty = microbit.board.pty
    microbit.link.close()
    port = ["--port", pty, "--board", "microbit-usb"]
    data = os.urandom(1500)
    src = tmp_path / "data.bin"
    src.write_bytes(data)
    code, out, err = run(capsys, "fs", "cp", str(src), ":data.bin", *port, "--json")
    assert code == 0, err
    assert json.loads(out)["result"]["hash"].startswith("fnv1a32:")  # no hashlib on 1.9.2
    code, out, err = run(capsys, "fs", "ls", *port, "--json")
    assert {"name": "data.bin", "is_dir": False, "size": 1500} in json.loads(out)["result"]
    back = tmp_path / "back.bin"
    assert run(capsys, "fs", "cp", ":data.bin", str(back), *port)[0] == 0
    assert back.read_bytes() == data
    code, _, err = run(capsys, "fs", "mkdir", ":lib", *port)
    assert code == 1 and "flat file system" in err


def test_repl_passes_the_terminal_through(unix_boards: UnixBoardFactory) -> None:
    b = unix_boards()
    to_board_r, to_board_w = os.pipe()
    from_board_r, from_board_w = os.pipe()
    try:
        with Runtime.start(boards=[BoardSpec("micropython", "mp", port=str(b.path))]) as rt:
            with concurrent.futures.ThreadPoolExecutor(1) as pool:
                session = pool.submit(
                    rt.manager.execute_command,
                    "micropython",
                    "repl",
                    "mp",
                    {"stdin_fd": to_board_r, "stdout_fd": from_board_w},
                    timeout=30,
                )
                os.write(to_board_w, b"print(6 * 7)\r")
                seen = b""
                deadline = time.monotonic() + 10
                while b"42" not in seen:
                    ready, _, _ = select.select([from_board_r], [], [], deadline - time.monotonic())
                    assert ready, f"no answer from the REPL: {seen!r}"
                    seen += os.read(from_board_r, 4096)
                assert b">>> " in seen  # the friendly REPL, not the raw one
                os.write(to_board_w, b"\x1d")  # Ctrl-] leaves
                assert session.result(timeout=15)["status"] == "success"
            # The board is back in the raw REPL and serves calls as before.
            from actorhw.api.handles import Board

            with rt.lease(Board, rt.ids("mp").BOARD, owner="t") as board:
                assert board.exec("print('back')") == "back\n"
    finally:
        for fd in (to_board_r, to_board_w, from_board_r, from_board_w):
            os.close(fd)


def test_actorhw_repl_on_a_terminal(unix_boards: UnixBoardFactory) -> None:
    """``actorhw repl --port`` in a real terminal (a pty): type, see the answer, Ctrl-]."""
    import subprocess
    import sys

    b = unix_boards()
    master, slave = os.openpty()
    actorhw = Path(sys.executable).parent / "actorhw"
    proc = subprocess.Popen(
        [str(actorhw), "repl", "--port", str(b.path), "--board", "micropython"],
        stdin=slave,
        stdout=slave,
        stderr=slave,
        start_new_session=True,
    )
    os.close(slave)
    try:
        seen = b""

        def until(marker: bytes) -> None:
            nonlocal seen
            deadline = time.monotonic() + 30
            while marker not in seen:
                ready, _, _ = select.select([master], [], [], deadline - time.monotonic())
                assert ready, f"no {marker!r} from actorhw repl: {seen[-300:]!r}"
                seen += os.read(master, 4096)

        until(b">>> ")  # the friendly REPL, passed through
        os.write(master, b"print(6 * 7)\r")
        until(b"42")
        os.write(master, b"\x1d")  # Ctrl-] leaves
        until(b"left the REPL")
        assert proc.wait(timeout=30) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=10)
        os.close(master)
