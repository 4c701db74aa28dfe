"""The weather-station plugin in use: discovery, the manager API, a stream."""

from pathlib import Path

from actorhw import Runtime
from actorhw.errors import ActorHwError
from actorhw.events import Overflow

HERE = Path(__file__).parent / "plugins"  # drv_weather.py and weather-station.toml

with Runtime.start(drivers_dirs=[HERE], boards_dirs=[HERE]) as rt:
    print("drivers:", ", ".join(sorted(rt.drivers.drivers)))
    manager = rt.manager

    # connect scans an unknown device and initializes a discovered one first
    result = manager.connect_device("weather", "weather-station")
    print(f"connect: {result['status']}, {result['state']} after {', '.join(result['steps'])}")

    result = manager.execute_command(
        "weather", "calibrate", device_id="weather-station", args={"offset": 0.5}
    )
    print("calibrate:", result["status"], result["result"])
    try:
        manager.execute_command("weather", "launch", device_id="weather-station")
    except ActorHwError as e:
        print(f"launch: {e.code}: {e.message.split(';')[0]}")

    # a stream: subscribe first, then start it with the start command
    with rt.stream("weather-station", overflow=Overflow.BLOCK) as samples:
        manager.execute_command(
            "weather", "start", device_id="weather-station", args={"channels": ["temperature"]}
        )
        first = [samples.get(timeout=5) for _ in range(4)][1:]  # after the START notice
        result = manager.execute_command("weather", "stop", device_id="weather-station")
    for sample in first:
        print(f"  #{sample.seq} {sample.channel} = {sample.data[0]} ({sample.action.value})")
    print(f"stop: {result['status']}, lost: {samples.dropped}")

    print("close:", manager.close_device("weather", "weather-station")["state"])
