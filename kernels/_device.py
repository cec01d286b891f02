"""Which backend an array belongs to, and whether Numba's CUDA simulator is on.

The one dispatch rule of kernels/: a NumPy array runs the CPU form of an operation
(numba.njit), a CuPy array its CUDA form (numba.cuda.jit). `minidet.backend` re-exports
these two functions; kernels/ imports nothing from minidet.
"""
from __future__ import annotations

import os
import sys

import numpy as np


def simulator_enabled() -> bool:
    """True when Numba's CUDA simulator is switched on (NUMBA_ENABLE_CUDASIM=1)."""
    return os.environ.get("NUMBA_ENABLE_CUDASIM", "0") not in ("", "0")


def get_array_module(*arrays):
    """numpy or cupy: the module of the first CuPy array among `arrays`, else numpy.

    Never imports CuPy: an array can only be a CuPy array if CuPy was imported already.
    """
    if "cupy" in sys.modules:
        cp = sys.modules["cupy"]
        for a in arrays:
            if isinstance(a, cp.ndarray):
                return cp
    return np


def output_size(size: int, kernel: int, stride: int, padding: int = 0) -> int:
    """(size + 2·padding − kernel) // stride + 1: the output length of a window along one axis
    (a convolution's, a pooling's: padding 0)."""
    return (size + 2 * padding - kernel) // stride + 1


def buffer(workspace, name: str, shape, dtype, xp=np):
    """A reusable array from `workspace` (a dict, or None for a fresh one each call).

    Reusing the big buffers of a layer (im2col's cols, Winograd's transformed tiles)
    across steps avoids allocating, and page-faulting, tens of megabytes per layer per step.
    """
    if workspace is None:
        return xp.empty(shape, dtype=dtype)
    buf = workspace.get(name)
    if buf is None or buf.shape != tuple(shape) or buf.dtype != dtype or get_array_module(buf) is not xp:
        buf = workspace[name] = xp.empty(shape, dtype=dtype)
    return buf
