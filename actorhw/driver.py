"""Public path ``actorhw.driver``; the code lives in :mod:`actorhw.drivers.board_driver`."""

from actorhw.drivers.board_driver import *  # noqa: F403
