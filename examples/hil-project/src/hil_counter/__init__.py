"""The device class under test: a counter that lives on a MicroPython board."""

# The board-side bodies use the board's globals (count): see actorhw's programming guide.

from actorhw.programming import MicroPythonDevice, setup, task


class Counter(MicroPythonDevice):
    """A counter on the board: ``bump`` adds, ``value`` reads, ``reset`` zeroes."""

    @setup
    def init(self):
        global count
        count = 0

    @task
    def bump(self, by: int = 1) -> int:
        global count
        count += by
        return count

    @task
    def value(self) -> int:
        return count

    @task
    def reset(self) -> None:
        global count
        count = 0
