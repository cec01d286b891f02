"""Winograd's F(2×2, 3×3): a 3×3, stride-1 convolution with 2.25× fewer multiplications.

Lavin & Gray (2016). The output is cut into 2×2 tiles; tile (ti, tj) reads the 4×4 input
patch d at rows 2·ti − p + (0..3), columns 2·tj − p + (0..3) (0 outside the image), and

    y_tile = Aᵀ [ (G g Gᵀ) ⊙ (Bᵀ d B) ] A        (per filter f, summed over channels c)

with the constant matrices below. Summing over c is a matrix product for each of the 16
positions ξ = (a, b) of the 4×4 transformed tile:

    U[ξ] (F, C) = G g Gᵀ       V[ξ] (C, P) = Bᵀ d B       M[ξ] = U[ξ] @ V[ξ]  (F, P)

P = N·Th·Tw tiles, Th = ⌈Ho/2⌉. For the reduced model's 7×7 maps that is 16 products of
(F, C) by (C, 16·N) instead of one of (F, 9·C) by (9·C, 49·N): 1.7× fewer multiply-adds
(the 8×8 tiled output has 15 entries past the 7×7 edge). The backward is the adjoint of
each linear step: dM[ξ] = (A dY Aᵀ)[ξ], dU[ξ] = dM[ξ] @ V[ξ]ᵀ, dV[ξ] = U[ξ]ᵀ @ dM[ξ],
dW = Gᵀ dU G, dx = the tiles B dV Bᵀ added back where they were read.

Layouts: x (N, C, H, W), W (F, C, 3, 3), U (16, F, C), V (16, C, P) with p = (n·Th + ti)·Tw
+ tj, M (16, F, P). `winograd_reference` is the definition in NumPy (the tests' oracle);
the four transforms are Numba loops for the CPU. There is no CUDA form: on the GPU the
convolution stays im2col + cuBLAS; this is a CPU formulation kept for its measured speed
(minidet/layers/conv.py says where and by how much).
"""
from __future__ import annotations

import numpy as np
from numba import njit, prange

from ._device import buffer, output_size

BT = np.array([[1, 0, -1, 0], [0, 1, 1, 0], [0, -1, 1, 0], [0, 1, 0, -1]], dtype=np.float64)
G = np.array([[1, 0, 0], [0.5, 0.5, 0.5], [0.5, -0.5, 0.5], [0, 0, 1]], dtype=np.float64)
AT = np.array([[1, 1, 1, 0], [0, 1, -1, -1]], dtype=np.float64)
# U[(a, b)] = Σ_ij G[a, i] G[b, j] g[i, j]: the filter transform as one (9, 16) matrix.
FILTER = np.einsum("ai,bj->ijab", G, G).reshape(9, 16)


def tiles(H: int, W: int, padding: int):
    """(Ho, Wo, Th, Tw): the output size and the 2×2 tiles covering it."""
    Ho, Wo = output_size(H, 3, 1, padding), output_size(W, 3, 1, padding)
    return Ho, Wo, (Ho + 1) // 2, (Wo + 1) // 2


def winograd_reference(x, W, b, padding: int = 1):
    """y (N, F, Ho, Wo) by the formula above, tile by tile, in float64 NumPy."""
    x, W = np.asarray(x, np.float64), np.asarray(W, np.float64)
    N, C, H, Wd = x.shape
    F = W.shape[0]
    Ho, Wo, Th, Tw = tiles(H, Wd, padding)
    # the padded image, with one more row/column of zeros where the last tile passes it
    xp = np.zeros((N, C, max(H + 2 * padding, 2 * Th + 2), max(Wd + 2 * padding, 2 * Tw + 2)))
    xp[:, :, padding:padding + H, padding:padding + Wd] = x
    U = np.einsum("ai,fcij,bj->fcab", G, W, G)
    y = np.zeros((N, F, 2 * Th, 2 * Tw))
    for ti in range(Th):
        for tj in range(Tw):
            d = xp[:, :, 2 * ti:2 * ti + 4, 2 * tj:2 * tj + 4]
            V = np.einsum("ai,ncij,bj->ncab", BT, d, BT)
            m = np.einsum("fcab,ncab->nfab", U, V)
            y[:, :, 2 * ti:2 * ti + 2, 2 * tj:2 * tj + 2] = np.einsum("ia,nfab,jb->nfij", AT, m, AT)
    return y[:, :, :Ho, :Wo] + np.asarray(b, np.float64).reshape(1, F, 1, 1)


