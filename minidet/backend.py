"""Where an array lives: NumPy on the CPU, CuPy on the GPU.

Every layer asks `get_array_module(x)` and computes with the module it gets back, so the
same code runs on both devices. CuPy is optional and imported lazily: `import minidet`
never fails for want of it, and it is only imported when an array could be a CuPy one.
"""
from __future__ import annotations

import functools

import numpy as np

from kernels._device import get_array_module, simulator_enabled  # noqa: F401  (the one dispatch rule)

DEVICES = ("cpu", "cuda")
DEVICE_CHOICES = ("auto", *DEVICES)  # what --device takes: "auto" is resolve_device's choice


@functools.lru_cache(maxsize=1)
def _import_cupy():
    """(cupy module or None, the exception that stopped its import or None); tried once."""
    try:
        import cupy  # noqa: F401  (optional dependency)
    except Exception as e:  # ImportError, or a CUDA library that fails to load
        return None, e
    return cupy, None


def _cupy():
    """The cupy module if it imports, else None (imported once, on first need)."""
    return _import_cupy()[0]


def gpu_unavailable_reason() -> str | None:
    """Why `gpu_available()` is False, in one line with the underlying error; None when it is True.

    CuPy not installed, installed but failing to import (a CUDA library missing or of the
    wrong major version), no device seen, or the simulator switched on.
    """
    if simulator_enabled():
        return "NUMBA_ENABLE_CUDASIM is set: Numba's CUDA simulator is a test harness, not a device"
    cp, error = _import_cupy()
    if cp is None:
        if isinstance(error, ModuleNotFoundError) and error.name == "cupy":
            return "CuPy is not installed"
        return f"CuPy is installed but failed to import: {type(error).__name__}: {error}"
    _, device_error = _device_count()
    if device_error is not None:
        return f"CuPy imported but found no CUDA device: {type(device_error).__name__}: {device_error}"
    return None if gpu_available() else "CuPy sees no CUDA device (0 devices)"


@functools.lru_cache(maxsize=1)
def _device_count():
    """(number of CUDA devices CuPy sees, the exception raised asking, or None)."""
    cp = _cupy()
    if cp is None:
        return 0, None
    try:
        return int(cp.cuda.runtime.getDeviceCount()), None
    except Exception as e:  # CUDARuntimeError: no driver, driver too old, no device
        return 0, e


@functools.lru_cache(maxsize=1)
def gpu_available() -> bool:
    """True when CuPy imports and sees at least one CUDA device.

    False under Numba's CUDA simulator: the simulator is a test harness for kernel
    index arithmetic, never a device to train on.
    """
    if simulator_enabled():
        return False
    return _device_count()[0] > 0


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
        raise RuntimeError(f"to_device(x, 'cuda'): no GPU is available: {gpu_unavailable_reason()} "
                           f"(`minidet doctor` says more)")
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

        raise MinidetError(f"device 'cuda' was asked for, but no GPU is available: {gpu_unavailable_reason()} "
                           f"(run `minidet doctor`)")
    return device
