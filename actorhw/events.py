"""Public path ``actorhw.events``; the code lives in :mod:`actorhw.core.events`."""

from actorhw.core.events import *  # noqa: F403
