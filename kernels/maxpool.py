"""Max-pooling: the NumPy reference, and its CPU and CUDA forms, forward and backward.

x (N, C, H, W) → y (N, C, Ho, Wo), Ho = (H − k) // s + 1, Wo = (W − k) // s + 1, no
padding (leftover rows and columns at the bottom and right are not pooled, as in
PyTorch); windows overlap when s < k. argmax (N, C, Ho, Wo) int32 holds the flat index
i·W + j of each window's maximum within its (n, c) plane: the first maximum in
row-major window order (a strict `>` scan), so ties route the gradient deterministically.

`forward` / `backward` pick the backend from the array module.
CPU: Numba loops in parallel over (n, c) planes, each plane one thread's (no races; a
reshape-and-max in NumPy measured 12× slower); the backward scatters each dy at its argmax.
CUDA: forward, one work item per output element (N·C·Ho·Wo), reading its k² inputs;
backward, a gather, one work item per input element (N·C·H·W): it visits the windows
that contain its pixel (oi from ⌈(i − k + 1)/s⌉ to ⌊i/s⌋ clipped to [0, Ho), likewise oj)
in row-major order and sums dy of those whose argmax is this pixel, reading at most
⌈k/s⌉² entries of argmax and dy; no atomics, deterministic; 1-D grid-stride loops. Both
backends OVERWRITE their outputs (dx is 0 where no window chose the pixel) and agree bit
for bit in float32.
"""
from __future__ import annotations

import numpy as np
from numba import cuda, njit, prange

from ._device import get_array_module, output_size
from ._launch import check_device_array, check_float, check_out, cpu_and_cuda, launch, unravel_nchw


