"""Resources on a simulated micro:bit: a sample, a session with a quota, the limiter."""

from actorhw import Runtime
from actorhw.errors import AllocationRefusedError, LimiterFullError
from actorhw.messages import Priority, ResourceKind

with Runtime.start(boards=["microbit"]) as rt:
    ids = rt.ids("microbit")

    # A sample read from the board; what the firmware cannot tell is None.
    status = rt.monitor.status(ids.BOARD)
    print("heap:", status.memory.used, "used of", status.memory.total)
    print("file system total:", status.storage.total)

    # A session owns its leases and allocations; leaving the block releases them.
    with rt.session("job-7", quotas={ResourceKind.MEMORY: 8192}) as session:
        session.lease(ids.DISPLAY)
        granted = session.allocate(ids.BOARD, ResourceKind.MEMORY, 4096)
        print("allocated", granted.amount, "bytes")
        try:
            session.allocate(ids.BOARD, ResourceKind.MEMORY, 10**6)
        except Exception as e:
            print("refused:", type(e).__name__)
        try:
            with rt.session("greedy") as other:
                other.allocate(ids.BOARD, ResourceKind.MEMORY, 10**6)
        except AllocationRefusedError as e:
            print("allocatable:", e.allocatable)
    print("display owners after the session:", rt.info(ids.DISPLAY).owners_count)

    # Every operation passes the limiter; a full limiter refuses a no-wait call.
    rt.limiter.configure(max_global=1)
    with rt.lease(ids.PIN0, owner="demo") as pin:
        slot = rt.limiter.admit(ids.PIN1)  # takes the only slot
        try:
            rt.use(pin.lease, "read", wait=False)
        except LimiterFullError as e:
            print("refused at once:", e.code)
        rt.limiter.finish(slot)
        print("read:", rt.use(pin.lease, "read", priority=Priority.HIGH))
    print("admitted so far:", rt.limiter.statistics().admitted)
