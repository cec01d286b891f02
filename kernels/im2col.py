"""im2col / col2im on the GPU: the CUDA twins of `minidet.layers.im2col`.

Layout (the CPU one, exactly). x (N, C, H, W), a k×k kernel, stride s, padding p,
Ho = (H + 2p − k) // s + 1, Wo = (W + 2p − k) // s + 1, and cols of shape (C·k·k, N·Ho·Wo):

    cols[(c·k + ki)·k + kj, (n·Ho + oi)·Wo + oj] = x[n, c, oi·s − p + ki, oj·s − p + kj]

(0 where that index falls in the padding): the whole batch is one matrix, so the caller
(`minidet.layers.conv`, with xp.matmul, i.e. cuBLAS) does one product per layer.

im2col kernel. Launch: one work item per cols element, C·k·k·N·Ho·Wo of them, in a 1-D
grid-stride loop (kernels/_launch.py). Reads x (each element up to k² times, through the
cache), writes every element of cols once: it OVERWRITES cols, padding entries included.
Consecutive threads write consecutive columns of one row, so the stores coalesce; the
loads are strided by s.

col2im kernel (gather, as darknet's). Launch: one work item per element of dx,
N·C·H·W of them. Each sums, for ki then kj (the CPU loop's order, so the float32 sums
agree to the bit), the one column entry of cols that was copied from it, if any:
oi = (i + p − ki) / s must be a whole number in [0, Ho), likewise oj. Reads at most k²
entries of cols per item, writes dx once: it OVERWRITES dx. No atomics, so the result is
deterministic.
"""
from __future__ import annotations

from numba import cuda

from minidet.layers.im2col import output_size

from ._launch import check_device_array, check_float, check_out, launch


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
        jj = idx % W
        t = idx // W
        ii = t % H
        t = t // H
        c = t % C
        n = t // C
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


def im2col_gpu(x, k: int, stride: int, padding: int, out=None):
    """Unfold x (N, C, H, W) into cols (C·k·k, N·Ho·Wo) on the GPU; see the module docstring.

    out: an optional C-contiguous (C·k·k, N·Ho·Wo) array of x's dtype to write into (the
    caller's reused buffer); returned.
    """
    where = "im2col_gpu"
    xp = check_device_array(x, where, "x")
    check_float(x, where, "x")
    N, C, H, W = x.shape
    Ho, Wo = output_size(H, k, stride, padding), output_size(W, k, stride, padding)
    if Ho <= 0 or Wo <= 0:
        raise ValueError(f"{where}: a {k}×{k} kernel with padding {padding} does not fit x of shape {tuple(x.shape)}")
    x = xp.ascontiguousarray(x)
    cols = check_out(out, (C * k * k, N * Ho * Wo), x.dtype, xp, where)
    launch(im2col_kernel, cols.size, x, k, stride, padding, Ho, Wo, cols)
    return cols


def col2im_gpu(cols, x_shape, k: int, stride: int, padding: int, out=None):
    """Fold cols (C·k·k, N·Ho·Wo) back into dx of shape x_shape (N, C, H, W), summing overlaps.

    out: an optional C-contiguous array of shape x_shape and cols' dtype to write into.
    """
    where = "col2im_gpu"
    xp = check_device_array(cols, where, "cols")
    check_float(cols, where, "cols")
    N, C, H, W = (int(s) for s in x_shape)
    Ho, Wo = output_size(H, k, stride, padding), output_size(W, k, stride, padding)
    if tuple(cols.shape) != (C * k * k, N * Ho * Wo):
        raise ValueError(f"{where}: cols has shape {tuple(cols.shape)}, expected {(C * k * k, N * Ho * Wo)} "
                         f"for x_shape {tuple(x_shape)}, k={k}, stride={stride}, padding={padding}")
    cols = xp.ascontiguousarray(cols)
    dx = check_out(out, (N, C, H, W), cols.dtype, xp, where)
    launch(col2im_kernel, dx.size, cols, k, stride, padding, Ho, Wo, dx)
    return dx
