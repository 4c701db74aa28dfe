"""Quickstart: two simulated boards, ownership, sharing and a listing.

Run it with ``python docs/examples/quickstart.py``; the test suite runs it too.
"""

from rich.console import Console

from actorhw import Gpio, Led, Runtime, Uart
from actorhw.errors import DeviceBusyError

console = Console()

with Runtime.start(boards=["same70-xplained", "microbit"]) as rt:
    Same70 = rt.ids("same70-xplained")
    MicroBit = rt.ids("microbit")

    # acquire + open; closed + released when the block ends, also on an exception
    with rt.lease(Uart, Same70.UART0, owner="module-a") as uart:
        uart.write(b"hello")
        console.print(f"UART0 loopback read: {uart.read(5)!r}")

        # UART is SINGLE: a second owner is refused at once, and told who holds it
        try:
            rt.lease(Uart, Same70.UART0, owner="module-b")
        except DeviceBusyError as e:
            console.print(
                f"module-b refused: {e.code} (owners: {e.owners}, owners_count={e.owners_count})"
            )

    # GPIO is SHARED: two sensors read the same pin
    with (
        rt.lease(Gpio, MicroBit.PIN0, owner="sensor-a") as a,
        rt.lease(Gpio, MicroBit.PIN0, owner="sensor-b") as b,
    ):
        console.print(
            f"PIN0 read by both: {a.read()} {b.read()}, owners_count={a.info().owners_count}"
        )

    with rt.lease(Led, Same70.LED_GREEN, owner="status") as led:
        led.on()
        console.print(f"LED_GREEN lit: {led.is_on()}")

    for info in rt.devices("same70-xplained")[:4]:
        console.print(
            f"{info.device.key:<26} {info.kind.value:<5} {info.state.name:<10} "
            f"{info.policy.name:<6} owners={info.owners_count}"
        )
