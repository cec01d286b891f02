"""Matrix products on the CPU: single-threaded BLAS calls, split over minidet's own threads.

OpenBLAS's threads wait for one another by spinning and yielding. When another process
holds a core (a second run, a browser, the test suite), each product waits for a worker
the scheduler has put aside: on the developers' 2-core machine, with one busy process
beside it, the default training step (112 : ¼ : 32, conv head) went from 126 ms to
3.2 s (median of 12), while minidet's Numba loops in the same conditions only doubled.
So `import minidet` asks OpenBLAS for one thread (OPENBLAS_NUM_THREADS=1, unless set;
minidet.THREAD_POLICY) and `matmul` cuts each large product into one block per thread,
run on a small pool (NumPy releases the GIL inside BLAS). A block is a slab of the output
(rows of a, or columns of b), so each output entry is one BLAS dot product over all of
K, computed the same way every run; only when both sides of the output are too thin to
cut (the first convolution's dW, 4 × 27 over 400,000 columns) is K cut, and the
per-thread partial sums are added in a fixed order.

On CuPy (cuBLAS) and for small products `matmul` is `xp.matmul`.
"""
from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor

import numpy as np

from .backend import get_array_module

# Below this many multiply-adds a product runs in the calling thread: handing it to the
# pool costs more than it saves (tens of microseconds).
MIN_WORK = 1 << 21
_pool: ThreadPoolExecutor | None = None
# The cores this process may run on, read once (a system call, not for every product).
_CORES = max(1, len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1)


def threads() -> int:
    """The threads a product is cut for: NUMBA_NUM_THREADS if set (minidet's loops use
    the same), else the cores this process may run on."""
    env = os.environ.get("NUMBA_NUM_THREADS")
    if env and env.isdigit() and int(env) > 0:
        return int(env)
    return _CORES


def _executor() -> ThreadPoolExecutor:
    global _pool
    if _pool is None:
        _pool = ThreadPoolExecutor(max_workers=threads(), thread_name_prefix="minidet-matmul")
    return _pool


def _bounds(n: int, parts: int):
    step = -(-n // parts)
    return [(i, min(i + step, n)) for i in range(0, n, step)]


def matmul(a, b, out=None):
    """a (M, K) @ b (K, N) → (M, N), into `out` when given (any strides NumPy accepts).

    a and b may be transposed views (BLAS reads them as such). The result equals
    `xp.matmul(a, b)` up to the rounding of a different blocking inside BLAS.
    """
    xp = get_array_module(a)
    n = threads()
    M, K = a.shape
    N = b.shape[1]
    if xp is not np or n == 1 or M * K * N < MIN_WORK:
        return xp.matmul(a, b, out=out)
    if out is None:
        out = np.empty((M, N), dtype=np.result_type(a.dtype, b.dtype))
    pool = _executor()
    if max(M, N) >= 8 * n:   # slabs of the output
        if N >= M:
            jobs = [pool.submit(np.matmul, a, b[:, s:e], out=out[:, s:e]) for s, e in _bounds(N, n)]
        else:
            jobs = [pool.submit(np.matmul, a[s:e], b, out=out[s:e]) for s, e in _bounds(M, n)]
        for job in jobs:
            job.result()
        return out
    parts = [pool.submit(np.matmul, a[:, s:e], b[s:e]) for s, e in _bounds(K, n)]
    np.copyto(out, parts[0].result())
    for part in parts[1:]:
        out += part.result()
    return out


def matmul_batched(a, b, out):
    """out[i] = a[i] @ b[i] for the stacked (B, M, K) and (B, K, N) arrays, on the CPU: the
    B single-threaded products shared among the threads, each product whole."""
    n = threads()
    if n == 1:
        return np.matmul(a, b, out=out)
    pool = _executor()
    jobs = [pool.submit(np.matmul, a[s:e], b[s:e], out=out[s:e]) for s, e in _bounds(len(a), n)]
    for job in jobs:
        job.result()
    return out
