"""RoI max-pooling: the reference, the bin scan written once, and its CPU and CUDA forms.

x (N, C, H, W), RoIs given as their batch indices (R,) int64 and their bins on the map,
hstart/hend (R, oh) and wstart/wend (R, ow) int64 half-open cell ranges, already clipped
(`roi_bins` computes them on the host from (R, 5) RoI rows: the rounding rule lives in one
place). y (R, C, oh, ow); argmax (R, C, oh, ow) int64, the flat index i·W + j of each bin's
first maximum in row-major order within its (n, c) plane, −1 for an empty bin (y 0).
The rule (torchvision.ops.roi_pool's) is written out in `minidet.layers.roi_pool`;
`roi_pool2d_forward_naive` is its plain-Python reference. `forward` / `backward` pick the
backend from the array module (NumPy: the CPU loops, CuPy: the CUDA kernels).

The bin scan (`_scan_bin`: one output element's maximum and its argmax) is written once and
compiled for both backends (`_launch.cpu_and_cuda`). CPU forward: a parallel Numba loop
over (roi, channel) pairs, which own their outputs. CUDA forward: one work item per output
element, R·C·oh·ow, in a 1-D grid-stride loop (kernels/_launch.py). Both read their bin of
x and write y and argmax once: OVERWRITE both.

Backward. CPU: a parallel loop over channels, which own their planes of dx, each RoI's bins
scattered in order r, ph, pw (no race, fixed order). CUDA (gather): one work item per input
element, N·C·H·W. Each visits the RoIs r of its image in order and, within each, the bins
(ph, pw) whose ranges hold its pixel (bins overlap by a row or column where h/oh is not
whole), in row-major order, and sums dy of those whose argmax is this pixel. Reads
R·(oh + ow) bin bounds and, per containing bin, one argmax and at most one dy; writes dx
once: OVERWRITES dx. No atomics: deterministic, and the additions come in the CPU loop's
order (r, then ph, then pw), so float32 results equal the CPU's bit for bit.
"""
from __future__ import annotations

import numpy as np
from numba import cuda, njit, prange

from ._device import get_array_module
from ._launch import check_device_array, check_float, check_out, cpu_and_cuda, launch, unravel_nchw


def round_half_away(v):
    """C's round(): halves go away from zero (2.5 → 3, −2.5 → −3), as an int64 array."""
    v = np.asarray(v, dtype=np.float64)
    return (np.sign(v) * np.floor(np.abs(v) + 0.5)).astype(np.int64)


