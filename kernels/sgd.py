"""The fused SGD update on the GPU: the CUDA twin of `minidet.optim.sgd_update`.

    v ← μ·v + g + λ·w      for the first `n_decayed` elements
    v ← μ·v + g            for the rest (biases are not decayed)
    w ← w − lr·v

Launch: one work item per element of the flat arrays (w.size of them) in a 1-D
grid-stride loop (kernels/_launch.py). `minidet.optim.SGD` keeps every parameter of one
dtype as a view into one flat buffer, weights first and biases after, so the whole model
is updated by ONE launch (Numba's dispatcher costs tens of µs a launch, more than the
update of most layers' parameters). Reads w, g, v; writes v and w IN PLACE (overwrites
them; nothing is returned). One pass: 20 bytes moved per float32 element, where the
unfused CuPy form (four element-wise ops) moves about twice that. The scalars are passed
in w's dtype so a float32 update is computed in float32.
"""
from __future__ import annotations

from numba import cuda

from ._launch import check_device_array, check_float, launch


def _sgd_kernel(w, g, v, lr, momentum, decay, n_decayed):
    zero = w.dtype.type(0)
    for i in range(cuda.grid(1), w.size, cuda.gridsize(1)):
        lam = decay if i < n_decayed else zero
        vi = momentum * v[i] + g[i] + lam * w[i]
        v[i] = vi
        w[i] -= lr * vi


sgd_kernel = cuda.jit(_sgd_kernel)


def sgd_update_gpu(w, g, v, lr: float, momentum: float, weight_decay: float, n_decayed: int | None = None):
    """In place: v ← μv + g + λw (λ only on the first n_decayed elements, all by default);
    w ← w − lr·v. w and v C-contiguous, same shape and dtype; g the same shape."""
    where = "sgd_update_gpu"
    xp = check_device_array(w, where, "w")
    check_device_array(g, where, "g")
    check_device_array(v, where, "v")
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
    launch(sgd_kernel, w.size, w.reshape(-1), g.reshape(-1), v.reshape(-1),
           t(lr), t(momentum), t(weight_decay), n_decayed)
