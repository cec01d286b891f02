"""Leaky ReLU, elementwise on any shape: the reference, the body, and its CPU and CUDA forms.

    forward:  y = x if x > 0 else a·x
    backward: dx = dy if y > 0 else a·dy     (for 0 ≤ a < 1, y has the sign of x)

`forward` / `backward` pick the backend from the array module (NumPy: the CPU loop,
CuPy: the CUDA kernel). The element rule is written once (`_forward_one`,
`_backward_one`) and compiled for both. CPU: a parallel Numba loop over the flat array
(NumPy's one-threaded `np.where` measured 3–5× slower). CUDA: one work item per element
in a 1-D grid-stride loop (kernels/_launch.py). Both OVERWRITE their output; memory-bound:
8 (forward) or 12 (backward) bytes moved per float32 element, nothing reused.

The slope and zero are passed as scalars of the arrays' dtype, so a float32 array is
computed in float32 on both backends (a Python float would make it float64 and differ by
an ulp).
"""
from __future__ import annotations

import numpy as np
from numba import cuda, njit, prange

from ._device import get_array_module
from ._launch import check_device_array, check_float, check_out, cpu_and_cuda, launch


def leaky_relu_reference(x, negative_slope: float = 0.1):
    """The definition in plain NumPy: what the tests compare both backends to."""
    return np.where(x > 0, x, negative_slope * x)


def _forward_one(v, slope, zero):
    return v if v > zero else slope * v


def _backward_one(y, dy, slope, zero):
    return dy if y > zero else slope * dy


_forward_one_cpu, _forward_one_cuda = cpu_and_cuda(_forward_one)
_backward_one_cpu, _backward_one_cuda = cpu_and_cuda(_backward_one)


@njit(parallel=True, cache=True, nogil=True)
def forward_cpu_loop(x, slope, y):
    zero = x.dtype.type(0)
    for i in prange(x.size):
        y[i] = _forward_one_cpu(x[i], slope, zero)


@njit(parallel=True, cache=True, nogil=True)
def backward_cpu_loop(y, dy, slope, dx):
    zero = y.dtype.type(0)
    for i in prange(y.size):
        dx[i] = _backward_one_cpu(y[i], dy[i], slope, zero)


def _forward_kernel(x, slope, y):
    zero = x.dtype.type(0)  # a literal 0 would make Numba compare in float64
    for i in range(cuda.grid(1), x.size, cuda.gridsize(1)):
        y[i] = _forward_one_cuda(x[i], slope, zero)


def _backward_kernel(y, dy, slope, dx):
    zero = y.dtype.type(0)
    for i in range(cuda.grid(1), y.size, cuda.gridsize(1)):
        dx[i] = _backward_one_cuda(y[i], dy[i], slope, zero)


forward_kernel = cuda.jit(_forward_kernel)
backward_kernel = cuda.jit(_backward_kernel)


def forward(x, negative_slope: float = 0.1, out=None):
    """y = leaky_relu(x), any shape, on x's device; out: optional C-contiguous array like x."""
    if get_array_module(x) is np:
        return leaky_relu_forward_cpu(x, negative_slope, out)
    return leaky_relu_forward_gpu(x, negative_slope, out)


def backward(y, dy, negative_slope: float = 0.1, out=None):
    """dx from the forward's output y and the upstream gradient dy (same shape), on y's device."""
    if get_array_module(y) is np:
        return leaky_relu_backward_cpu(y, dy, negative_slope, out)
    return leaky_relu_backward_gpu(y, dy, negative_slope, out)


def _prepare_forward(x, out, xp, where):
    check_float(x, where, "x")
    x = xp.ascontiguousarray(x)
    return x, check_out(out, x.shape, x.dtype, xp, where)


def _prepare_backward(y, dy, out, xp, where):
    check_float(y, where, "y")
    if tuple(dy.shape) != tuple(y.shape):
        raise ValueError(f"{where}: dy has shape {tuple(dy.shape)}, y has {tuple(y.shape)}")
    y = xp.ascontiguousarray(y)
    dy = xp.ascontiguousarray(dy, dtype=y.dtype)
    return y, dy, check_out(out, y.shape, y.dtype, xp, where)


def leaky_relu_forward_cpu(x, slope: float = 0.1, out=None):
    x, y = _prepare_forward(x, out, np, "leaky_relu_forward_cpu")
    forward_cpu_loop(x.reshape(-1), x.dtype.type(slope), y.reshape(-1))
    return y


def leaky_relu_backward_cpu(y, dy, slope: float = 0.1, out=None):
    y, dy, dx = _prepare_backward(y, dy, out, np, "leaky_relu_backward_cpu")
    backward_cpu_loop(y.reshape(-1), dy.reshape(-1), y.dtype.type(slope), dx.reshape(-1))
    return dx


def leaky_relu_forward_gpu(x, slope: float = 0.1, out=None):
    where = "leaky_relu_forward_gpu"
    x, y = _prepare_forward(x, out, check_device_array(x, where, "x"), where)
    launch(forward_kernel, x.size, x.reshape(-1), x.dtype.type(slope), y.reshape(-1))
    return y


def leaky_relu_backward_gpu(y, dy, slope: float = 0.1, out=None):
    where = "leaky_relu_backward_gpu"
    xp = check_device_array(y, where, "y")
    check_device_array(dy, where, "dy")
    y, dy, dx = _prepare_backward(y, dy, out, xp, where)
    launch(backward_kernel, y.size, y.reshape(-1), dy.reshape(-1), y.dtype.type(slope), dx.reshape(-1))
    return dx