def maxpool2d_reference(x, kernel_size: int, stride: int):
    """The definition with NumPy over output pixels: (y, argmax int64), the tests' oracle."""
    N, C, H, W = x.shape
    Ho, Wo = output_size(H, kernel_size, stride), output_size(W, kernel_size, stride)
    y = np.empty((N, C, Ho, Wo), dtype=x.dtype)
    argmax = np.empty((N, C, Ho, Wo), dtype=np.int64)
    for i in range(Ho):
        for j in range(Wo):
            win = x[:, :, i * stride : i * stride + kernel_size, j * stride : j * stride + kernel_size]
            flat = win.reshape(N, C, -1)
            a = flat.argmax(axis=2)  # first maximum in row-major order
            y[:, :, i, j] = flat.max(axis=2)
            argmax[:, :, i, j] = (i * stride + a // kernel_size) * W + j * stride + a % kernel_size
    return y, argmax


def maxpool2d_backward_reference(dy, argmax, x_shape):
    """dx in float64: every dy added at its window's argmax."""
    N, C, H, W = x_shape
    dx = np.zeros((N, C, H * W))
    dy = np.asarray(dy, dtype=np.float64).reshape(N, C, -1)
    argmax = np.asarray(argmax).reshape(N, C, -1)
    for n in range(N):
        for c in range(C):
            np.add.at(dx[n, c], argmax[n, c], dy[n, c])
    return dx.reshape(x_shape)


# The forward's window scan is written once (`_scan_window`) and inlined into the CPU plane
# loop and the CUDA kernel: against the CPU loop's former hand-written copy it measured the
# same (1.44 ms both, one thread) or faster (0.75 against 0.87 ms, two threads), x 32×4×112²
# float32, k2s2, best of 40 calls, idle 2-core machine; k3s2 likewise. The backward keeps
# its own CPU formulation, a scatter of each plane's dy at its argmax: the CUDA kernel's
# per-pixel gather, run on the CPU in the same plane loops, measured 57× slower (82 ms
# against 1.4 ms, one thread, same x, 2-core machine under load). The scatter adds a
# pixel's gradients in row-major window order, as the gather does, so the two agree bit for
# bit in float32.


def _scan_window(x, n, c, i0, j0, k, W):
    """(max, flat index i·W + j of the first maximum) of the k×k window at (i0, j0) of plane (n, c)."""
    best = x[n, c, i0, j0]
    best_idx = i0 * W + j0
    for ki in range(k):
        for kj in range(k):
            v = x[n, c, i0 + ki, j0 + kj]
            if v > best:  # strict: the first maximum wins ties
                best = v
                best_idx = (i0 + ki) * W + j0 + kj
    return best, best_idx


_scan_window_cpu, _scan_window_cuda = cpu_and_cuda(_scan_window)


@njit(parallel=True, cache=True, nogil=True)
def forward_cpu_loop(x, k, stride, Ho, Wo, y, argmax):
    N, C, H, W = x.shape
    for nc in prange(N * C):
        n = nc // C
        c = nc - n * C
        for oi in range(Ho):
            for oj in range(Wo):
                best, best_idx = _scan_window_cpu(x, n, c, oi * stride, oj * stride, k, W)
                y[n, c, oi, oj] = best
                argmax[n, c, oi, oj] = best_idx


@njit(parallel=True, cache=True, nogil=True)
def backward_cpu_loop(dy, argmax, dx):
    N, C, H, W = dx.shape
    Ho, Wo = dy.shape[2], dy.shape[3]
    for nc in prange(N * C):
        n = nc // C
        c = nc - n * C
        for i in range(H):
            for j in range(W):
                dx[n, c, i, j] = 0
        for oi in range(Ho):
            for oj in range(Wo):
                idx = argmax[n, c, oi, oj]
                dx[n, c, idx // W, idx % W] += dy[n, c, oi, oj]


def _forward_kernel(x, k, stride, Ho, Wo, y, argmax):
    N, C, H, W = x.shape
    total = N * C * Ho * Wo
    for idx in range(cuda.grid(1), total, cuda.gridsize(1)):
        n, c, oi, oj = unravel_nchw(idx, C, Ho, Wo)
        best, best_idx = _scan_window_cuda(x, n, c, oi * stride, oj * stride, k, W)
        y[n, c, oi, oj] = best
        argmax[n, c, oi, oj] = best_idx


def _backward_gather_kernel(dy, argmax, k, stride, dx):
    N, C, H, W = dx.shape
    Ho = dy.shape[2]
    Wo = dy.shape[3]
    total = N * C * H * W
    for idx in range(cuda.grid(1), total, cuda.gridsize(1)):
        n, c, i, j = unravel_nchw(idx, C, H, W)
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


forward_kernel = cuda.jit(_forward_kernel)
backward_gather_kernel = cuda.jit(_backward_gather_kernel)


def forward(x, kernel_size: int, stride: int, out=None, argmax_out=None):
    """(y (N, C, Ho, Wo), argmax (N, C, Ho, Wo) int32) for x (N, C, H, W), on x's device."""
    if get_array_module(x) is np:
        return maxpool2d_forward_cpu(x, kernel_size, stride, out, argmax_out)
    return maxpool2d_forward_gpu(x, kernel_size, stride, out, argmax_out)


def backward(dy, argmax, x_shape, kernel_size: int, stride: int, out=None):
    """dx (x_shape) with each dy (N, C, Ho, Wo) added at its window's argmax, on dy's device."""
    if get_array_module(dy) is np:
        return maxpool2d_backward_cpu(dy, argmax, x_shape, kernel_size, stride, out)
    return maxpool2d_backward_gpu(dy, argmax, x_shape, kernel_size, stride, out)


def _prepare_forward(x, k, stride, out, argmax_out, xp, where):
    check_float(x, where, "x")
    N, C, H, W = x.shape
    if H < k or W < k:
        raise ValueError(f"{where}: x of shape {tuple(x.shape)} is smaller than the {k}×{k} window")
    if H * W > np.iinfo(np.int32).max:
        raise ValueError(f"{where}: a {H}×{W} plane does not fit int32 argmax indices")
    Ho, Wo = output_size(H, k, stride), output_size(W, k, stride)
    y = check_out(out, (N, C, Ho, Wo), x.dtype, xp, where)
    argmax = check_out(argmax_out, (N, C, Ho, Wo), np.int32, xp, where, "argmax_out")
    return xp.ascontiguousarray(x), y, argmax


def _prepare_backward(dy, argmax, x_shape, k, stride, out, xp, where):
    check_float(dy, where, "dy")
    N, C, H, W = (int(s) for s in x_shape)
    if tuple(argmax.shape) != tuple(dy.shape) or tuple(dy.shape[:2]) != (N, C):
        raise ValueError(f"{where}: dy {tuple(dy.shape)} and argmax {tuple(argmax.shape)} must have the "
                         f"same shape (N, C, Ho, Wo) matching x_shape {tuple(x_shape)}")
    if argmax.dtype != np.int32:
        raise TypeError(f"{where}: argmax must be int32, got {argmax.dtype}")
    Ho, Wo = output_size(H, k, stride), output_size(W, k, stride)
    if tuple(dy.shape[2:]) != (Ho, Wo):
        raise ValueError(f"{where}: dy has shape {tuple(dy.shape)}, but a {k}×{k} window "
                         f"with stride {stride} on x_shape {tuple(x_shape)} gives {(N, C, Ho, Wo)}")
    dx = check_out(out, (N, C, H, W), dy.dtype, xp, where)
    return xp.ascontiguousarray(dy), xp.ascontiguousarray(argmax), dx


def maxpool2d_forward_cpu(x, k: int, stride: int, out=None, argmax_out=None):
    x, y, argmax = _prepare_forward(x, k, stride, out, argmax_out, np, "maxpool2d_forward_cpu")
    forward_cpu_loop(x, k, stride, y.shape[2], y.shape[3], y, argmax)
    return y, argmax


def maxpool2d_backward_cpu(dy, argmax, x_shape, kernel_size: int, stride: int, out=None):
    dy, argmax, dx = _prepare_backward(dy, argmax, x_shape, kernel_size, stride, out, np, "maxpool2d_backward_cpu")
    backward_cpu_loop(dy, argmax, dx)
    return dx


def maxpool2d_forward_gpu(x, k: int, stride: int, out=None, argmax_out=None):
    where = "maxpool2d_forward_gpu"
    xp = check_device_array(x, where, "x")
    x, y, argmax = _prepare_forward(x, k, stride, out, argmax_out, xp, where)
    launch(forward_kernel, y.size, x, k, stride, y.shape[2], y.shape[3], y, argmax)
    return y, argmax


def maxpool2d_backward_gpu(dy, argmax, x_shape, kernel_size: int, stride: int, out=None):
    where = "maxpool2d_backward_gpu"
    xp = check_device_array(dy, where, "dy")
    check_device_array(argmax, where, "argmax")
    dy, argmax, dx = _prepare_backward(dy, argmax, x_shape, kernel_size, stride, out, xp, where)
    launch(backward_gather_kernel, dx.size, dy, argmax, kernel_size, stride, dx)
    return dx
