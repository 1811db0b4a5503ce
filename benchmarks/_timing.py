"""Repeated measurement in the manner of :mod:`timeit`, robust to a noisy, shared machine.

Theory of operation: each case is a zero-argument callable.  Its loop count is chosen
once (``timeit``'s autorange: the smallest 1, 2, 5, 10, ... whose loop lasts at least
``min_time``); then every case of a group is timed once per round, round after round,
so that a burst of load from another process hits all of them alike rather than one.
The estimators are the minimum over rounds (the least disturbed run, used for every
ratio) and the median (shown beside it); calls long enough to time alone are timed
one by one, in turns, and the estimators taken over every call.

The garbage collector stays enabled, as it is in the applications that receive
webhooks: :mod:`timeit` pauses it, which hides the collections that a case's
allocations trigger, and a case that builds many objects (a typed event, a decoded
body) would look cheaper than it is in a server.  Each group starts from a fresh
collection, and the objects alive then (the payloads, the harness, the libraries) are
frozen out of the collector's sight while the group is timed: the collections a case
triggers then cost what its own allocations cost, not a walk over the harness's heap.
"""

from __future__ import annotations

import gc
import statistics
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

__all__ = ["SINGLE_CALLS", "Timing", "measure_group", "time_loop"]

#: Up to this many loops per round, each call is timed on its own (calls of about a
#: millisecond and more).
SINGLE_CALLS = 200


@dataclass(frozen=True, slots=True)
class Timing:
    """Seconds per call of one case: the best round and the median round."""

    best: float
    median: float
    loops: int
    rounds: int

    @property
    def best_us(self) -> float:
        """Microseconds per call, best round."""
        return self.best * 1e6

    @property
    def median_us(self) -> float:
        """Microseconds per call, median round."""
        return self.median * 1e6


def time_loop(func: Callable[[], object], loops: int) -> float:
    """Seconds taken by ``loops`` calls of ``func``, the garbage collector running as usual."""
    start = time.perf_counter()
    for _ in range(loops):
        func()
    return time.perf_counter() - start


def _autorange(func: Callable[[], object], min_time: float) -> int:
    loops = 1
    while True:
        for factor in (1, 2, 5):
            number = loops * factor
            if time_loop(func, number) >= min_time:
                return number
        loops *= 10


def measure_group(
    cases: Sequence[Callable[[], object]], *, rounds: int, min_time: float
) -> list[Timing]:
    """Time every case of ``cases`` over ``rounds`` interleaved rounds."""
    gc.collect()
    gc.freeze()
    try:
        return _measure(cases, rounds=rounds, min_time=min_time)
    finally:
        gc.unfreeze()


def _measure(
    cases: Sequence[Callable[[], object]], *, rounds: int, min_time: float
) -> list[Timing]:
    loops = [_autorange(case, min_time) for case in cases]
    samples: list[list[float]] = [[] for _ in cases]
    # Long calls are timed one by one, taking turns call by call: the timer's cost is
    # negligible beside them, and a burst of load then spoils one call of each case
    # alike rather than a whole round of one.
    single = [i for i, number in enumerate(loops) if number <= SINGLE_CALLS]
    for _ in range(rounds):
        for index, case in enumerate(cases):
            if index not in single:
                samples[index].append(time_loop(case, loops[index]) / loops[index])
        for turn in range(max((loops[i] for i in single), default=0)):
            for index in single:
                if turn < loops[index]:
                    samples[index].append(time_loop(cases[index], 1))
    return [
        Timing(best=min(s), median=statistics.median(s), loops=n, rounds=rounds)
        for s, n in zip(samples, loops, strict=True)
    ]
