"""Max-pooling on the GPU: the CUDA twin of `minidet.layers.maxpool`.

x (N, C, H, W) → y (N, C, Ho, Wo), Ho = (H − k) // s + 1, Wo = (W − k) // s + 1, no
padding; windows overlap when s < k. argmax (N, C, Ho, Wo) int32 holds the flat index
i·W + j of each window's maximum within its (n, c) plane: the first maximum in
row-major window order (a strict `>` scan), as on the CPU.

Forward kernel. Launch: one work item per output element, N·C·Ho·Wo of them, in a 1-D
grid-stride loop (kernels/_launch.py). Reads the k² inputs of its window, writes y and
argmax once each: it OVERWRITES both.

Backward kernel (gather), used when the caller passes kernel_size and stride. Launch: one
work item per input element, N·C·H·W of them. Each visits the windows that contain its
pixel (oi from ⌈(i − k + 1)/s⌉ to ⌊i/s⌋ clipped to [0, Ho), likewise oj) in row-major order,
as the CPU loop adds them, and sums dy of those whose argmax is this pixel. Reads at most
⌈k/s⌉² entries of argmax and dy, writes dx once: it OVERWRITES dx (0 where no window chose
the pixel, including rows and columns left over at the bottom and right). No atomics:
deterministic, and bit-identical to the CPU in float32.

Backward fallback (scatter by plane), used when kernel_size and stride are not given
(`maxpool2d_backward_gpu(dy, argmax, x_shape)`: a gather cannot find a pixel's windows
without them; minidet.layers.maxpool passes them and takes the gather). Launch: one work item per (n, c) plane, N·C of them; each zeroes its plane of
dx and adds dy at argmax in row-major output order, exactly the CPU loop. OVERWRITES dx;
deterministic, but only N·C threads: slower on large planes.
"""
from __future__ import annotations

import numpy as np
from numba import cuda

from ._launch import check_device_array, check_float, check_out, launch


def _forward_kernel(x, k, stride, Ho, Wo, y, argmax):
    N, C, H, W = x.shape
    total = N * C * Ho * Wo
    for idx in range(cuda.grid(1), total, cuda.gridsize(1)):
        oj = idx % Wo
        t = idx // Wo
        oi = t % Ho
        t = t // Ho
        c = t % C
        n = t // C
        i0 = oi * stride
        j0 = oj * stride
        best = x[n, c, i0, j0]
        best_idx = i0 * W + j0
        for ki in range(k):
            for kj in range(k):
                v = x[n, c, i0 + ki, j0 + kj]
                if v > best:  # strict: the first maximum wins ties
                    best = v
                    best_idx = (i0 + ki) * W + j0 + kj
        y[n, c, oi, oj] = best
        argmax[n, c, oi, oj] = best_idx


