"""Winograd's F(4×4, 3×3): a 3×3, stride-1 convolution with 4× fewer multiplications.

Lavin & Gray (2016). The output is cut into 4×4 tiles; tile (ti, tj) reads the 6×6 input
patch d at rows 4·ti − p + (0..5), columns 4·tj − p + (0..5) (0 outside the image), and

    y_tile = Aᵀ [ (G g Gᵀ) ⊙ (Bᵀ d B) ] A        (per filter f, summed over channels c)

with the constant matrices below (interpolation points 0, ±1, ±2, ∞). Summing over c is
a matrix product for each of the 36 positions ξ = 6·a + b of the 6×6 transformed tile:

    U[ξ] (F, C) = G g Gᵀ       V[ξ] (C, P) = Bᵀ d B       M[ξ] = U[ξ] @ V[ξ]  (F, P)

P = N·Th·Tw tiles, Th = ⌈Ho/4⌉. For the reduced model's 7×7 maps that is 36 products of
(F, C) by (C, 4·N) instead of one of (F, 9·C) by (9·C, 49·N): 3.1× fewer multiply-adds
(the 8×8 tiled output has 15 entries past the 7×7 edge). The backward is the adjoint of
each linear step: dM[ξ] = (A dY Aᵀ)[ξ], dU[ξ] = dM[ξ] @ V[ξ]ᵀ, dV[ξ] = U[ξ]ᵀ @ dM[ξ],
dW = Gᵀ dU G, dx = the tiles B dV Bᵀ added back where they were read.

F(2×2, 3×3) (16 positions, 2.25× fewer multiply-adds) ran here first; F(4×4) replaced it
because it was faster on every layer measured (forward + backward, float32, 2 threads, two
runs, F(2×2) as it was at commit d82795d → this module): 256→256 on 7² (N 32) 29–36 →
19 ms, 128→256 on 7² 17–18 → 11, on 14² (N 16) 23 → 22, 256→512 on 28² (N 8) 122–125 →
98, 64→128 on 56² (N 8) 61–63 → 50 (part of it is the filter transform as one product and
dU kept in the workspace, which F(2×2) lacked). The price is rounding: its transforms
hold 4, 5, 8 and 1/24, and in float32 the output and gradients are off by 2e-6 to 1e-5 of
their range against 2e-7 to 5e-7 for im2col's one product (float64: 1e-14; the tests bound
both).

Layouts: x (N, C, H, W), W (F, C, 3, 3), U (36, F, C), V (36, C, P) with p = (n·Th + ti)·Tw
+ tj, M (36, F, P). `winograd_reference` is the definition in NumPy (the tests' oracle);
the four transforms are Numba loops for the CPU, with the 1-D steps written out so that
LLVM keeps the six values in registers (a general small-matrix loop made the transforms
cost more than the products they save: 4.5 ms against 2.6 ms on the 256-channel 7×7
layer). There is no CUDA form: on the GPU the convolution stays im2col + cuBLAS; this is a
CPU formulation kept for its measured speed (minidet/layers/conv.py says where).
"""
from __future__ import annotations

import numpy as np
from numba import njit, prange

from ._device import buffer, output_size

BT = np.array([[4, 0, -5, 0, 1, 0], [0, -4, -4, 1, 1, 0], [0, 4, -4, -1, 1, 0],
               [0, -2, -1, 2, 1, 0], [0, 2, -1, -2, 1, 0], [0, 4, 0, -5, 0, 1]], dtype=np.float64)
G = np.array([[1 / 4, 0, 0], [-1 / 6, -1 / 6, -1 / 6], [-1 / 6, 1 / 6, -1 / 6],
              [1 / 24, 1 / 12, 1 / 6], [1 / 24, -1 / 12, 1 / 6], [0, 0, 1]], dtype=np.float64)
AT = np.array([[1, 1, 1, 1, 1, 0], [0, 1, -1, 2, -2, 0], [0, 1, 1, 4, 4, 0], [0, 1, -1, 8, -8, 1]],
              dtype=np.float64)
M_OUT, ALPHA = 4, 6         # output tile side, input tile side
# U[(a, b)] = Σ_ij G[a, i] G[b, j] g[i, j]: the filter transform as one (9, 36) matrix.
FILTER = np.einsum("ai,bj->ijab", G, G).reshape(9, ALPHA * ALPHA)


