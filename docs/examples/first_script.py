"""The first script of docs/getting-started.md: lease a UART, write, read it back."""

from actorhw import Runtime, Uart

with Runtime.start(boards=["same70-xplained"]) as rt:
    Same70 = rt.ids("same70-xplained")
    with rt.lease(Uart, Same70.UART0, owner="module-a") as uart:  # acquire + open
        uart.write(b"hello")
        print(f"read back: {uart.read(5)!r}")  # the simulated UART loops back
    # closed + released here, also on an exception
    print(f"after the block: owners_count={rt.info(Same70.UART0).owners_count}")
