"""Device programming: a Belay-style class whose methods run on the micro:bit in QEMU.

Needs QEMU and the micro:bit firmware (./dev.sh test installs them).
"""
# example-test: tests/integration/test_docs_examples_qemu.py
# The board-side bodies use the board's globals (gc, microbit, readings): see the guide.
# ruff: noqa: F401, F821, I001

# --8<-- [start:example]
from actorhw import Runtime
from actorhw.programming import MicroPythonDevice, background, setup, task, teardown


class Thermostat(MicroPythonDevice):
    @setup(priority=1)
    def init(self):
        """MicroPython, run at the board's global scope when the device connects."""
        global readings
        import gc
        import microbit

        readings = []

    @task(cache_ms=5000)
    def status(self) -> dict:
        """Runs on the board; the result comes back as a Python dict."""
        return {"free": gc.mem_free(), "uptime_ms": microbit.running_time()}

    @task(exclusive=True, timeout_ms=30000)
    def collect(self, samples: int, interval_ms: int) -> list:
        readings.clear()
        for i in range(samples):
            readings.append(microbit.accelerometer.get_x())
            if i < samples - 1:
                microbit.sleep(interval_ms)
        return readings

    @task
    def div(self, a, b):
        return a / b

    @background(interval_ms=10000)
    def watch(self):
        """HOST Python: runs in a thread every 10 s until close."""
        if self.status()["free"] < 2000:
            self.exec("gc.collect()")

    @teardown
    def safe_shutdown(self):
        """MicroPython, run on close, on runtime stop, and after a failed setup."""
        global readings
        readings = None  # free the board's heap (about 10 KB on the micro:bit)


with Runtime.start(boards=["microbit-qemu"]) as rt:
    ids = rt.ids("microbit-qemu")
    with Thermostat(rt, ids.BOARD, owner="lab") as dev:  # lease + definitions + setups
        status = dev.status()
        print(f"status keys: {sorted(status)}")  # ['free', 'uptime_ms']
        print(f"collected: {len(dev.collect(3, 10))} samples")

        # --8<-- [start:batch]
        # several calls in one round trip; a board exception stays with its call
        outcomes = dev.batch([(dev.status, ()), (dev.collect, (3, 10)), (dev.div, (1, 0))])
        print(f"batch: ok={[o.ok for o in outcomes]}, error={outcomes[2].error.exc_name}")
        # --8<-- [end:batch]

        # --8<-- [start:batching]
        with dev.batching() as b:
            s = b.call(dev.status)  # Outcome[dict]
            c = b.call(dev.collect, 3, 10)  # arguments checked now
        # sent here, in one exec, when the block ends without an exception
        print(f"batching: {sorted(s.result())}, {len(c.value)} samples")
        # --8<-- [end:batching]
    # teardowns ran, the background loop is stopped and joined, the board is released
    print(f"after close: owners_count={rt.info(ids.BOARD).owners_count}")
# --8<-- [end:example]
