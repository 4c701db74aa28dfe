"""Attach your own MicroPython board: a port is all it takes.

Run it with the board's port: ``python docs/examples/serial_board.py /dev/ttyACM0``
(any port form: a path, socket://host:port, serial:NUMBER, VID:PID, auto).
"""
# example-test: tests/integration/test_serial_unix.py
# ruff: noqa: SIM117

import sys

PORT = sys.argv[1] if len(sys.argv) > 1 else "auto"

# --8<-- [start:example]
from actorhw import Board, BoardSpec, Runtime  # noqa: E402

with Runtime.start(boards=[BoardSpec("micropython", port=PORT)]) as rt:
    with rt.lease(Board, rt.ids("micropython").BOARD, owner="me") as board:
        print(board.exec("import sys\nprint(sys.platform, 1 + 1)"))
# --8<-- [end:example]
