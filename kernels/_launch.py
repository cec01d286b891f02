"""What every kernel module shares: launch sizes, the stream, and argument checks.

Launch shape. Every kernel is a 1-D grid-stride loop over its work items (one item per
output element, or per grid cell for the loss): `threads_per_block` threads a block,
`blocks = ceil(items / threads)` capped at `MAX_BLOCKS`, and a thread takes items
`start, start + gridsize, ...`. On a GPU the cap is rarely reached, so most threads do
one item; under Numba's CUDA simulator (a test harness that runs each CUDA thread as a
Python thread) the block is 32 threads and the grid at most 2 blocks, so the tiny test
shapes also go round the grid-stride loop.

Stream. On CuPy arrays a kernel runs on CuPy's current stream, wrapped by
`cuda.external_stream`, so it orders with the cuBLAS products and CuPy element-wise
work around it without a host synchronisation. Arguments are handed to Numba with
`cuda.as_cuda_array(a, sync=False)`: by default Numba would synchronise the host with
the stream each CuPy array names in its `__cuda_array_interface__`, once per argument per
launch, and the launch is on that stream anyway.

Devices. CuPy arrays only, except under the simulator, which takes NumPy arrays (it is
never chosen for real work: `minidet.backend.gpu_available()` is False under it).
"""
from __future__ import annotations

import numpy as np
from numba import cuda, njit

from ._device import get_array_module, simulator_enabled

THREADS_PER_BLOCK = 256
MAX_BLOCKS = 65535 * 32  # far below the 2³¹ − 1 limit on a 1-D grid; enough to fill any GPU
SIM_THREADS_PER_BLOCK = 32
SIM_MAX_BLOCKS = 2


def cpu_and_cuda(body):
    """A per-element body written once as a plain function, compiled for each backend:
    (the numba.njit function the CPU loops call, the CUDA device function the kernels call).

    Both are inlined at Numba's IR level (inline="always") into the loop that calls them:
    no call per element on the CPU, and the CUDA kernel compiles to PTX with no device
    function of its own (which Numba would otherwise compile for the current device, so
    the machine-code checks could not run without one).
    """
    return (njit(inline="always", cache=True, nogil=True)(body),
            cuda.jit(device=True, inline="always")(body))


def _unravel_nchw(idx, C, H, W):
    """(n, c, i, j) of flat index idx in a C-contiguous (N, C, H, W) array."""
    j = idx % W
    t = idx // W
    i = t % H
    t = t // H
    return t // C, t % C, i, j


unravel_nchw = cuda.jit(device=True, inline="always")(_unravel_nchw)  # for the kernels' grid-stride loops


def launch_config(items: int) -> tuple[int, int]:
    """(blocks, threads_per_block) for a grid-stride loop over `items` work items."""
    if simulator_enabled():
        threads, cap = SIM_THREADS_PER_BLOCK, SIM_MAX_BLOCKS
    else:
        threads, cap = THREADS_PER_BLOCK, MAX_BLOCKS
    blocks = max(1, min(cap, -(-int(items) // threads)))
    return blocks, threads


def check_device_array(x, where: str, name: str):
    """Return the array module of `x`, refusing what the kernels cannot run on.

    CuPy arrays are accepted; NumPy arrays only under the simulator (on a real GPU Numba
    would silently copy them to the device and back at every launch).
    """
    xp = get_array_module(x)
    if xp is np:
        if not isinstance(x, np.ndarray):
            raise TypeError(f"{where}: {name} must be a CuPy array, got {type(x).__name__}")
        if not simulator_enabled():
            raise TypeError(f"{where}: {name} is a NumPy array; the CUDA kernels take CuPy arrays "
                            f"(NumPy is accepted only under NUMBA_ENABLE_CUDASIM=1). "
                            f"Call the operation's entry point (kernels.<op>.forward, ...) for NumPy inputs.")
    return xp


def check_float(x, where: str, name: str):
    if x.dtype not in (np.float32, np.float64):
        raise TypeError(f"{where}: {name} must be float32 or float64, got {x.dtype}")


def check_out(out, shape, dtype, xp, where: str, name: str = "out"):
    """Allocate an output (xp.empty) or check the one given: shape, dtype, device, contiguity."""
    shape = tuple(int(s) for s in shape)
    if out is None:
        return xp.empty(shape, dtype=dtype)
    if get_array_module(out) is not xp:
        raise TypeError(f"{where}: {name} is on another device than the input")
    if tuple(out.shape) != shape or out.dtype != np.dtype(dtype):
        raise ValueError(f"{where}: {name} must have shape {shape} and dtype {np.dtype(dtype)}, "
                         f"got {tuple(out.shape)} {out.dtype}")
    if not out.flags.c_contiguous:
        raise ValueError(f"{where}: {name} must be C-contiguous")
    return out


def launch(kernel, items: int, *args):
    """Run `kernel` over `items` work items on the current stream of the arrays' device."""
    if items == 0:
        return
    blocks, threads = launch_config(items)
    cp = _cupy_of(args)
    if cp is None:  # simulator: NumPy arrays, default stream
        kernel[blocks, threads](*args)
        return
    ptr = cp.cuda.get_current_stream().ptr
    # CuPy's null stream has handle 0: the legacy default stream, which Numba names directly.
    stream = cuda.legacy_default_stream() if ptr == 0 else cuda.external_stream(ptr)
    args = tuple(cuda.as_cuda_array(a, sync=False) if isinstance(a, cp.ndarray) else a for a in args)
    kernel[blocks, threads, stream](*args)


def _cupy_of(args):
    for a in args:
        xp = get_array_module(a)
        if xp is not np:
            return xp
    return None