def filter_transform(W):
    """U (16, F, C) of W (F, C, 3, 3)."""
    F, C = W.shape[:2]
    U = W.reshape(F * C, 9) @ FILTER.astype(W.dtype)
    return np.ascontiguousarray(U.T).reshape(16, F, C)


def filter_transform_adjoint(dU):
    """dW (F, C, 3, 3) of dU (16, F, C): dW = Gᵀ dU G per (f, c)."""
    _, F, C = dU.shape
    return (dU.reshape(16, F * C).T @ FILTER.T.astype(dU.dtype)).reshape(F, C, 3, 3)


# The transforms that write V or dM gather CHUNK tiles' 16 values in a small buffer first,
# then write each of the 16 rows a cache line at a time: the rows lie C·P·4 bytes apart,
# a multiple of 4 KiB, and writing all 16 of them entry by entry made the caches evict
# each other's lines (4.6 ms against 1.6 ms for V of the 256-channel 7×7 layer, one thread).
CHUNK = 16


@njit(inline="always", cache=True, nogil=True)
def _tile(p, Th, Tw):
    """(n, ti, tj) of tile p = (n·Th + ti)·Tw + tj."""
    n = p // (Th * Tw)
    ti = (p - n * Th * Tw) // Tw
    return n, ti, p - n * Th * Tw - ti * Tw


@njit(inline="always", cache=True, nogil=True)
def _store(buf, out, row, p0, count):
    """out[ξ, row, p0:p0 + count] = buf[ξ, :count] for the 16 ξ: each a run of whole cache lines."""
    for xi in range(16):
        for q in range(count):
            out[xi, row, p0 + q] = buf[xi, q]


@njit(parallel=True, cache=True, nogil=True)
def input_transform(xpad, Th, Tw, V):
    """V (16, C, N·Th·Tw) = Bᵀ d B of every 4×4 patch d of xpad (N, C, 2·Th + 2, 2·Tw + 2),
    the image already padded (`padded`); a thread a channel."""
    C = xpad.shape[1]
    P = V.shape[2]
    for c in prange(C):
        buf = np.empty((16, CHUNK), dtype=xpad.dtype)
        for p0 in range(0, P, CHUNK):
            count = min(CHUNK, P - p0)
            for q in range(count):
                n, ti, tj = _tile(p0 + q, Th, Tw)
                i, j = 2 * ti, 2 * tj
                for bb in range(4):   # columns of Bᵀ d, one input column at a time
                    d0 = xpad[n, c, i, j + bb]
                    d1 = xpad[n, c, i + 1, j + bb]
                    d2 = xpad[n, c, i + 2, j + bb]
                    d3 = xpad[n, c, i + 3, j + bb]
                    buf[bb, q] = d0 - d2          # row 0 of Bᵀ d, parked in slot bb
                    buf[4 + bb, q] = d1 + d2
                    buf[8 + bb, q] = d2 - d1
                    buf[12 + bb, q] = d1 - d3
                for a in range(4):    # (Bᵀ d) B, in place, row a
                    t0 = buf[4 * a, q]
                    t1 = buf[4 * a + 1, q]
                    t2 = buf[4 * a + 2, q]
                    t3 = buf[4 * a + 3, q]
                    buf[4 * a, q] = t0 - t2
                    buf[4 * a + 1, q] = t1 + t2
                    buf[4 * a + 2, q] = t2 - t1
                    buf[4 * a + 3, q] = t1 - t3
            _store(buf, V, c, p0, count)


