"""Public path ``actorhw.aio``; the code lives in :mod:`actorhw.api.aio`."""

from actorhw.api.aio import *  # noqa: F403
