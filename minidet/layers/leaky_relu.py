"""LeakyReLU: y = x for x > 0, a·x otherwise (a = 0.1 in YOLO), elementwise on any shape.

The CPU path is a Numba loop over the flat array, in parallel: NumPy's `np.where` form
runs on one thread and measured 3–5× slower than this here. For 0 ≤ a < 1,
y = max(x, a·x), and y has the sign of x, so the backward needs only the output:
dx = dy where y > 0, a·dy elsewhere.
"""
from __future__ import annotations

import numpy as np
from numba import njit, prange

from ..backend import get_array_module
from .base import Layer


@njit(parallel=True, cache=True, nogil=True)
def _forward_cpu(x, slope, y):
    a = x.dtype.type(slope)  # keep float32 arithmetic in float32
    for i in prange(x.size):
        v = x[i]
        y[i] = v if v > 0 else a * v


@njit(parallel=True, cache=True, nogil=True)
def _backward_cpu(y, dy, slope, dx):
    a = dy.dtype.type(slope)
    for i in prange(y.size):
        dx[i] = dy[i] if y[i] > 0 else a * dy[i]


def leaky_relu_forward(x, negative_slope: float = 0.1):
    """y = leaky_relu(x); returns (y, cache). Any shape."""
    xp = get_array_module(x)
    if xp is np:
        x = np.ascontiguousarray(x)
        y = np.empty_like(x)
        _forward_cpu(x.reshape(-1), negative_slope, y.reshape(-1))
    else:
        from kernels import leaky_relu as gpu

        y = gpu.leaky_relu_forward_gpu(x, negative_slope)
    return y, (y, negative_slope)


def leaky_relu_backward(dy, cache):
    """dx for leaky_relu_forward's output y (the cache). Same shape as dy."""
    y, negative_slope = cache
    xp = get_array_module(dy)
    if xp is np:
        dy = np.ascontiguousarray(dy, dtype=y.dtype)
        dx = np.empty_like(dy)
        _backward_cpu(y.reshape(-1), dy.reshape(-1), negative_slope, dx.reshape(-1))
        return dx
    from kernels import leaky_relu as gpu

    return gpu.leaky_relu_backward_gpu(y, dy, negative_slope)


def leaky_relu_reference(x, negative_slope: float = 0.1):
    """The definition in plain NumPy (for tests)."""
    return np.where(x > 0, x, negative_slope * x)


class LeakyReLU(Layer):
    """LeakyReLU(negative_slope=0.1); no params. Any input shape; output has the same shape."""

    def __init__(self, negative_slope: float = 0.1):
        super().__init__()
        if not 0.0 <= negative_slope < 1.0:
            # The backward tells x > 0 from y > 0, which holds only for slopes in [0, 1).
            raise ValueError(f"LeakyReLU: negative_slope must be in [0, 1), got {negative_slope!r}")
        self.negative_slope = float(negative_slope)

    def extra_repr(self):
        return f"negative_slope={self.negative_slope}"

    def forward(self, x):
        self._check_float(x)
        y, self._cache = leaky_relu_forward(x, self.negative_slope)
        return y

    def backward(self, dy):
        return leaky_relu_backward(dy, self._cached())