def padded(x, padding: int, Th: int, Tw: int, out=None):
    """x (N, C, H, W) in zeros of (N, C, 2·Th + 2, 2·Tw + 2) at offset `padding`: every patch
    the tiles read, with no bound to test."""
    N, C, H, W = x.shape
    if out is None:
        out = np.empty((N, C, 2 * Th + 2, 2 * Tw + 2), dtype=x.dtype)
    out[...] = 0
    h, w = min(H, 2 * Th + 2 - padding), min(W, 2 * Tw + 2 - padding)
    out[:, :, padding:padding + h, padding:padding + w] = x[:, :, :h, :w]
    return out


@njit(parallel=True, cache=True, nogil=True)
def input_transform_adjoint(dV, pad, Th, Tw, dx):
    """dx (N, C, H, W) = Σ over tiles of B dV Bᵀ added where `input_transform` read; a thread a channel."""
    N, C, H, W = dx.shape
    for c in prange(C):
        dx[:, c] = 0
        t = np.empty((4, 4), dtype=dx.dtype)
        for n in range(N):
            for ti in range(Th):
                for tj in range(Tw):
                    p = (n * Th + ti) * Tw + tj
                    for a in range(4):    # columns: dV Bᵀ (the adjoint of · B)
                        v0 = dV[4 * a, c, p]
                        v1 = dV[4 * a + 1, c, p]
                        v2 = dV[4 * a + 2, c, p]
                        v3 = dV[4 * a + 3, c, p]
                        t[a, 0] = v0
                        t[a, 1] = v1 - v2 + v3
                        t[a, 2] = -v0 + v1 + v2
                        t[a, 3] = -v3
                    for bb in range(4):   # rows: B (dV Bᵀ)
                        s0 = t[0, bb]
                        s1 = t[1, bb] - t[2, bb] + t[3, bb]
                        s2 = -t[0, bb] + t[1, bb] + t[2, bb]
                        s3 = -t[3, bb]
                        jj = 2 * tj - pad + bb
                        if 0 <= jj < W:
                            i0 = 2 * ti - pad
                            if 0 <= i0 < H:
                                dx[n, c, i0, jj] += s0
                            if 0 <= i0 + 1 < H:
                                dx[n, c, i0 + 1, jj] += s1
                            if 0 <= i0 + 2 < H:
                                dx[n, c, i0 + 2, jj] += s2
                            if 0 <= i0 + 3 < H:
                                dx[n, c, i0 + 3, jj] += s3


@njit(parallel=True, cache=True, nogil=True)
def output_transform(M, b, Th, Tw, y):
    """y (N, F, Ho, Wo) = Aᵀ m A + b of every tile m of M (16, F, P), cut at Ho, Wo; a thread a filter."""
    N, F, Ho, Wo = y.shape
    for f in prange(F):
        t = np.empty((2, 4), dtype=M.dtype)
        for n in range(N):
            for ti in range(Th):
                for tj in range(Tw):
                    p = (n * Th + ti) * Tw + tj
                    for bb in range(4):   # rows: Aᵀ m
                        t[0, bb] = M[bb, f, p] + M[4 + bb, f, p] + M[8 + bb, f, p]
                        t[1, bb] = M[4 + bb, f, p] - M[8 + bb, f, p] - M[12 + bb, f, p]
                    for a in range(2):    # columns: (Aᵀ m) A
                        i = 2 * ti + a
                        if i < Ho:
                            j = 2 * tj
                            y[n, f, i, j] = t[a, 0] + t[a, 1] + t[a, 2] + b[f]
                            if j + 1 < Wo:
                                y[n, f, i, j + 1] = t[a, 1] - t[a, 2] - t[a, 3] + b[f]


