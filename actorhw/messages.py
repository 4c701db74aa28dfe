"""Public path ``actorhw.messages``; the code lives in :mod:`actorhw.core.messages`."""

from actorhw.core.messages import *  # noqa: F403
