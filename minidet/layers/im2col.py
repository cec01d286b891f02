"""CPU im2col / col2im, compiled with Numba (the GPU twins live in kernels/im2col.py).

Layout. For an input x of shape (N, C, H, W), a kernel k×k, stride s and padding p,
the output size is Ho = (H + 2p − k) // s + 1 and Wo = (W + 2p − k) // s + 1, and

    cols[(c·k + ki)·k + kj, (n·Ho + oi)·Wo + oj] = x[n, c, oi·s − p + ki, oj·s − p + kj]

(zero where that index falls in the padding). cols has shape (C·k·k, N·Ho·Wo): the whole
batch is one matrix, so the convolution is ONE matrix product W.reshape(F, C·k·k) @ cols
of shape (F, N·Ho·Wo). One large product keeps BLAS efficient on the deep layers whose
maps are small (7×7: a per-image product there has only 49 columns). Each row of cols
is written contiguously, which measured 2.2× faster here than the transposed
(N·Ho·Wo, C·k·k) layout.

col2im is the adjoint: it sums every column entry back into the input pixel it was
copied from. Each (n, c) plane is owned by one thread, so the sum needs no atomics and
is deterministic.
"""
from __future__ import annotations

import numpy as np
from numba import njit, prange


def output_size(size: int, kernel: int, stride: int, padding: int) -> int:
    """(size + 2·padding − kernel) // stride + 1: the output length along one axis."""
    return (size + 2 * padding - kernel) // stride + 1


@njit(parallel=True, cache=True, nogil=True)
def _im2col(x, k, stride, pad, Ho, Wo, cols):
    N, C, H, W = x.shape
    for nc in prange(N * C):
        n = nc // C
        c = nc - n * C
        for ki in range(k):
            for kj in range(k):
                row = (c * k + ki) * k + kj
                for oi in range(Ho):
                    ii = oi * stride - pad + ki
                    base = (n * Ho + oi) * Wo
                    if ii < 0 or ii >= H:
                        for oj in range(Wo):
                            cols[row, base + oj] = 0
                    else:
                        for oj in range(Wo):
                            jj = oj * stride - pad + kj
                            if jj < 0 or jj >= W:
                                cols[row, base + oj] = 0
                            else:
                                cols[row, base + oj] = x[n, c, ii, jj]


@njit(parallel=True, cache=True, nogil=True)
def _col2im(cols, k, stride, pad, Ho, Wo, dx):
    N, C, H, W = dx.shape
    for nc in prange(N * C):
        n = nc // C
        c = nc - n * C
        for ii in range(H):
            for jj in range(W):
                dx[n, c, ii, jj] = 0
        for ki in range(k):
            for kj in range(k):
                row = (c * k + ki) * k + kj
                for oi in range(Ho):
                    ii = oi * stride - pad + ki
                    if ii < 0 or ii >= H:
                        continue
                    base = (n * Ho + oi) * Wo
                    for oj in range(Wo):
                        jj = oj * stride - pad + kj
                        if 0 <= jj < W:
                            dx[n, c, ii, jj] += cols[row, base + oj]


def im2col(x, k: int, stride: int, padding: int, out=None):
    """Unfold x (N, C, H, W) into cols (C·k·k, N·Ho·Wo); see the module docstring.

    `out`, if given, is a buffer of that shape and dtype to write into (reused across steps).
    """
    N, C, H, W = x.shape
    Ho, Wo = output_size(H, k, stride, padding), output_size(W, k, stride, padding)
    if out is None:
        out = np.empty((C * k * k, N * Ho * Wo), dtype=x.dtype)
    _im2col(np.ascontiguousarray(x), k, stride, padding, Ho, Wo, out)
    return out


def col2im(cols, x_shape, k: int, stride: int, padding: int, out=None):
    """Fold cols (C·k·k, N·Ho·Wo) back into dx of shape x_shape, summing overlaps."""
    N, C, H, W = x_shape
    Ho, Wo = output_size(H, k, stride, padding), output_size(W, k, stride, padding)
    if out is None:
        out = np.empty(x_shape, dtype=cols.dtype)
    _col2im(np.ascontiguousarray(cols), k, stride, padding, Ho, Wo, out)
    return out


def im2col_reference(x, k: int, stride: int, padding: int):
    """The same unfolding with NumPy slicing: the readable definition the tests compare to."""
    N, C, H, W = x.shape
    Ho, Wo = output_size(H, k, stride, padding), output_size(W, k, stride, padding)
    xp = np.pad(x, ((0, 0), (0, 0), (padding, padding), (padding, padding)))
    cols = np.empty((N, C, k, k, Ho, Wo), dtype=x.dtype)
    for ki in range(k):
        for kj in range(k):
            cols[:, :, ki, kj] = xp[:, :, ki : ki + stride * Ho : stride, kj : kj + stride * Wo : stride]
    return cols.transpose(1, 2, 3, 0, 4, 5).reshape(C * k * k, N * Ho * Wo)