@njit(parallel=True, cache=True, nogil=True)
def output_transform_adjoint(dy, Th, Tw, zero, dM):
    """dM (16, F, P) = A dY Aᵀ of every 2×2 tile dY of dy (N, F, Ho, Wo), 0 past the edge."""
    F, Ho, Wo = dy.shape[1:]
    P = dM.shape[2]
    for f in prange(F):
        buf = np.empty((16, CHUNK), dtype=dy.dtype)
        for p0 in range(0, P, CHUNK):
            count = min(CHUNK, P - p0)
            for q in range(count):
                n, ti, tj = _tile(p0 + q, Th, Tw)
                i, j = 2 * ti, 2 * tj
                g00 = dy[n, f, i, j]
                g01 = dy[n, f, i, j + 1] if j + 1 < Wo else zero
                g10 = dy[n, f, i + 1, j] if i + 1 < Ho else zero
                g11 = dy[n, f, i + 1, j + 1] if (i + 1 < Ho and j + 1 < Wo) else zero
                # rows of A dY: A = (Aᵀ)ᵀ has rows (1, 0), (1, 1), (1, −1), (0, −1)
                r = ((g00, g01), (g00 + g10, g01 + g11), (g00 - g10, g01 - g11), (-g10, -g11))
                for a in range(4):
                    u0, u1 = r[a]
                    buf[4 * a, q] = u0
                    buf[4 * a + 1, q] = u0 + u1
                    buf[4 * a + 2, q] = u0 - u1
                    buf[4 * a + 3, q] = -u1
            _store(buf, dM, f, p0, count)


def forward(x, W, b, padding: int, bmm, workspace=None):
    """(y (N, F, Ho, Wo), cache) on the CPU; `bmm(a, b, out)`: the 16 products a[ξ] @ b[ξ].
    `workspace`: an optional dict keeping the large buffers between calls (the cache holds
    V from it: run the backward before the next forward with the same workspace)."""
    N, C, H, Wd = x.shape
    F = W.shape[0]
    Ho, Wo, Th, Tw = tiles(H, Wd, padding)
    dtype = np.result_type(x.dtype, W.dtype)
    P = N * Th * Tw
    xpad = padded(x.astype(dtype, copy=False), padding, Th, Tw,
                  buffer(workspace, "xpad", (N, C, 2 * Th + 2, 2 * Tw + 2), dtype))
    V = buffer(workspace, "V", (16, C, P), dtype)
    input_transform(xpad, Th, Tw, V)
    U = filter_transform(W.astype(dtype, copy=False))
    M = bmm(U, V, buffer(workspace, "M", (16, F, P), dtype))
    y = np.empty((N, F, Ho, Wo), dtype=dtype)
    output_transform(M, b.astype(dtype, copy=False), Th, Tw, y)
    return y, (V, U, tuple(x.shape), padding)


def backward(dy, cache, need_dx: bool, bmm, workspace=None):
    """(dx (N, C, H, W) or None, dW (F, C, 3, 3), db (F,)) from dy (N, F, Ho, Wo)."""
    V, U, x_shape, padding = cache
    N, C, H, Wd = x_shape
    F = U.shape[1]
    Ho, Wo, Th, Tw = tiles(H, Wd, padding)
    dtype = V.dtype
    dy = np.ascontiguousarray(dy, dtype=dtype)
    dM = buffer(workspace, "M", (16, F, V.shape[2]), dtype)   # M is no longer needed
    output_transform_adjoint(dy, Th, Tw, dtype.type(0), dM)
    dW = filter_transform_adjoint(bmm(dM, V.transpose(0, 2, 1), np.empty((16, F, C), dtype=dtype)))
    db = dy.sum(axis=(0, 2, 3))
    dx = None
    if need_dx:
        dV = bmm(U.transpose(0, 2, 1), dM, buffer(workspace, "dV", (16, C, V.shape[2]), dtype))
        dx = np.empty(x_shape, dtype=dtype)
        input_transform_adjoint(dV, padding, Th, Tw, dx)
    return dx, dW, db
