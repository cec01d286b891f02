"""The fused SGD update with momentum and weight decay, on the CPU and CUDA.

    v ← μ·v + g + λ·w      for the first `n_decayed` elements
    v ← μ·v + g            for the rest (biases are not decayed)
    w ← w − lr·v

`update` picks the backend from the array module; the element rule (`_update_one`) is
written once and compiled for both (kernels/_launch.py `cpu_and_cuda`). CPU: a parallel
Numba loop over the flat arrays. CUDA: one work item per element in a 1-D grid-stride
loop. `minidet.optim.SGD` on the GPU keeps every parameter of one dtype as a view into
one flat buffer, weights first and biases after, so the whole model is updated by ONE
launch (Numba's dispatcher costs tens of µs a launch, more than the update of most
layers' parameters). Reads w, g, v; writes v and w IN PLACE (nothing is returned). One
pass: 20 bytes moved per float32 element, where the unfused form (four element-wise ops)
moves about twice that. The scalars are passed in w's dtype so a float32 update is
computed in float32.
"""
from __future__ import annotations

import numpy as np
from numba import cuda, njit, prange

from ._device import get_array_module
from ._launch import check_device_array, check_float, cpu_and_cuda, launch


def sgd_reference(w, g, v, lr, momentum, weight_decay, n_decayed=None):
    """(w_new, v_new) in plain NumPy, nothing in place: the tests' oracle."""
    n_decayed = w.size if n_decayed is None else n_decayed
    lam = np.where(np.arange(w.size).reshape(w.shape) < n_decayed, weight_decay, 0.0)
    v_new = momentum * v + g + lam * w
    return w - lr * v_new, v_new


def _update_one(w, g, v, i, lr, momentum, lam):
    vi = momentum * v[i] + g[i] + lam * w[i]
    v[i] = vi
    w[i] -= lr * vi


_update_one_cpu, _update_one_cuda = cpu_and_cuda(_update_one)


@njit(parallel=True, cache=True, nogil=True)
def sgd_cpu_loop(w, g, v, lr, momentum, decay, n_decayed):
    zero = w.dtype.type(0)
    for i in prange(w.size):
        _update_one_cpu(w, g, v, i, lr, momentum, decay if i < n_decayed else zero)


def _sgd_kernel(w, g, v, lr, momentum, decay, n_decayed):
    zero = w.dtype.type(0)
    for i in range(cuda.grid(1), w.size, cuda.gridsize(1)):
        _update_one_cuda(w, g, v, i, lr, momentum, decay if i < n_decayed else zero)


sgd_kernel = cuda.jit(_sgd_kernel)


def update(w, g, v, lr: float, momentum: float, weight_decay: float, n_decayed: int | None = None):
    """In place, on w's device: v ← μv + g + λw (λ only on the first n_decayed elements, all
    by default); w ← w − lr·v. w and v C-contiguous, same shape and dtype; g the same shape."""
    if get_array_module(w) is np:
        sgd_update_cpu(w, g, v, lr, momentum, weight_decay, n_decayed)
    else:
        sgd_update_gpu(w, g, v, lr, momentum, weight_decay, n_decayed)


def _prepare(w, g, v, lr, momentum, weight_decay, n_decayed, xp, where):
    check_float(w, where, "w")
    if tuple(g.shape) != tuple(w.shape) or tuple(v.shape) != tuple(w.shape):
        raise ValueError(f"{where}: w {tuple(w.shape)}, g {tuple(g.shape)} and v {tuple(v.shape)} must have the same shape")
    if v.dtype != w.dtype:
        raise TypeError(f"{where}: v is {v.dtype}, w is {w.dtype}")
    if not (w.flags.c_contiguous and v.flags.c_contiguous):
        raise ValueError(f"{where}: w and v are updated in place and must be C-contiguous")
    n_decayed = w.size if n_decayed is None else int(n_decayed)
    if not 0 <= n_decayed <= w.size:
        raise ValueError(f"{where}: n_decayed must be in [0, {w.size}], got {n_decayed}")
    g = xp.ascontiguousarray(g, dtype=w.dtype)
    t = w.dtype.type
    return (w.reshape(-1), g.reshape(-1), v.reshape(-1), t(lr), t(momentum), t(weight_decay), n_decayed)


def sgd_update_cpu(w, g, v, lr: float, momentum: float, weight_decay: float, n_decayed: int | None = None):
    sgd_cpu_loop(*_prepare(w, g, v, lr, momentum, weight_decay, n_decayed, np, "sgd_update_cpu"))


def sgd_update_gpu(w, g, v, lr: float, momentum: float, weight_decay: float, n_decayed: int | None = None):
    where = "sgd_update_gpu"
    xp = check_device_array(w, where, "w")
    check_device_array(g, where, "g")
    check_device_array(v, where, "v")
    launch(sgd_kernel, w.size, *_prepare(w, g, v, lr, momentum, weight_decay, n_decayed, xp, where))
