"""Leaky ReLU on the GPU: the CUDA twin of `minidet.layers.leaky_relu`.

    forward:  y = x if x > 0 else a·x
    backward: dx = dy if y > 0 else a·dy     (for 0 ≤ a < 1, y has the sign of x)

Launch: one work item per element (x.size of them) in a 1-D grid-stride loop over the
flattened, C-contiguous arrays (kernels/_launch.py). The forward reads x and writes y;
the backward reads y and dy and writes dx; both OVERWRITE their output. Memory-bound:
8 (forward) or 12 (backward) bytes moved per float32 element, nothing reused.

The slope is passed as a scalar of the arrays' dtype (`x.dtype.type(slope)`), so Numba
types the product float32 × float32 and a float32 array is computed in float32, as on
the CPU (a Python float would make it float64 and differ by an ulp).
"""
from __future__ import annotations

from numba import cuda

from ._launch import check_device_array, check_float, check_out, launch


def _forward_kernel(x, slope, y):
    zero = x.dtype.type(0)  # a literal 0 would make Numba compare in float64
    for i in range(cuda.grid(1), x.size, cuda.gridsize(1)):
        v = x[i]
        y[i] = v if v > zero else slope * v


def _backward_kernel(y, dy, slope, dx):
    zero = y.dtype.type(0)
    for i in range(cuda.grid(1), y.size, cuda.gridsize(1)):
        dx[i] = dy[i] if y[i] > zero else slope * dy[i]


forward_kernel = cuda.jit(_forward_kernel)
backward_kernel = cuda.jit(_backward_kernel)


def leaky_relu_forward_gpu(x, slope: float = 0.1, out=None):
    """y = leaky_relu(x), any shape; out: optional C-contiguous array like x to write into."""
    where = "leaky_relu_forward_gpu"
    xp = check_device_array(x, where, "x")
    check_float(x, where, "x")
    x = xp.ascontiguousarray(x)
    y = check_out(out, x.shape, x.dtype, xp, where)
    launch(forward_kernel, x.size, x.reshape(-1), x.dtype.type(slope), y.reshape(-1))
    return y


def leaky_relu_backward_gpu(y, dy, slope: float = 0.1, out=None):
    """dx from the forward's output y and the upstream gradient dy (same shape)."""
    where = "leaky_relu_backward_gpu"
    xp = check_device_array(y, where, "y")
    check_device_array(dy, where, "dy")
    check_float(y, where, "y")
    if tuple(dy.shape) != tuple(y.shape):
        raise ValueError(f"{where}: dy has shape {tuple(dy.shape)}, y has {tuple(y.shape)}")
    y = xp.ascontiguousarray(y)
    dy = xp.ascontiguousarray(dy, dtype=y.dtype)
    dx = check_out(out, y.shape, y.dtype, xp, where)
    launch(backward_kernel, y.size, y.reshape(-1), dy.reshape(-1), y.dtype.type(slope), dx.reshape(-1))
    return dx
