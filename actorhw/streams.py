"""Public path ``actorhw.streams``; the code lives in :mod:`actorhw.drivers.streams`."""

from actorhw.drivers.streams import *  # noqa: F403
