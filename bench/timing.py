"""Timing for the benchmarks, one way: the best of several runs."""
import gc
import time


def best(run, repeat):
    """(best wall time in seconds, result of the last run) of `repeat` calls of run()."""
    times = []
    result = None
    for _ in range(max(1, repeat)):
        gc.collect()
        t = time.perf_counter()
        result = run()
        times.append(time.perf_counter() - t)
    return min(times), result
