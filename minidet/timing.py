"""The one timing helper: the median time of a call, on the CPU by the host clock, on the
GPU by CUDA events (benchmarks/, minidet.course.bandwidth)."""
from __future__ import annotations

import statistics
import time

from .backend import check_device


def time_call(fn, device: str = "cpu", repeats: int = 10, warmup: int = 2) -> float:
    """Median seconds of `fn()` over `repeats` calls after `warmup` calls.

    On "cuda" each call is timed with CUDA events on CuPy's current stream (kernel
    launches return before the work is done, so a host clock would time the launch).
    """
    check_device(device)
    if repeats < 1:
        raise ValueError(f"time_call: repeats must be at least 1, got {repeats}")
    for _ in range(warmup):
        fn()
    times = []
    if device == "cpu":
        for _ in range(repeats):
            t0 = time.perf_counter()
            fn()
            times.append(time.perf_counter() - t0)
        return statistics.median(times)
    import cupy as cp

    stream = cp.cuda.get_current_stream()
    stream.synchronize()
    start, end = cp.cuda.Event(), cp.cuda.Event()
    for _ in range(repeats):
        start.record(stream)
        fn()
        end.record(stream)
        end.synchronize()
        times.append(cp.cuda.get_elapsed_time(start, end) * 1e-3)
    return statistics.median(times)
