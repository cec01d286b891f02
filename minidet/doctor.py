"""`minidet doctor`: what this installation can run on, and what to install for the GPU path.

Prints the versions of NumPy, Numba, numba-cuda and CuPy (and of NVIDIA's CUDA wheels),
the NVIDIA driver and the CUDA version it supports (read from libcuda directly, so it is
known even when CuPy is missing or broken), the CUDA toolkit CuPy was built for, the
device, whether Numba's CUDA simulator is on, and, when the GPU path is unavailable, the
underlying error (minidet.backend.gpu_unavailable_reason) and the extra to install:

    driver supports CUDA 12.x  ->  pip install "minidet[gpu-cuda12]"
    driver supports CUDA 13.x  ->  pip install "minidet[gpu-cuda13]"

Nothing here is needed on the CPU path; every probe is guarded, so the report itself never
fails.
"""
from __future__ import annotations

import ctypes
import importlib.metadata as metadata
import platform

from . import backend

PACKAGES = ("numpy", "numba", "numba-cuda", "cupy-cuda12x", "cupy-cuda13x", "cupy", "cuda-bindings")
EXTRA_FOR_MAJOR = {12: "gpu-cuda12", 13: "gpu-cuda13"}


def version_of(dist: str) -> str | None:
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return None


def nvidia_wheels() -> dict:
    """Installed distributions named nvidia-* (CUDA libraries and compilers) -> version."""
    found = {}
    for dist in metadata.distributions():
        name = (dist.metadata.get("Name") or "").lower()
        if name.startswith("nvidia-"):
            found[name] = dist.version
    return dict(sorted(found.items()))


def driver_cuda_version() -> tuple[int, int] | None:
    """The CUDA version the installed NVIDIA driver supports, from libcuda; None without a driver."""
    for name in ("libcuda.so.1", "libcuda.so", "nvcuda.dll"):
        try:
            lib = ctypes.CDLL(name)
        except OSError:
            continue
        version = ctypes.c_int(0)
        if lib.cuDriverGetVersion(ctypes.byref(version)) == 0 and version.value > 0:
            return version.value // 1000, (version.value % 1000) // 10
    return None


def _cupy_facts() -> list[tuple[str, str]]:
    cp = backend._cupy()
    if cp is None:
        return []
    facts = []
    try:
        v = cp.cuda.runtime.runtimeGetVersion()
        facts.append(("CUDA runtime (CuPy's)", f"{v // 1000}.{(v % 1000) // 10}"))
    except Exception as e:  # noqa: BLE001  (reported, not raised)
        facts.append(("CUDA runtime (CuPy's)", f"unknown ({type(e).__name__}: {e})"))
    if backend.gpu_available():
        try:
            props = cp.cuda.runtime.getDeviceProperties(cp.cuda.Device().id)
            name = props["name"].decode() if isinstance(props["name"], bytes) else props["name"]
            facts.append(("device", f"{name}, compute capability {props['major']}.{props['minor']}, "
                                    f"{props['totalGlobalMem'] / 2**30:.0f} GiB, {props['multiProcessorCount']} SMs"))
        except Exception as e:  # noqa: BLE001
            facts.append(("device", f"unknown ({type(e).__name__}: {e})"))
    return facts


def _nvvm_version() -> str:
    if backend.simulator_enabled():
        return "not used (simulator)"
    try:
        from numba.cuda.cudadrv import nvvm

        return ".".join(map(str, nvvm.NVVM().get_version()))
    except Exception as e:  # noqa: BLE001
        return f"not found ({type(e).__name__}: {' '.join(str(e).split())[:200]})"


def advice(driver, reason: str | None) -> str | None:
    """What to install, or None when the GPU path works."""
    if reason is None:
        return None
    if driver is None:
        return ("no NVIDIA driver found (libcuda): the GPU path needs a CUDA device and its driver; "
                "the CPU path works as it is")
    extra = EXTRA_FOR_MAJOR.get(driver[0], "gpu-cuda13" if driver[0] > 13 else None)
    if extra is None:
        return f"the driver supports CUDA {driver[0]}.{driver[1]}; minidet's GPU extras need CUDA 12 or 13: update the driver"
    wrong = [d for d in ("cupy-cuda12x", "cupy-cuda13x") if version_of(d) and not d.endswith(f"{extra[-2:]}x")]
    fix = f'pip install "minidet[{extra}]"   (from a checkout: pip install -e ".[{extra}]")'
    if wrong:
        fix = f"pip uninstall {' '.join(wrong)} && " + fix
    return f"the driver supports CUDA {driver[0]}.{driver[1]}: {fix}"


def report() -> list[tuple[str, str]]:
    """(label, value) lines of the report."""
    lines = [("python", f"{platform.python_version()} ({platform.machine()}, {platform.system()})")]
    for dist in PACKAGES:
        v = version_of(dist)
        if v is not None or dist in ("numpy", "numba", "numba-cuda"):
            lines.append((dist, v or "not installed"))
    if not any(version_of(d) for d in ("cupy-cuda12x", "cupy-cuda13x", "cupy")):
        lines.append(("cupy", "not installed"))
    wheels = nvidia_wheels()
    lines.append(("NVIDIA CUDA wheels", ", ".join(f"{k} {v}" for k, v in wheels.items()) or "none"))
    driver = driver_cuda_version()
    lines.append(("driver (libcuda)", f"supports CUDA {driver[0]}.{driver[1]}" if driver else "not found"))
    lines.append(("libNVVM (Numba's PTX compiler)", _nvvm_version()))
    lines += _cupy_facts()
    lines.append(("Numba CUDA simulator", "ON (NUMBA_ENABLE_CUDASIM): kernels run as Python, never a device"
                  if backend.simulator_enabled() else "off"))
    reason = backend.gpu_unavailable_reason()
    lines.append(("GPU path", "available" if reason is None else f"unavailable: {reason}"))
    todo = advice(driver, reason)
    if todo:
        lines.append(("to use a GPU", todo))
    return lines


def run(write=print) -> int:
    lines = report()
    width = max(len(label) for label, _ in lines)
    for label, value in lines:
        write(f"{label:<{width}}  {' '.join(str(value).split())}")
    return 0
