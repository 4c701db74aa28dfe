"""Public path ``actorhw.jobs``; the code lives in :mod:`actorhw.api.jobs`."""

from actorhw.api.jobs import *  # noqa: F403
