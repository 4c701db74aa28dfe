"""Programming: Belay-style device classes (@setup, @task, @background, @teardown) that
run MicroPython code on a board.

May import: api and below.
"""

from actorhw.programming.classes import *  # noqa: F403
