"""A board file of your own, its id enum, and what a wrong id says."""

from pathlib import Path

from actorhw import Runtime
from actorhw.errors import NoSuchDeviceError

HERE = Path(__file__).parent

with Runtime.start(boards=["my-board", "same70-xplained"], boards_dirs=[HERE / "boards"]) as rt:
    MyBoard = rt.ids("my-board")
    print(f"ids of my-board: {[i.name for i in MyBoard]}")
    print(f"PIN3 policy: {rt.info(MyBoard.PIN3).policy.name}")

    # ids of two boards never compare equal, even with the same name
    Same70 = rt.ids("same70-xplained")
    print(f"my-board UART0 == same70 UART0: {MyBoard.UART0 == Same70.UART0}")

    # a string is not an id: lookup is by enum member only, and the error says so
    try:
        rt.info("my-board.UART0")  # type: ignore[arg-type]
    except NoSuchDeviceError as e:
        print(f"{e.code}: {e.message}")
