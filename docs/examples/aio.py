"""asyncio: awaitable Runtime calls, a lease in ``async with``, events in ``async for``."""

import asyncio

from actorhw import StateChanged
from actorhw.aio import AsyncRuntime
from actorhw.errors import ActorHwError


async def main() -> None:
    # Runtime.start runs off the loop; the runtime stops when the block ends.
    async with AsyncRuntime.start(boards=["same70-xplained", "microbit"]) as art:
        Same70 = await art.ids("same70-xplained")
        MicroBit = await art.ids("microbit")

        async with art.subscribe() as events:
            # acquire + open; close + release on exit, also on an exception or a cancel
            async with art.lease(Same70.LED_GREEN, owner="web") as led:
                lit = await led.use("toggle")
                print(f"LED_GREEN toggled: lit={lit}")
            # every await has a deadline: here 5 s for the first matching event
            event = await events.wait_for(lambda e: isinstance(e, StateChanged), timeout=5)
            print(
                f"event: {event.device.key} {event.from_state.name} -> "
                f"{event.to_state.name} ({event.reason})"
            )

        # errors cross the await typed, with their code
        try:
            await art.exec(MicroBit.BOARD, "print(1+1)", timeout=5)
        except ActorHwError as e:
            print(f"exec on a simulated board: {e.code}")

        infos = await art.devices("same70-xplained", timeout=5)
        print(f"{len(infos)} devices, {sum(i.owners_count for i in infos)} held")


asyncio.run(main())
