"""Public path ``actorhw.boards``; the code lives in :mod:`actorhw.drivers.definitions`."""

from actorhw.drivers.definitions import *  # noqa: F403
