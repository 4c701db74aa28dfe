"""Public path ``actorhw.log``; the code lives in :mod:`actorhw.core.log`."""

from actorhw.core.log import *  # noqa: F403
