"""MaxPool2d: the maximum over each k×k window, windows stride s apart (overlapping when s < k).

Shapes: x (N, C, H, W) → y (N, C, Ho, Wo), Ho = (H − k) // s + 1, Wo = (W − k) // s + 1
(no padding; leftover rows/columns at the bottom/right are not pooled, as in PyTorch).

The forward records, for every output, the flat index i·W + j of its maximum within its
(n, c) plane: the first maximum in row-major window order, so ties route the gradient
deterministically. The backward sends each dy to that argmax; overlapping windows
that share an argmax add their gradients there. On the CPU both are Numba loops in
parallel over (n, c) planes (each plane has one owner: no races); a reshape-and-max in
NumPy measured 12× slower.
"""
from __future__ import annotations

import numpy as np
from numba import njit, prange

from ..backend import get_array_module
from .base import Layer


@njit(parallel=True, cache=True, nogil=True)
def _forward_cpu(x, k, stride, Ho, Wo, y, argmax):
    N, C, H, W = x.shape
    for nc in prange(N * C):
        n = nc // C
        c = nc - n * C
        for oi in range(Ho):
            for oj in range(Wo):
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


@njit(parallel=True, cache=True, nogil=True)
def _backward_cpu(dy, argmax, dx):
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


def maxpool2d_forward(x, kernel_size: int, stride: int):
    """Returns (y (N, C, Ho, Wo), cache); cache = (int32 argmax (N, C, Ho, Wo), x.shape, k, stride)."""
    xp = get_array_module(x)
    N, C, H, W = x.shape
    Ho, Wo = (H - kernel_size) // stride + 1, (W - kernel_size) // stride + 1
    if xp is np:
        x = np.ascontiguousarray(x)
        y = np.empty((N, C, Ho, Wo), dtype=x.dtype)
        argmax = np.empty((N, C, Ho, Wo), dtype=np.int32)
        _forward_cpu(x, kernel_size, stride, Ho, Wo, y, argmax)
    else:
        from kernels import maxpool as gpu

        y, argmax = gpu.maxpool2d_forward_gpu(x, kernel_size, stride)
    return y, (argmax, x.shape, kernel_size, stride)


def maxpool2d_backward(dy, cache):
    """dx (N, C, H, W): each dy added at its window's argmax."""
    argmax, x_shape, kernel_size, stride = cache
    xp = get_array_module(dy)
    if xp is np:
        dx = np.empty(x_shape, dtype=dy.dtype)
        _backward_cpu(np.ascontiguousarray(dy), argmax, dx)
        return dx
    from kernels import maxpool as gpu

    # The window geometry lets the GPU gather: one thread per input pixel, no atomics.
    return gpu.maxpool2d_backward_gpu(dy, argmax, x_shape, kernel_size=kernel_size, stride=stride)


def maxpool2d_forward_naive(x, kernel_size: int, stride: int):
    """The definition with NumPy loops over output pixels (for tests). Returns (y, argmax)."""
    N, C, H, W = x.shape
    Ho, Wo = (H - kernel_size) // stride + 1, (W - kernel_size) // stride + 1
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


class MaxPool2d(Layer):
    """MaxPool2d(kernel_size=2, stride=None): stride defaults to kernel_size; no params."""

    def __init__(self, kernel_size: int = 2, stride: int | None = None):
        super().__init__()
        stride = kernel_size if stride is None else stride
        for name, v in (("kernel_size", kernel_size), ("stride", stride)):
            if int(v) != v or v < 1:
                raise ValueError(f"MaxPool2d: {name} must be an integer >= 1, got {v!r}")
        self.kernel_size, self.stride = int(kernel_size), int(stride)

    def extra_repr(self):
        return f"kernel_size={self.kernel_size}, stride={self.stride}"

    def output_shape(self, input_shape):
        N, C, H, W = input_shape
        k, s = self.kernel_size, self.stride
        return (N, C, (H - k) // s + 1, (W - k) // s + 1)

    def forward(self, x):
        self._check_ndim(x, 4, "(N, C, H, W)")
        self._check_float(x)
        H, W = x.shape[2:]
        if H < self.kernel_size or W < self.kernel_size:
            raise ValueError(f"{self.label()}: input of {H}×{W} pixels is smaller than the {self.kernel_size}×"
                             f"{self.kernel_size} window; input shape {tuple(x.shape)}")
        y, self._cache = maxpool2d_forward(x, self.kernel_size, self.stride)
        return y

    def backward(self, dy):
        return maxpool2d_backward(dy, self._cached())
