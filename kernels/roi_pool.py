"""RoI max-pooling on the GPU: the CUDA twin of `minidet.layers.roi_pool`.

x (N, C, H, W), RoIs given as their batch indices (R,) int64 and their bins on the map,
hstart/hend (R, oh) and wstart/wend (R, ow) int64 half-open cell ranges, already clipped
(`minidet.layers.roi_pool.roi_bins` computes them on the host: the rounding rule lives in
one place). y (R, C, oh, ow); argmax (R, C, oh, ow) int64, the flat index i·W + j of each
bin's first maximum in row-major order within its (n, c) plane, −1 for an empty bin (y 0).

Forward kernel. Launch: one work item per output element, R·C·oh·ow, in a 1-D grid-stride
loop (kernels/_launch.py). Reads its bin of x, writes y and argmax once: OVERWRITES both.

Backward kernel (gather). Launch: one work item per input element, N·C·H·W. Each visits the
RoIs r of its image in order and, within each, the bins (ph, pw) whose ranges hold its pixel
(bins overlap by a row or column where h/oh is not whole), in row-major order, and sums dy
of those whose argmax is this pixel. Reads R·(oh + ow) bin bounds and, per containing bin,
one argmax and at most one dy; writes dx once: OVERWRITES dx. No atomics: deterministic,
and the additions come in the CPU loop's order (r, then ph, then pw), so float32 results
equal the CPU's bit for bit.
"""
from __future__ import annotations

import numpy as np
from numba import cuda

from ._launch import check_device_array, check_float, check_out, launch


def _forward_kernel(x, batch, hstart, hend, wstart, wend, y, argmax):
    R, C, oh, ow = y.shape
    W = x.shape[3]
    total = R * C * oh * ow
    for idx in range(cuda.grid(1), total, cuda.gridsize(1)):
        pw = idx % ow
        t = idx // ow
        ph = t % oh
        t = t // oh
        c = t % C
        r = t // C
        n = batch[r]
        best = y.dtype.type(0)
        best_idx = -1
        for i in range(hstart[r, ph], hend[r, ph]):
            for j in range(wstart[r, pw], wend[r, pw]):
                v = x[n, c, i, j]
                if best_idx < 0 or v > best:  # strict: the first maximum wins ties
                    best = v
                    best_idx = i * W + j
        y[r, c, ph, pw] = best
        argmax[r, c, ph, pw] = best_idx


def _backward_gather_kernel(dy, argmax, batch, hstart, hend, wstart, wend, dx):
    N, C, H, W = dx.shape
    R, _, oh, ow = dy.shape
    total = N * C * H * W
    for idx in range(cuda.grid(1), total, cuda.gridsize(1)):
        j = idx % W
        t = idx // W
        i = t % H
        t = t // H
        c = t % C
        n = t // C
        here = i * W + j
        acc = dx.dtype.type(0)
        for r in range(R):
            if batch[r] != n:
                continue
            for ph in range(oh):
                if hstart[r, ph] <= i and i < hend[r, ph]:
                    for pw in range(ow):
                        if wstart[r, pw] <= j and j < wend[r, pw] and argmax[r, c, ph, pw] == here:
                            acc += dy[r, c, ph, pw]
        dx[n, c, i, j] = acc


forward_kernel = cuda.jit(_forward_kernel)
backward_gather_kernel = cuda.jit(_backward_gather_kernel)


def _bins(xp, batch, hstart, hend, wstart, wend, R, where):
    arrays = [xp.ascontiguousarray(xp.asarray(a, dtype=np.int64)) for a in (batch, hstart, hend, wstart, wend)]
    if arrays[0].shape != (R,) or arrays[1].shape != arrays[2].shape or arrays[3].shape != arrays[4].shape \
            or arrays[1].shape[0] != R or arrays[3].shape[0] != R:
        raise ValueError(f"{where}: batch (R,), hstart/hend (R, oh), wstart/wend (R, ow) must agree; got "
                         f"{[tuple(a.shape) for a in arrays]}")
    return arrays


def roi_pool2d_forward_gpu(x, batch, hstart, hend, wstart, wend, out=None, argmax_out=None):
    """(y (R, C, oh, ow), argmax (R, C, oh, ow) int64) for x (N, C, H, W) and the RoIs' bins.
    out, argmax_out: optional C-contiguous arrays to write into (x's dtype and int64)."""
    where = "roi_pool2d_forward_gpu"
    xp = check_device_array(x, where, "x")
    check_float(x, where, "x")
    x = xp.ascontiguousarray(x)
    R = int(np.shape(batch)[0])
    batch, hstart, hend, wstart, wend = _bins(xp, batch, hstart, hend, wstart, wend, R, where)
    oh, ow = hstart.shape[1], wstart.shape[1]
    y = check_out(out, (R, x.shape[1], oh, ow), x.dtype, xp, where)
    argmax = check_out(argmax_out, (R, x.shape[1], oh, ow), np.int64, xp, where, "argmax_out")
    launch(forward_kernel, y.size, x, batch, hstart, hend, wstart, wend, y, argmax)
    return y, argmax


def roi_pool2d_backward_gpu(dy, argmax, x_shape, batch, hstart, hend, wstart, wend, out=None):
    """dx (x_shape) with each dy (R, C, oh, ow) added at its argmax, by a gather (see above)."""
    where = "roi_pool2d_backward_gpu"
    xp = check_device_array(dy, where, "dy")
    check_device_array(argmax, where, "argmax")
    check_float(dy, where, "dy")
    if tuple(argmax.shape) != tuple(dy.shape) or argmax.dtype != np.int64:
        raise ValueError(f"{where}: argmax must be int64 of dy's shape {tuple(dy.shape)}, got "
                         f"{argmax.dtype} {tuple(argmax.shape)}")
    batch, hstart, hend, wstart, wend = _bins(xp, batch, hstart, hend, wstart, wend, dy.shape[0], where)
    dx = check_out(out, x_shape, dy.dtype, xp, where)
    launch(backward_gather_kernel, dx.size, xp.ascontiguousarray(dy), xp.ascontiguousarray(argmax), batch,
           hstart, hend, wstart, wend, dx)
    return dx
