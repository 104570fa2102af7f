"""The in-process timing loop the benchmarks share (run as `python bench/<name>.py`,
so this directory is on sys.path)."""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable


def median_seconds(fn: Callable[[], object], rounds: int) -> float:
    """Median wall time of `fn` over `rounds` calls, after one warm-up call."""
    fn()
    samples = []
    for _ in range(rounds):
        start = time.perf_counter()
        fn()
        samples.append(time.perf_counter() - start)
    return statistics.median(samples)
