"""Direct convolution for layers with few input channels (stride 1), on the CPU (Numba).

    y[n, f, i, j] = b[f] + Σ_{c, ki, kj} W[f, c, ki, kj] · x[n, c, i + ki − p, j + kj − p]

(0 outside the image). im2col turns a 3-channel 112×112 batch of 32 into a (27, 401,408)
matrix — 43 MB written and read back for a product with only 4 rows — and its weight
gradient, 4 × 27 over 401,408 columns, ran at 18 GFLOP/s. Here each output row is built
from whole input rows: the inner loop runs along j over contiguous memory (SIMD) and
nothing is unfolded; the borders are the j range each tap may read, so no padded copy.
The inner loops index slices from 0 (`out[j] += w * inp[j]`), not `src[j + kj − p]`: an
index that may be negative makes Numba test it for wraparound, which stopped LLVM from
vectorising the loop (12.6 ms against 1.7 ms for the forward of 3 → 4 on 112², N 32).

The weight gradient sums dy · x over n, i and j. Each batch item keeps its sums per
column j (an elementwise update, which vectorises without reordering a reduction) and
then adds them up in a fixed order, so the result is the same in every run and for every
thread count. Layouts: x (N, C, H, W), W (F, C, k, k), y and dy (N, F, Ho, Wo).
minidet/layers/conv.py says where it is used and what it was measured against.
"""
from __future__ import annotations

import numpy as np
from numba import njit, prange


@njit(inline="always", cache=True, nogil=True)
def _columns(kj, padding, Wo, W):
    """(j0, j1, s0): the output columns j0 ≤ j < j1 whose tap kj reads inside the image,
    and s0 = j0 + kj − p, the first input column they read."""
    j0 = max(0, padding - kj)
    return j0, min(Wo, W + padding - kj), j0 + kj - padding


@njit(parallel=True, cache=True, nogil=True)
def forward(x, W, b, padding, y):
    """y (N, F, Ho, Wo) = conv(x, W) + b, stride 1; a thread an (n, f) plane."""
    N, C, H, Wd = x.shape
    F, _, k, _ = W.shape
    Ho, Wo = y.shape[2], y.shape[3]
    for nf in prange(N * F):
        n, f = nf // F, nf % F
        for i in range(Ho):
            row = y[n, f, i]
            row[:] = b[f]
            for c in range(C):
                for ki in range(k):
                    ii = i + ki - padding
                    if 0 <= ii < H:
                        src = x[n, c, ii]
                        for kj in range(k):
                            w = W[f, c, ki, kj]
                            j0, j1, s0 = _columns(kj, padding, Wo, Wd)
                            out, inp = row[j0:j1], src[s0:s0 + j1 - j0]
                            for j in range(j1 - j0):
                                out[j] += w * inp[j]


@njit(parallel=True, cache=True, nogil=True)
def backward_input(dy, W, padding, dx):
    """dx (N, C, H, W) = Σ_f of dy scattered back through each tap; a thread an (n, c) plane."""
    N, C, H, Wd = dx.shape
    F, _, k, _ = W.shape
    Ho, Wo = dy.shape[2], dy.shape[3]
    for nc in prange(N * C):
        n, c = nc // C, nc % C
        dx[n, c] = 0
        for f in range(F):
            for i in range(Ho):
                g = dy[n, f, i]
                for ki in range(k):
                    ii = i + ki - padding
                    if 0 <= ii < H:
                        dst = dx[n, c, ii]
                        for kj in range(k):
                            w = W[f, c, ki, kj]
                            j0, j1, s0 = _columns(kj, padding, Wo, Wd)
                            out, inp = dst[s0:s0 + j1 - j0], g[j0:j1]
                            for j in range(j1 - j0):
                                out[j] += w * inp[j]


@njit(parallel=True, cache=True, nogil=True)
def backward_weights(dy, x, padding, k, dW):
    """dW (F, C, k, k) = Σ_{n, i, j} dy[n, f, i, j] · x[n, c, i + ki − p, j + kj − p]."""
    N, C, H, Wd = x.shape
    F, Ho, Wo = dy.shape[1], dy.shape[2], dy.shape[3]
    per_item = np.empty((N, F, C, k, k), dtype=dW.dtype)
    for n in prange(N):
        acc = np.zeros((F, C, k, k, Wo), dtype=dW.dtype)   # sums per column j
        for i in range(Ho):
            for ki in range(k):
                ii = i + ki - padding
                if 0 <= ii < H:
                    for c in range(C):
                        src = x[n, c, ii]
                        for f in range(F):
                            g = dy[n, f, i]
                            for kj in range(k):
                                j0, j1, s0 = _columns(kj, padding, Wo, Wd)
                                a, gg, inp = acc[f, c, ki, kj, j0:j1], g[j0:j1], src[s0:s0 + j1 - j0]
                                for j in range(j1 - j0):
                                    a[j] += gg[j] * inp[j]
        for f in range(F):
            for c in range(C):
                for ki in range(k):
                    for kj in range(k):
                        per_item[n, f, c, ki, kj] = acc[f, c, ki, kj].sum()
    dW[...] = 0
    for n in range(N):   # in a fixed order: the same sum for any thread count
        dW += per_item[n]
