"""Multi-device jobs: one function over four boards, and all-or-nothing acquire.

Run it with ``python docs/examples/jobs.py``; the test suite runs it too.
"""

from actorhw import Runtime, Uart
from actorhw.jobs import JobRunner, holding, run_job

with Runtime.start(boards=["same70-xplained"] * 4) as rt:
    uarts = [rt.ids(b.board).UART0 for b in rt.boards()]

    def echo(uart: Uart) -> bytes:
        """Host Python, run once per device, with the device leased and open."""
        uart.write(uart.device.key.encode())
        return uart.read(64)

    # at most two devices at a time; one busy device does not hide the others' results
    with rt.lease(Uart, uarts[3], owner="someone-else"):
        result = run_job(rt, uarts, echo, owner="echo-job", limit=2, timeout=30)
    for device, value in result.values.items():
        print(f"{device.key}: {value!r}")
    for device, error in result.errors.items():
        print(f"{device.key}: {error.code} ({error.owners})")

    # several jobs share one pool of workers; of the targets waiting for a worker, those
    # of the higher priority start first
    others = [rt.ids(b.board).UART1 for b in rt.boards()]
    with JobRunner(rt, workers=2) as jobs:
        low = jobs.submit_devices(others, lambda u: u.write(b"."), owner="low", priority=0)
        high = jobs.submit_devices(uarts, lambda u: u.write(b"!"), owner="high", priority=9)
        print("high:", high.wait(timeout=30).ok, "low:", low.wait(timeout=30).ok)
        progress = low.progress()
        print(f"low: {progress.succeeded}/{progress.total} succeeded, {progress.failed} failed")

    # all-or-nothing, in one global order: overlapping sets never deadlock
    ids = rt.ids(rt.boards()[0].board)
    with holding(rt, [ids.UART1, ids.SPI0, ids.UART0], owner="transfer", timeout=5) as leases:
        print("holding:", sorted(d.name for d in leases.leases))
