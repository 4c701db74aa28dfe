"""Ownership: the usage order, SINGLE vs SHARED, and the errors of each misstep."""

from actorhw import Gpio, Runtime, Uart
from actorhw.errors import (
    AlreadyOpenedError,
    DeviceBusyError,
    NotOpenedError,
    StaleLeaseError,
)

with Runtime.start(boards=["same70-xplained", "microbit"]) as rt:
    Same70 = rt.ids("same70-xplained")
    MicroBit = rt.ids("microbit")

    # acquire -> open -> use -> close -> release, step by step
    uart = rt.get(Uart, Same70.UART0)  # typed lookup, checks the kind; nothing held yet
    uart.acquire("module-a")  # a lease: a token for this owner
    try:
        uart.write(b"x")
    except NotOpenedError as e:
        print(f"use before open: {e.code}: {e.message}")
    uart.open()  # open for this lease
    try:
        uart.open()
    except AlreadyOpenedError as e:
        print(f"open twice: {e.code}")
    uart.write(b"x")  # use
    uart.close()
    stale = uart.lease
    uart.release()  # the last release resets the device for reuse

    # a released lease is stale forever
    try:
        rt.open(stale)
    except StaleLeaseError as e:
        print(f"stale lease: {e.code}")

    # SINGLE: a second owner is refused at once, and told who holds it
    with rt.lease(Uart, Same70.UART0, owner="module-a"):
        try:
            rt.lease(Uart, Same70.UART0, owner="module-b")
        except DeviceBusyError as e:
            print(f"second owner: {e.code}, owners={list(e.owners)}, owners_count={e.owners_count}")

    # SHARED: any number of owners; each opens with its own lease
    with (
        rt.lease(Gpio, MicroBit.PIN0, owner="sensor-a") as a,
        rt.lease(Gpio, MicroBit.PIN0, owner="sensor-b"),
    ):
        info = a.info()
        print(f"PIN0 {info.policy.name}: owners_count={info.owners_count}, {info.state.name}")
    print(f"PIN0 after both left: {rt.info(MicroBit.PIN0).state.name}")
