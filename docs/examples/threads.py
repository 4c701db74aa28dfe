"""Threads: a lease taken in one thread is used from another; events to a third."""

import threading

from actorhw import DeviceState, Runtime, StateChanged

with Runtime.start(boards=["same70-xplained"]) as rt:
    Same70 = rt.ids("same70-xplained")
    with rt.subscribe() as events:
        lease = rt.acquire(Same70.UART0, owner="writer")
        rt.open(lease)

        def write() -> None:  # a lease is a token, not tied to a thread
            rt.use(lease, "write", (b"from a worker",))

        worker = threading.Thread(target=write)
        worker.start()
        worker.join(timeout=5)
        print(f"read back: {rt.use(lease, 'read', (64,))!r}")
        rt.release(lease)  # closes it first

        # events came in order, from the device's actor
        back = events.wait_for(
            lambda e: isinstance(e, StateChanged) and e.to_state is DeviceState.CONNECTED,
            timeout=5,
        )
        print(f"UART0 {back.from_state.name} -> {back.to_state.name}: {back.reason}")
