"""Timing a piece of work the way the benchmarks report it: the median of several runs after
a warm-up, in milliseconds, each run's result kept until its time is taken. Imported as a
sibling module: the benchmarks run as scripts from this folder."""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from typing import Any


def median_ms(work: Callable[[], Any], runs: int, *, warmup: int = 1) -> float:
    for _ in range(warmup):
        work()
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        result = work()
        times.append((time.perf_counter() - start) * 1000)
        # Freed after the clock stops: a caller keeps what it asked for, and freeing a
        # 10,000-model catalog is not part of loading one.
        del result
    return statistics.median(times)
