"""Public path ``actorhw.errors``; the code lives in :mod:`actorhw.core.errors`."""

from actorhw.core.errors import *  # noqa: F403