def roi_bins(rois, spatial_scale: float, oh: int, ow: int, H: int, W: int):
    """Each RoI's bins on the map: (hstart, hend) int64 (R, oh) and (wstart, wend) int64 (R, ow),
    half-open [start, end) cell ranges clipped to [0, H) and [0, W) (start ≥ end: empty)."""
    cells = round_half_away(np.asarray(rois, dtype=np.float64)[:, 1:5] * spatial_scale)
    x1, y1, x2, y2 = cells[:, 0:1], cells[:, 1:2], cells[:, 2:3], cells[:, 3:4]
    h = np.maximum(y2 - y1 + 1, 1)
    w = np.maximum(x2 - x1 + 1, 1)
    ph, pw = np.arange(oh)[None, :], np.arange(ow)[None, :]
    hstart = np.clip(y1 + (ph * h) // oh, 0, H)
    hend = np.clip(y1 - (-((ph + 1) * h) // oh), 0, H)  # ceil(a/b) = −(−a // b)
    wstart = np.clip(x1 + (pw * w) // ow, 0, W)
    wend = np.clip(x1 - (-((pw + 1) * w) // ow), 0, W)
    return hstart, hend, wstart, wend


def roi_pool2d_forward_naive(x, rois, output_size, spatial_scale: float):
    """The reference: the rule in plain Python loops, one bin at a time, its own rounding and
    float bin edges (what the tests compare both backends to). Returns (y, argmax)."""
    oh, ow = output_size
    N, C, H, W = x.shape
    y = np.zeros((len(rois), C, oh, ow), dtype=x.dtype)
    argmax = np.full((len(rois), C, oh, ow), -1, dtype=np.int64)

    def c_round(v):
        return int(np.floor(abs(v) + 0.5)) * (1 if v >= 0 else -1)

    for r, roi in enumerate(rois):
        n = int(roi[0])
        x1, y1, x2, y2 = (c_round(float(v) * spatial_scale) for v in roi[1:5])
        h, w = max(y2 - y1 + 1, 1), max(x2 - x1 + 1, 1)
        for ph in range(oh):
            rows = range(max(y1 + int(np.floor(ph * h / oh)), 0), min(y1 + int(np.ceil((ph + 1) * h / oh)), H))
            for pw in range(ow):
                cols = range(max(x1 + int(np.floor(pw * w / ow)), 0), min(x1 + int(np.ceil((pw + 1) * w / ow)), W))
                for c in range(C):
                    for i in rows:
                        for j in cols:
                            if argmax[r, c, ph, pw] < 0 or x[n, c, i, j] > y[r, c, ph, pw]:
                                y[r, c, ph, pw] = x[n, c, i, j]
                                argmax[r, c, ph, pw] = i * W + j
    return y, argmax


def _scan_bin(x, n, c, h0, h1, w0, w1, W):
    """(maximum, flat index i·W + j of its first occurrence) of x[n, c, h0:h1, w0:w1];
    (0, −1) for an empty bin. Comparisons in x's dtype on both backends."""
    best = x.dtype.type(0)
    best_idx = -1
    for i in range(h0, h1):
        for j in range(w0, w1):
            v = x[n, c, i, j]
            if best_idx < 0 or v > best:  # strict: the first maximum wins ties
                best = v
                best_idx = i * W + j
    return best, best_idx


_scan_bin_cpu, _scan_bin_cuda = cpu_and_cuda(_scan_bin)


@njit(parallel=True, cache=True, nogil=True)
def forward_cpu_loop(x, batch, hstart, hend, wstart, wend, y, argmax):
    R, C, oh, ow = y.shape
    W = x.shape[3]
    for rc in prange(R * C):
        r = rc // C
        c = rc - r * C
        for ph in range(oh):
            for pw in range(ow):
                y[r, c, ph, pw], argmax[r, c, ph, pw] = _scan_bin_cpu(
                    x, batch[r], c, hstart[r, ph], hend[r, ph], wstart[r, pw], wend[r, pw], W)


@njit(parallel=True, cache=True, nogil=True)
def backward_cpu_loop(dy, argmax, batch, dx):
    R, C, oh, ow = dy.shape
    N, _, H, W = dx.shape
    for c in prange(C):
        for n in range(N):
            for i in range(H):
                for j in range(W):
                    dx[n, c, i, j] = 0
        for r in range(R):
            n = batch[r]
            for ph in range(oh):
                for pw in range(ow):
                    idx = argmax[r, c, ph, pw]
                    if idx >= 0:
                        dx[n, c, idx // W, idx % W] += dy[r, c, ph, pw]


def _forward_kernel(x, batch, hstart, hend, wstart, wend, y, argmax):
    R, C, oh, ow = y.shape
    W = x.shape[3]
    total = R * C * oh * ow
    for idx in range(cuda.grid(1), total, cuda.gridsize(1)):
        r, c, ph, pw = unravel_nchw(idx, C, oh, ow)
        y[r, c, ph, pw], argmax[r, c, ph, pw] = _scan_bin_cuda(
            x, batch[r], c, hstart[r, ph], hend[r, ph], wstart[r, pw], wend[r, pw], W)


def _backward_gather_kernel(dy, argmax, batch, hstart, hend, wstart, wend, dx):
    N, C, H, W = dx.shape
    R, _, oh, ow = dy.shape
    total = N * C * H * W
    for idx in range(cuda.grid(1), total, cuda.gridsize(1)):
        n, c, i, j = unravel_nchw(idx, C, H, W)
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


def forward(x, batch, hstart, hend, wstart, wend):
    """(y (R, C, oh, ow), argmax (R, C, oh, ow) int64) on x's device (NumPy: the CPU loop)."""
    if get_array_module(x) is not np:
        return roi_pool2d_forward_gpu(x, batch, hstart, hend, wstart, wend)
    x = np.ascontiguousarray(x)
    shape = (len(batch), x.shape[1], hstart.shape[1], wstart.shape[1])
    y, argmax = np.empty(shape, dtype=x.dtype), np.empty(shape, dtype=np.int64)
    forward_cpu_loop(x, batch, hstart, hend, wstart, wend, y, argmax)
    return y, argmax


def backward(dy, argmax, x_shape, batch, hstart, hend, wstart, wend):
    """dx (x_shape): each dy[r, c, ph, pw] added at its argmax in x[batch[r], c], on dy's device."""
    if get_array_module(dy) is not np:
        return roi_pool2d_backward_gpu(dy, argmax, x_shape, batch, hstart, hend, wstart, wend)
    dx = np.empty(x_shape, dtype=dy.dtype)
    backward_cpu_loop(np.ascontiguousarray(dy), argmax, batch, dx)
    return dx
