"""Public path ``actorhw.ids``; the code lives in :mod:`actorhw.core.ids`."""

from actorhw.core.ids import *  # noqa: F403
