"""im2col / col2im: the reference, the element rules, and their CPU and CUDA forms.

Layout. x (N, C, H, W), a k×k kernel, stride s, padding p, Ho = (H + 2p − k) // s + 1,
Wo = (W + 2p − k) // s + 1 (`output_size`), and cols of shape (C·k·k, N·Ho·Wo):

    cols[(c·k + ki)·k + kj, (n·Ho + oi)·Wo + oj] = x[n, c, oi·s − p + ki, oj·s − p + kj]

(0 where that index falls in the padding): the whole batch is one matrix, so the caller
(`minidet.layers.conv`) does ONE product per layer (xp.matmul: BLAS or cuBLAS). One
large product keeps BLAS efficient on the deep layers whose maps are small (7×7: a
per-image product there has only 49 columns).

col2im is the adjoint: it sums every column entry back into the input pixel it was
copied from, for ki then kj (each (ki, kj) reads at most one entry per pixel), so the
float32 sum is the same, in the same order, on both backends. No atomics; deterministic.

`im2col` / `col2im` pick the backend from the array module.
CPU: Numba loops in parallel over the rows of cols (im2col: each row written front to
back; the (C·k·k, N·Ho·Wo) layout measured 2.2× faster here than the transposed one) and
over channels (col2im: each channel's k² rows read front to back and added into its N
planes, which have one owner).
CUDA: im2col, one work item per cols element, C·k·k·N·Ho·Wo of them (consecutive threads
write consecutive columns of one row: the stores coalesce); col2im gathers, as darknet's,
one work item per element of dx, N·C·H·W of them, summing the entry oi = (ii + p − ki) / s
(a whole number in [0, Ho), likewise oj) for each ki, kj: at most k² reads of cols; 1-D grid-stride loops
(kernels/_launch.py). Both OVERWRITE their output, padding entries included.
"""
from __future__ import annotations

import numpy as np
from numba import cuda, njit, prange

from ._device import get_array_module, output_size
from ._launch import check_device_array, check_float, check_out, launch, unravel_nchw


def im2col_reference(x, k: int, stride: int, padding: int):
    """The unfolding with NumPy slicing: the readable definition the tests compare to."""
    N, C, H, W = x.shape
    Ho, Wo = output_size(H, k, stride, padding), output_size(W, k, stride, padding)
    xp = np.pad(x, ((0, 0), (0, 0), (padding, padding), (padding, padding)))
    cols = np.empty((N, C, k, k, Ho, Wo), dtype=x.dtype)
    for ki in range(k):
        for kj in range(k):
            cols[:, :, ki, kj] = xp[:, :, ki : ki + stride * Ho : stride, kj : kj + stride * Wo : stride]
    return cols.transpose(1, 2, 3, 0, 4, 5).reshape(C * k * k, N * Ho * Wo)


def col2im_reference(cols, x_shape, k, stride, padding):
    """The adjoint of im2col, entry by entry, in float64."""
    N, C, H, W = x_shape
    Ho, Wo = output_size(H, k, stride, padding), output_size(W, k, stride, padding)
    cols = np.asarray(cols, dtype=np.float64).reshape(C, k, k, N, Ho, Wo)
    dxp = np.zeros((N, C, H + 2 * padding, W + 2 * padding))
    for ki in range(k):
        for kj in range(k):
            for oi in range(Ho):
                for oj in range(Wo):
                    dxp[:, :, oi * stride + ki, oj * stride + kj] += cols[:, ki, kj, :, oi, oj].T
    return dxp[:, :, padding:padding + H, padding:padding + W]


# The CPU keeps its own formulation, loops that walk cols row by row: im2col gives each
# thread whole rows (c, ki, kj) of cols and writes each one front to back, reading the
# N planes of channel c; col2im gives each thread a channel c, reads its k² rows of cols
# front to back and adds them into its N planes. Both measured 1.2–5× faster than loops
# over (n, c) planes, which write or read each row in pieces of Ho·Wo (x 32×C×H², 3×3,
# pad 1, one thread, best of 20, 2-core machine with the other core busy; im2col / col2im
# in ms, planes → rows): C 256 at 7²: 7.35 → 2.34 / 3.41 → 2.89; C 16 at 28²: 1.67 → 0.60 /
# 1.91 → 0.77; C 4 at 112²: 10.42 → 2.08 / 11.75 → 7.08. The CUDA kernels' per-element
# rules below, run on the CPU, measured 3.4× (im2col) and 3.0× (col2im) slower than the
# plane loops. col2im adds a pixel's entries for ki then kj, as the CUDA gather does: the
# two agree bit for bit (the simulator tests compare them).
@njit(parallel=True, cache=True, nogil=True)
def im2col_cpu_loop(x, k, stride, pad, Ho, Wo, cols):
    N, C, H, W = x.shape
    for row in prange(C * k * k):
        c = row // (k * k)
        r = row - c * k * k
        ki = r // k
        kj = r - ki * k
        for n in range(N):
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
def col2im_cpu_loop(cols, k, stride, pad, Ho, Wo, dx):
    N, C, H, W = dx.shape
    for c in prange(C):
        dx[:, c] = 0
        for ki in range(k):
            for kj in range(k):
                row = (c * k + ki) * k + kj
                for n in range(N):
                    for oi in range(Ho):
                        ii = oi * stride - pad + ki
                        if ii < 0 or ii >= H:
                            continue
                        base = (n * Ho + oi) * Wo
                        for oj in range(Wo):
                            jj = oj * stride - pad + kj
                            if 0 <= jj < W:
                                dx[n, c, ii, jj] += cols[row, base + oj]


