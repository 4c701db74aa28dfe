"""Supervision on simulated boards: a fault and a crash, both recovered, leases kept."""

from actorhw import Runtime
from actorhw.errors import ActorHwError
from actorhw.handles import Led
from actorhw.lifecycle import DeviceState
from actorhw.messages import BoardEvent

with Runtime.start(["same70-xplained"]) as rt, rt.subscribe() as events:
    ids = rt.ids("same70-xplained")
    led = rt.lease(Led, ids.LED_GREEN, owner="demo")

    # A device fault: the link vanishes. The next operation fails at once with a typed
    # error, and the supervisor drives ERROR -> DISCONNECTED -> INITIALIZED -> CONNECTED.
    rt.inject_fault("same70-xplained", "unplug")
    try:
        led.on()
    except ActorHwError as e:
        print("during the fault:", e.code)
    rt.wait_for_board("same70-xplained", DeviceState.CONNECTED, timeout=10)
    try:
        led.on()
    except ActorHwError as e:
        print("after recovery:", e.code)  # the board lost its state: open again
    led.open()
    led.on()
    print("LED on after reopen:", led.is_on())

    # An actor crash: the board's actor raises; its supervisor restarts it under the
    # same name and the lease carries over.
    rt.inject_crash("same70-xplained", reason="a bug")
    events.wait_for(lambda e: isinstance(e, BoardEvent) and e.what == "actor_restarted", timeout=10)
    rt.wait_for_board("same70-xplained", DeviceState.CONNECTED, timeout=10)
    print("owners after the restart:", rt.info(ids.LED_GREEN).owners)
    led.release()