def _backward_gather_kernel(dy, argmax, k, stride, dx):
    N, C, H, W = dx.shape
    Ho = dy.shape[2]
    Wo = dy.shape[3]
    total = N * C * H * W
    for idx in range(cuda.grid(1), total, cuda.gridsize(1)):
        j = idx % W
        t = idx // W
        i = t % H
        t = t // H
        c = t % C
        n = t // C
        here = i * W + j
        # Windows oi with oi·s ≤ i ≤ oi·s + k − 1 (and likewise oj) contain the pixel.
        oi_lo = 0 if i < k else (i - k + stride) // stride
        oj_lo = 0 if j < k else (j - k + stride) // stride
        oi_hi = min(i // stride, Ho - 1)
        oj_hi = min(j // stride, Wo - 1)
        acc = dx.dtype.type(0)
        for oi in range(oi_lo, oi_hi + 1):
            for oj in range(oj_lo, oj_hi + 1):
                if argmax[n, c, oi, oj] == here:
                    acc += dy[n, c, oi, oj]
        dx[n, c, i, j] = acc


def _backward_plane_kernel(dy, argmax, dx):
    N, C, H, W = dx.shape
    Ho = dy.shape[2]
    Wo = dy.shape[3]
    zero = dx.dtype.type(0)
    for nc in range(cuda.grid(1), N * C, cuda.gridsize(1)):
        c = nc % C
        n = nc // C
        for i in range(H):
            for j in range(W):
                dx[n, c, i, j] = zero
        for oi in range(Ho):
            for oj in range(Wo):
                a = argmax[n, c, oi, oj]
                dx[n, c, a // W, a % W] += dy[n, c, oi, oj]


forward_kernel = cuda.jit(_forward_kernel)
backward_gather_kernel = cuda.jit(_backward_gather_kernel)
backward_plane_kernel = cuda.jit(_backward_plane_kernel)


def maxpool2d_forward_gpu(x, k: int, stride: int, out=None, argmax_out=None):
    """(y (N, C, Ho, Wo), argmax (N, C, Ho, Wo) int32) for x (N, C, H, W).

    out, argmax_out: optional C-contiguous arrays to write into (x's dtype and int32).
    """
    where = "maxpool2d_forward_gpu"
    xp = check_device_array(x, where, "x")
    check_float(x, where, "x")
    N, C, H, W = x.shape
    if H < k or W < k:
        raise ValueError(f"{where}: x of shape {tuple(x.shape)} is smaller than the {k}×{k} window")
    if H * W > np.iinfo(np.int32).max:
        raise ValueError(f"{where}: a {H}×{W} plane does not fit int32 argmax indices")
    Ho, Wo = (H - k) // stride + 1, (W - k) // stride + 1
    x = xp.ascontiguousarray(x)
    y = check_out(out, (N, C, Ho, Wo), x.dtype, xp, where)
    argmax = check_out(argmax_out, (N, C, Ho, Wo), np.int32, xp, where, "argmax_out")
    launch(forward_kernel, y.size, x, k, stride, Ho, Wo, y, argmax)
    return y, argmax


def maxpool2d_backward_gpu(dy, argmax, x_shape, kernel_size: int | None = None,
                           stride: int | None = None, out=None):
    """dx (x_shape) with each dy (N, C, Ho, Wo) added at its window's argmax.

    kernel_size, stride: the forward's window; with them the backward is the fast gather,
    without them the slower plane-by-plane fallback (same result, bit for bit).
    """
    where = "maxpool2d_backward_gpu"
    xp = check_device_array(dy, where, "dy")
    check_device_array(argmax, where, "argmax")
    check_float(dy, where, "dy")
    N, C, H, W = (int(s) for s in x_shape)
    if tuple(argmax.shape) != tuple(dy.shape) or tuple(dy.shape[:2]) != (N, C):
        raise ValueError(f"{where}: dy {tuple(dy.shape)} and argmax {tuple(argmax.shape)} must have the "
                         f"same shape (N, C, Ho, Wo) matching x_shape {tuple(x_shape)}")
    if argmax.dtype != np.int32:
        raise TypeError(f"{where}: argmax must be int32, got {argmax.dtype}")
    dy = xp.ascontiguousarray(dy)
    argmax = xp.ascontiguousarray(argmax)
    dx = check_out(out, (N, C, H, W), dy.dtype, xp, where)
    if (kernel_size is None) != (stride is None):
        raise ValueError(f"{where}: give both kernel_size and stride, or neither")
    if kernel_size is None:
        launch(backward_plane_kernel, N * C, dy, argmax, dx)
        return dx
    Ho, Wo = (H - kernel_size) // stride + 1, (W - kernel_size) // stride + 1
    if tuple(dy.shape[2:]) != (Ho, Wo):
        raise ValueError(f"{where}: dy has shape {tuple(dy.shape)}, but a {kernel_size}×{kernel_size} window "
                         f"with stride {stride} on x_shape {tuple(x_shape)} gives {(N, C, Ho, Wo)}")
    launch(backward_gather_kernel, dx.size, dy, argmax, kernel_size, stride, dx)
    return dx
