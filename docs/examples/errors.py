"""Errors: match on ``.code``, read the context, print ``to_dict()`` for scripts."""

import json

from actorhw import Led, Runtime
from actorhw.errors import ActorHwError, DeviceBusyError

with Runtime.start(boards=["same70-xplained"]) as rt:
    Same70 = rt.ids("same70-xplained")
    with rt.lease(Led, Same70.LED_GREEN, owner="status"):
        try:
            rt.lease(Led, Same70.LED_GREEN, owner="intruder")
        except DeviceBusyError as e:  # by class ...
            print(f"busy: held by {list(e.owners)}")
            print(json.dumps(e.to_dict(), sort_keys=True))
        try:
            rt.get(Led, Same70.UART0)
        except ActorHwError as e:  # ... or by code, as scripts and the CLI do
            print(f"{e.code}: {e.message}")
