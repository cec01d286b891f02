"""Direct convolution for layers with few input channels (stride 1), on the CPU (Numba).

    y[n, f, i, j] = b[f] + Σ_{c, ki, kj} W[f, c, ki, kj] · xpad[n, c, i + ki, j + kj]

im2col turns a 3-channel 112×112 batch of 32 into a (27, 401,408) matrix — 43 MB written
and read back for a product with only 4 rows — and its weight gradient, 4 × 27 over
401,408 columns, ran at 18 GFLOP/s. Here nothing is unfolded. Each batch item's input
planes are copied once into zeros (Hq = H + 2p rows of Wq = W + 2p), and a plane is read
as one flat row: output (i, j) is entry o = i·Wq + j of a row of L = (Ho − 1)·Wq + Wo
entries, and tap (ki, kj) reads the padded plane at o + ki·Wq + kj. So each tap is ONE
contiguous multiply-add over L entries (SIMD over the whole plane, no border tests); the
Wq − Wo entries between output rows are computed and dropped (2 of 114 at 112² with
padding 1). Every loop indexes from 0: an index that may be negative makes Numba test it
for wraparound, which stopped LLVM from vectorising (12.6 ms against 1.7 ms in a first,
row-by-row version of the forward at 3 → 4 on 112², N 32).

The weight gradient is, per batch item, a dot product of dy's flat row with each shifted
input row. Its loop is compiled with `fastmath={"reassoc", "contract"}` so LLVM may keep
several partial sums (SIMD); the order is fixed by the code, not the data or the threads,
and the items are added in a fixed order: the same result in every run and for every
thread count (tested). In strict order it ran 5× slower (5.8 against 1.1 ms at 3 → 4 on
112², N 32: no vectorised reduction).

One batch item a thread (its padded planes stay in the cache); a batch of 1 runs on one.
Layouts: x and dx (N, C, H, W), W (F, C, k, k), y and dy (N, F, Ho, Wo).
minidet/layers/conv.py says where it is used and what it was measured against.
"""
from __future__ import annotations

import numpy as np
from numba import njit, prange


@njit(inline="always", cache=True, nogil=True)
def _padded_planes(x, n, padding, S):
    """S (C, Hq·Wq) = the planes of x[n] in zeros at offset (padding, padding)."""
    C, H, W = x.shape[1], x.shape[2], x.shape[3]
    Wq = W + 2 * padding
    S[:] = 0
    for c in range(C):
        for i in range(H):
            start = (i + padding) * Wq + padding
            dst, src = S[c, start:start + W], x[n, c, i]
            for j in range(W):
                dst[j] = src[j]


@njit(inline="always", cache=True, nogil=True)
def _flat_rows(a, n, Wq, out):
    """out (F, L) = the planes of a[n] (N, F, Ho, Wo) with rows Wq apart and 0 between them."""
    F, Ho, Wo = a.shape[1], a.shape[2], a.shape[3]
    out[:] = 0
    for f in range(F):
        for i in range(Ho):
            dst, src = out[f, i * Wq:i * Wq + Wo], a[n, f, i]
            for j in range(Wo):
                dst[j] = src[j]


@njit(parallel=True, cache=True, nogil=True)
def forward(x, W, b, padding, y):
    """y (N, F, Ho, Wo) = conv(x, W) + b, stride 1."""
    N, C, H, Wd = x.shape
    F, _, k, _ = W.shape
    Ho, Wo = y.shape[2], y.shape[3]
    Hq, Wq = H + 2 * padding, Wd + 2 * padding
    L = (Ho - 1) * Wq + Wo
    for n in prange(N):
        S = np.empty((C, Hq * Wq), dtype=x.dtype)
        _padded_planes(x, n, padding, S)
        row = np.empty(L, dtype=y.dtype)
        for f in range(F):
            row[:] = b[f]
            for c in range(C):
                for ki in range(k):
                    for kj in range(k):
                        w = W[f, c, ki, kj]
                        src = S[c, ki * Wq + kj:ki * Wq + kj + L]
                        for o in range(L):
                            row[o] += w * src[o]
            for i in range(Ho):
                dst, src = y[n, f, i], row[i * Wq:i * Wq + Wo]
                for j in range(Wo):
                    dst[j] = src[j]


@njit(parallel=True, cache=True, nogil=True)
def backward_input(dy, W, padding, dx):
    """dx (N, C, H, W): each tap's share of dy added back where the tap read, then the
    padding dropped."""
    N, C, H, Wd = dx.shape
    F, _, k, _ = W.shape
    Ho = dy.shape[2]
    Hq, Wq = H + 2 * padding, Wd + 2 * padding
    L = (Ho - 1) * Wq + dy.shape[3]
    for n in prange(N):
        G = np.empty((F, L), dtype=dy.dtype)
        _flat_rows(dy, n, Wq, G)
        plane = np.empty(Hq * Wq, dtype=dx.dtype)
        for c in range(C):
            plane[:] = 0
            for f in range(F):
                g = G[f]
                for ki in range(k):
                    for kj in range(k):
                        w = W[f, c, ki, kj]
                        dst = plane[ki * Wq + kj:ki * Wq + kj + L]
                        for o in range(L):
                            dst[o] += w * g[o]
            for i in range(H):
                start = (i + padding) * Wq + padding
                dst, src = dx[n, c, i], plane[start:start + Wd]
                for j in range(Wd):
                    dst[j] = src[j]


@njit(inline="always", cache=True, nogil=True)
def _dot(a, b, L):
    total = a[0] * b[0]
    for o in range(1, L):
        total += a[o] * b[o]
    return total


@njit(parallel=True, cache=True, nogil=True, fastmath={"reassoc", "contract"})
def backward_weights(dy, x, padding, k, dW):
    """dW (F, C, k, k) = Σ_{n, i, j} dy[n, f, i, j] · xpad[n, c, i + ki, j + kj]."""
    N, C, H, Wd = x.shape
    F, Ho = dy.shape[1], dy.shape[2]
    Hq, Wq = H + 2 * padding, Wd + 2 * padding
    L = (Ho - 1) * Wq + dy.shape[3]
    per_item = np.empty((N, F, C, k, k), dtype=dW.dtype)
    for n in prange(N):
        S = np.empty((C, Hq * Wq), dtype=x.dtype)
        _padded_planes(x, n, padding, S)
        G = np.empty((F, L), dtype=dy.dtype)
        _flat_rows(dy, n, Wq, G)
        for f in range(F):
            for c in range(C):
                for ki in range(k):
                    for kj in range(k):
                        per_item[n, f, c, ki, kj] = _dot(G[f], S[c, ki * Wq + kj:], L)
    dW[...] = 0
    for n in range(N):   # in a fixed order: the same sum for any thread count
        dW += per_item[n]
