"""Public path ``actorhw.handles``; the code lives in :mod:`actorhw.api.handles`."""

from actorhw.api.handles import *  # noqa: F403
