"""Where an array lives: NumPy on the CPU, CuPy on the GPU.

Every layer asks `get_array_module(x)` and computes with the module it gets back, so the
same code runs on both devices. CuPy is optional and imported lazily: `import minidet`
never fails for want of it, and it is only imported when an array could be a CuPy one.
"""
from __future__ import annotations

import functools
import os
import sys

import numpy as np

DEVICES = ("cpu", "cuda")


@functools.lru_cache(maxsize=1)
def _cupy():
    """The cupy module if it imports, else None (imported once, on first need)."""
    try:
        import cupy  # noqa: F401  (optional dependency)
    except Exception:  # ImportError, or a CUDA library that fails to load
        return None
    return cupy


def simulator_enabled() -> bool:
    """True when Numba's CUDA simulator is switched on (NUMBA_ENABLE_CUDASIM=1)."""
    return os.environ.get("NUMBA_ENABLE_CUDASIM", "0") not in ("", "0")


@functools.lru_cache(maxsize=1)
def gpu_available() -> bool:
    """True when CuPy imports and sees at least one CUDA device.

    False under Numba's CUDA simulator: the simulator is a test harness for kernel
    index arithmetic, never a device to train on.
    """
    if simulator_enabled():
        return False
    cp = _cupy()
    if cp is None:
        return False
    try:
        return cp.cuda.runtime.getDeviceCount() > 0
    except Exception:
        return False


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


def is_gpu_array(x) -> bool:
    return get_array_module(x) is not np


def device_of(x) -> str:
    """"cuda" for a CuPy array, "cpu" otherwise."""
    return "cuda" if is_gpu_array(x) else "cpu"


def check_device(device: str) -> str:
    if device not in DEVICES:
        raise ValueError(f"device must be one of {DEVICES}, got {device!r}")
    return device


def to_device(x, device: str):
    """Copy `x` to `device` ("cpu" or "cuda"); returned unchanged when already there."""
    check_device(device)
    if device == "cpu":
        return to_numpy(x)
    if not gpu_available():
        raise RuntimeError(
            "to_device(x, 'cuda'): no GPU is available "
            "(CuPy is not installed, sees no CUDA device, or Numba's CUDA simulator is on)"
        )
    cp = _cupy()
    return cp.asarray(x)


def to_numpy(x):
    """A NumPy array holding `x` (a copy from the GPU, or `x` itself on the CPU)."""
    if is_gpu_array(x):
        return x.get()
    return np.asarray(x)


def resolve_device(device: str) -> str:
    """Map "auto" to "cuda" when a GPU is available, else "cpu"; check the others."""
    if device == "auto":
        return "cuda" if gpu_available() else "cpu"
    check_device(device)
    if device == "cuda" and not gpu_available():
        from .errors import MinidetError

        raise MinidetError("device 'cuda' was asked for, but no GPU is available "
                           "(is CuPy installed, and a CUDA device visible?)")
    return device