def _im2col_kernel(x, k, stride, pad, Ho, Wo, cols):
    N, C, H, W = x.shape
    L = Ho * Wo
    width = N * L  # columns of cols
    total = C * k * k * width
    zero = cols.dtype.type(0)
    for idx in range(cuda.grid(1), total, cuda.gridsize(1)):
        col = idx % width
        row = idx // width
        n = col // L
        p = col - n * L
        oi = p // Wo
        oj = p - oi * Wo
        kj = row % k
        t = row // k
        ki = t % k
        c = t // k
        ii = oi * stride - pad + ki
        jj = oj * stride - pad + kj
        if 0 <= ii < H and 0 <= jj < W:
            cols[row, col] = x[n, c, ii, jj]
        else:
            cols[row, col] = zero


def _col2im_kernel(cols, k, stride, pad, Ho, Wo, dx):
    N, C, H, W = dx.shape
    total = N * C * H * W
    for idx in range(cuda.grid(1), total, cuda.gridsize(1)):
        n, c, ii, jj = unravel_nchw(idx, C, H, W)
        acc = dx.dtype.type(0)
        for ki in range(k):
            ri = ii + pad - ki  # = oi·s for the output row that read x[ii] through ki
            if ri < 0 or ri % stride != 0:
                continue
            oi = ri // stride
            if oi >= Ho:
                continue
            for kj in range(k):
                rj = jj + pad - kj
                if rj < 0 or rj % stride != 0:
                    continue
                oj = rj // stride
                if oj >= Wo:
                    continue
                acc += cols[(c * k + ki) * k + kj, (n * Ho + oi) * Wo + oj]
        dx[n, c, ii, jj] = acc


im2col_kernel = cuda.jit(_im2col_kernel)
col2im_kernel = cuda.jit(_col2im_kernel)


def im2col(x, k: int, stride: int, padding: int, out=None):
    """Unfold x (N, C, H, W) into cols (C·k·k, N·Ho·Wo) on x's device; see the module docstring.

    out: an optional C-contiguous (C·k·k, N·Ho·Wo) array of x's dtype to write into (the
    caller's reused buffer); returned.
    """
    if get_array_module(x) is np:
        return im2col_cpu(x, k, stride, padding, out)
    return im2col_gpu(x, k, stride, padding, out)


def col2im(cols, x_shape, k: int, stride: int, padding: int, out=None):
    """Fold cols (C·k·k, N·Ho·Wo) back into dx of shape x_shape (N, C, H, W), summing overlaps,
    on cols' device. out: an optional C-contiguous array of shape x_shape and cols' dtype."""
    if get_array_module(cols) is np:
        return col2im_cpu(cols, x_shape, k, stride, padding, out)
    return col2im_gpu(cols, x_shape, k, stride, padding, out)


def _prepare_im2col(x, k, stride, padding, out, xp, where):
    check_float(x, where, "x")
    N, C, H, W = x.shape
    Ho, Wo = output_size(H, k, stride, padding), output_size(W, k, stride, padding)
    if Ho <= 0 or Wo <= 0:
        raise ValueError(f"{where}: a {k}×{k} kernel with padding {padding} does not fit x of shape {tuple(x.shape)}")
    cols = check_out(out, (C * k * k, N * Ho * Wo), x.dtype, xp, where)
    return xp.ascontiguousarray(x), Ho, Wo, cols


def _prepare_col2im(cols, x_shape, k, stride, padding, out, xp, where):
    check_float(cols, where, "cols")
    N, C, H, W = (int(s) for s in x_shape)
    Ho, Wo = output_size(H, k, stride, padding), output_size(W, k, stride, padding)
    if tuple(cols.shape) != (C * k * k, N * Ho * Wo):
        raise ValueError(f"{where}: cols has shape {tuple(cols.shape)}, expected {(C * k * k, N * Ho * Wo)} "
                         f"for x_shape {tuple(x_shape)}, k={k}, stride={stride}, padding={padding}")
    dx = check_out(out, (N, C, H, W), cols.dtype, xp, where)
    return xp.ascontiguousarray(cols), Ho, Wo, dx


def im2col_cpu(x, k: int, stride: int, padding: int, out=None):
    x, Ho, Wo, cols = _prepare_im2col(x, k, stride, padding, out, np, "im2col_cpu")
    im2col_cpu_loop(x, k, stride, padding, Ho, Wo, cols)
    return cols


def col2im_cpu(cols, x_shape, k: int, stride: int, padding: int, out=None):
    cols, Ho, Wo, dx = _prepare_col2im(cols, x_shape, k, stride, padding, out, np, "col2im_cpu")
    col2im_cpu_loop(cols, k, stride, padding, Ho, Wo, dx)
    return dx


def im2col_gpu(x, k: int, stride: int, padding: int, out=None):
    where = "im2col_gpu"
    x, Ho, Wo, cols = _prepare_im2col(x, k, stride, padding, out, check_device_array(x, where, "x"), where)
    launch(im2col_kernel, cols.size, x, k, stride, padding, Ho, Wo, cols)
    return cols


def col2im_gpu(cols, x_shape, k: int, stride: int, padding: int, out=None):
    where = "col2im_gpu"
    cols, Ho, Wo, dx = _prepare_col2im(cols, x_shape, k, stride, padding, out,
                                       check_device_array(cols, where, "cols"), where)
    launch(col2im_kernel, dx.size, cols, k, stride, padding, Ho, Wo, dx)
    return dx