def tiles(H: int, W: int, padding: int):
    """(Ho, Wo, Th, Tw): the output size and the 4×4 tiles covering it."""
    Ho, Wo = output_size(H, 3, 1, padding), output_size(W, 3, 1, padding)
    return Ho, Wo, -(-Ho // M_OUT), -(-Wo // M_OUT)


def winograd_reference(x, W, b, padding: int = 1):
    """y (N, F, Ho, Wo) by the formula above, tile by tile, in float64 NumPy."""
    x, W = np.asarray(x, np.float64), np.asarray(W, np.float64)
    N, C, H, Wd = x.shape
    F = W.shape[0]
    Ho, Wo, Th, Tw = tiles(H, Wd, padding)
    xp = padded(x, padding, Th, Tw)
    U = np.einsum("ai,fcij,bj->fcab", G, W, G)
    y = np.zeros((N, F, M_OUT * Th, M_OUT * Tw))
    for ti in range(Th):
        for tj in range(Tw):
            d = xp[:, :, M_OUT * ti:M_OUT * ti + ALPHA, M_OUT * tj:M_OUT * tj + ALPHA]
            V = np.einsum("ai,ncij,bj->ncab", BT, d, BT)
            m = np.einsum("fcab,ncab->nfab", U, V)
            y[:, :, M_OUT * ti:M_OUT * (ti + 1), M_OUT * tj:M_OUT * (tj + 1)] = \
                np.einsum("ia,nfab,jb->nfij", AT, m, AT)
    return y[:, :, :Ho, :Wo] + np.asarray(b, np.float64).reshape(1, F, 1, 1)


def padded(x, padding: int, Th: int, Tw: int, out=None):
    """x (N, C, H, W) in zeros of (N, C, 4·Th + 2, 4·Tw + 2) at offset `padding`: every patch
    the tiles read, with no bound to test."""
    N, C, H, W = x.shape
    shape = (N, C, M_OUT * Th + 2, M_OUT * Tw + 2)
    if out is None:
        out = np.empty(shape, dtype=x.dtype)
    out[...] = 0
    h, w = min(H, shape[2] - padding), min(W, shape[3] - padding)
    out[:, :, padding:padding + h, padding:padding + w] = x[:, :, :h, :w]
    return out


def filter_transform(W, out):
    """out (36, F, C) = U of W (F, C, 3, 3): one product (36, 9) @ (9, F·C), W read
    transposed. (W as (F·C, 9) @ (9, 36) and a transposed copy took 4.0 ms for 256 × 256
    filters, this 0.3 ms.)"""
    F, C = W.shape[:2]
    np.matmul(FILTER.T.astype(W.dtype), W.reshape(F * C, 9).T, out=out.reshape(ALPHA * ALPHA, F * C))
    return out


def filter_transform_adjoint(dU):
    """dW (F, C, 3, 3) of dU (36, F, C): dW = Gᵀ dU G per (f, c)."""
    _, F, C = dU.shape
    return (dU.reshape(ALPHA * ALPHA, F * C).T @ FILTER.T.astype(dU.dtype)).reshape(F, C, 3, 3)


# The transforms that write V or dM, or read M or dV, move CHUNK tiles' 36 values through
# a small buffer, a row a cache line at a time: the 36 rows lie C·P·4 bytes apart, often a
# multiple of 4 KiB, and touching all of them entry by entry made the caches evict each
# other's lines (4.6 ms against 1.6 ms for F(2×2)'s V of the 256-channel 7×7 layer, one thread).
CHUNK = 16


@njit(inline="always", cache=True, nogil=True)
def _tile_of(p, Th, Tw):
    """(n, ti, tj) of tile p = (n·Th + ti)·Tw + tj."""
    n = p // (Th * Tw)
    ti = (p - n * Th * Tw) // Tw
    return n, ti, p - n * Th * Tw - ti * Tw


@njit(inline="always", cache=True, nogil=True)
def _store_rows(buf, out, row, p0, count):
    """out[ξ, row, p0:p0 + count] = buf[ξ, :count] for every ξ."""
    for xi in range(buf.shape[0]):
        for q in range(count):
            out[xi, row, p0 + q] = buf[xi, q]


@njit(inline="always", cache=True, nogil=True)
def _load_rows(src, row, p0, count, buf):
    """buf[ξ, :count] = src[ξ, row, p0:p0 + count] for every ξ."""
    for xi in range(buf.shape[0]):
        for q in range(count):
            buf[xi, q] = src[xi, row, p0 + q]


# The constants as float32: Numba types a bare 4 as int64, and int64 · float32 as float64,
# which would do a float32 layer's transforms in double precision (and half the lanes).
# float32 · float64 stays float64, so the float64 path (the gradient checks) is unchanged.
_2, _4, _5, _8 = np.float32(2), np.float32(4), np.float32(5), np.float32(8)


@njit(inline="always", cache=True, nogil=True)
def _bt(d0, d1, d2, d3, d4, d5):
    """Bᵀ d."""
    return (_4 * d0 - _5 * d2 + d4, d3 + d4 - _4 * (d1 + d2), _4 * (d1 - d2) + d4 - d3,
            _2 * (d3 - d1) + d4 - d2, _2 * (d1 - d3) + d4 - d2, _4 * d1 - _5 * d3 + d5)


@njit(inline="always", cache=True, nogil=True)
def _b(v0, v1, v2, v3, v4, v5):
    """B v, the adjoint of Bᵀ ·."""
    return (_4 * v0, _4 * (v2 - v1 + v5) + _2 * (v4 - v3), -_5 * v0 - _4 * (v1 + v2) - v3 - v4,
            v1 - v2 + _2 * (v3 - v4) - _5 * v5, v0 + v1 + v2 + v3 + v4, v5)


@njit(inline="always", cache=True, nogil=True)
def _at(m0, m1, m2, m3, m4, m5):
    """Aᵀ m (6 → 4)."""
    s12, d12, s34, d34 = m1 + m2, m1 - m2, m3 + m4, m3 - m4
    return m0 + s12 + s34, d12 + _2 * d34, s12 + _4 * s34, d12 + _8 * d34 + m5


@njit(inline="always", cache=True, nogil=True)
def _a(g0, g1, g2, g3):
    """A g (4 → 6), the adjoint of Aᵀ ·."""
    e, o = g0 + g2, g1 + g3
    e4, o2 = g0 + _4 * g2, _2 * g1 + _8 * g3
    return g0, e + o, e - o, e4 + o2, e4 - o2, g3


@njit(parallel=True, cache=True, nogil=True)
def input_transform(xpad, Th, Tw, V):
    """V (36, C, N·Th·Tw) = Bᵀ d B of every 6×6 patch d of xpad (N, C, 4·Th + 2, 4·Tw + 2);
    a thread a channel."""
    C = xpad.shape[1]
    P = V.shape[2]
    for c in prange(C):
        buf = np.empty((36, CHUNK), dtype=xpad.dtype)
        t = np.empty((6, 6), dtype=xpad.dtype)
        for p0 in range(0, P, CHUNK):
            count = min(CHUNK, P - p0)
            for q in range(count):
                n, ti, tj = _tile_of(p0 + q, Th, Tw)
                i, j = 4 * ti, 4 * tj
                for b in range(6):          # Bᵀ d, one input column at a time
                    r = _bt(xpad[n, c, i, j + b], xpad[n, c, i + 1, j + b], xpad[n, c, i + 2, j + b],
                            xpad[n, c, i + 3, j + b], xpad[n, c, i + 4, j + b], xpad[n, c, i + 5, j + b])
                    for a in range(6):
                        t[a, b] = r[a]
                for a in range(6):          # (Bᵀ d) B, row by row
                    r = _bt(t[a, 0], t[a, 1], t[a, 2], t[a, 3], t[a, 4], t[a, 5])
                    for b in range(6):
                        buf[6 * a + b, q] = r[b]
            _store_rows(buf, V, c, p0, count)


@njit(parallel=True, cache=True, nogil=True)
def input_transform_adjoint(dV, pad, Th, Tw, dx):
    """dx (N, C, H, W) = Σ over tiles of B dV Bᵀ added where `input_transform` read; a thread a channel."""
    N, C, H, W = dx.shape
    P = dV.shape[2]
    for c in prange(C):
        dx[:, c] = 0
        buf = np.empty((36, CHUNK), dtype=dx.dtype)
        t = np.empty((6, 6), dtype=dx.dtype)
        for p0 in range(0, P, CHUNK):
            count = min(CHUNK, P - p0)
            _load_rows(dV, c, p0, count, buf)
            for q in range(count):
                n, ti, tj = _tile_of(p0 + q, Th, Tw)
                for a in range(6):          # dV Bᵀ, row by row (the adjoint of · B)
                    k = 6 * a
                    r = _b(buf[k, q], buf[k + 1, q], buf[k + 2, q], buf[k + 3, q], buf[k + 4, q], buf[k + 5, q])
                    for b in range(6):
                        t[a, b] = r[b]
                for b in range(6):          # B (dV Bᵀ), column by column, added to dx
                    jj = 4 * tj - pad + b
                    if 0 <= jj < W:
                        r = _b(t[0, b], t[1, b], t[2, b], t[3, b], t[4, b], t[5, b])
                        i0 = 4 * ti - pad
                        for a in range(6):
                            if 0 <= i0 + a < H:
                                dx[n, c, i0 + a, jj] += r[a]


@njit(parallel=True, cache=True, nogil=True)
def output_transform(M, b, Th, Tw, y):
    """y (N, F, Ho, Wo) = Aᵀ m A + b of every tile m of M (36, F, P), cut at Ho, Wo; a thread a filter."""
    N, F, Ho, Wo = y.shape
    P = M.shape[2]
    for f in prange(F):
        buf = np.empty((36, CHUNK), dtype=M.dtype)
        t = np.empty((4, 6), dtype=M.dtype)
        for p0 in range(0, P, CHUNK):
            count = min(CHUNK, P - p0)
            _load_rows(M, f, p0, count, buf)
            for q in range(count):
                n, ti, tj = _tile_of(p0 + q, Th, Tw)
                for bb in range(6):         # Aᵀ m, column by column
                    r = _at(buf[bb, q], buf[6 + bb, q], buf[12 + bb, q], buf[18 + bb, q],
                            buf[24 + bb, q], buf[30 + bb, q])
                    for a in range(4):
                        t[a, bb] = r[a]
                for a in range(4):          # (Aᵀ m) A, row by row
                    i = 4 * ti + a
                    if i < Ho:
                        r = _at(t[a, 0], t[a, 1], t[a, 2], t[a, 3], t[a, 4], t[a, 5])
                        for jb in range(4):
                            if 4 * tj + jb < Wo:
                                y[n, f, i, 4 * tj + jb] = r[jb] + b[f]


@njit(parallel=True, cache=True, nogil=True)
def output_transform_adjoint(dy, Th, Tw, zero, dM):
    """dM (36, F, P) = A dY Aᵀ of every 4×4 tile dY of dy (N, F, Ho, Wo), 0 past the edge."""
    F, Ho, Wo = dy.shape[1:]
    P = dM.shape[2]
    for f in prange(F):
        buf = np.empty((36, CHUNK), dtype=dy.dtype)
        g = np.empty((4, 4), dtype=dy.dtype)
        t = np.empty((6, 4), dtype=dy.dtype)
        for p0 in range(0, P, CHUNK):
            count = min(CHUNK, P - p0)
            for q in range(count):
                n, ti, tj = _tile_of(p0 + q, Th, Tw)
                for a in range(4):
                    for bb in range(4):
                        i, j = 4 * ti + a, 4 * tj + bb
                        g[a, bb] = dy[n, f, i, j] if (i < Ho and j < Wo) else zero
                for bb in range(4):         # A dY, column by column
                    r = _a(g[0, bb], g[1, bb], g[2, bb], g[3, bb])
                    for a in range(6):
                        t[a, bb] = r[a]
                for a in range(6):          # (A dY) Aᵀ, row by row
                    r = _a(t[a, 0], t[a, 1], t[a, 2], t[a, 3])
                    for bb in range(6):
                        buf[6 * a + bb, q] = r[bb]
            _store_rows(buf, dM, f, p0, count)


def forward(x, W, b, padding: int, bmm, workspace=None):
    """(y (N, F, Ho, Wo), cache) on the CPU; `bmm(a, b, out)`: the 36 products a[ξ] @ b[ξ].
    `workspace`: an optional dict keeping the large buffers between calls (the cache holds
    V from it: run the backward before the next forward with the same workspace)."""
    N, C, H, Wd = x.shape
    F = W.shape[0]
    Ho, Wo, Th, Tw = tiles(H, Wd, padding)
    dtype = np.result_type(x.dtype, W.dtype)
    P = N * Th * Tw
    xpad = padded(x.astype(dtype, copy=False), padding, Th, Tw,
                  buffer(workspace, "xpad", (N, C, M_OUT * Th + 2, M_OUT * Tw + 2), dtype))
    V = buffer(workspace, "V", (ALPHA * ALPHA, C, P), dtype)
    input_transform(xpad, Th, Tw, V)
    U = filter_transform(W.astype(dtype, copy=False), buffer(workspace, "U", (ALPHA * ALPHA, F, C), dtype))
    M = bmm(U, V, buffer(workspace, "M", (ALPHA * ALPHA, F, P), dtype))
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
    dM = buffer(workspace, "M", (ALPHA * ALPHA, F, V.shape[2]), dtype)   # M is no longer needed
    output_transform_adjoint(dy, Th, Tw, dtype.type(0), dM)
    dW = filter_transform_adjoint(bmm(dM, V.transpose(0, 2, 1), buffer(workspace, "dU", U.shape, dtype)))
    db = dy.sum(axis=(0, 2, 3))
    dx = None
    if need_dx:
        dV = bmm(U.transpose(0, 2, 1), dM, buffer(workspace, "dV", (ALPHA * ALPHA, C, V.shape[2]), dtype))
        dx = np.empty(x_shape, dtype=dtype)
        input_transform_adjoint(dV, padding, Th, Tw, dx)
    return dx, dW, db
