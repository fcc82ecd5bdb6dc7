import time


class Stopwatch:
    """Measure how long a request took, for the load reported to the autoscaler."""

    def __init__(self) -> None:
        self.started = time.perf_counter()

    def elapsed(self) -> float:
        return time.perf_counter() - self.started
