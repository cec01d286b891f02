"""Every kernel of kernels/ compiled to machine code without a GPU: PTX, SASS and resources.

    Numba (numba.cuda.compile_ptx: NVVM, no driver)  →  PTX for compute capability cc
    ptxas -arch=sm_XX -v                            →  cubin + registers, spills, stack
    cuobjdump -sass                                 →  the SASS a device would run

The compilers come from NVIDIA's wheels (the `test` extra of setup.py:
nvidia-cuda-nvcc for ptxas, nvidia-cuda-cuobjdump and nvidia-cuda-nvdisasm, which
cuobjdump runs, and nvidia-nvvm and nvidia-cuda-nvrtc, which Numba loads to emit PTX); `find_tool` looks for them inside the installed `nvidia`
package, whatever its layout (`nvidia/cu13/bin/` for CUDA 13 wheels, `nvidia/cuda_nvcc/bin/`
for CUDA 12 ones), then on PATH.

`KERNELS` lists every kernel with the Numba signature of each dtype it is launched with
(the wrappers pass float32 or float64 arrays, scalars in the arrays' dtype and Python
ints, which Numba types int64) and its launch shape (kernels/_launch.py: 1-D blocks of
THREADS_PER_BLOCK threads, no shared memory). tests/test_kernels_sass.py checks the result;
benchmarks/gpu_resources.py writes it into kernels/README.md.

The PTX is what the Numba dispatcher generates for the same signature on a device of that
compute capability; on a device Numba links it with the driver (or nvJitLink) rather than
this ptxas, which may allocate registers a little differently.
"""
from __future__ import annotations

import functools
import re
import shutil
import subprocess
import tempfile
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

ARCHS = ((8, 0), (9, 0))
DTYPES = ("float32", "float64")

# sm_90 (H100, H200) per-SM limits, from NVIDIA's CUDA C++ Programming Guide
# ("Technical Specifications per Compute Capability") and the occupancy calculator.
SM90 = {"regs_per_sm": 65536, "max_threads_per_sm": 2048, "max_warps_per_sm": 64, "max_blocks_per_sm": 32,
        "max_regs_per_thread": 255, "reg_alloc_unit_per_warp": 256, "smem_per_sm": 228 * 1024,
        "smem_per_block_max": 227 * 1024, "smem_reserved_per_block": 1024, "smem_alloc_unit": 128}

# A SASS instruction that computes or converts in double precision: the D* arithmetic,
# the 64-bit MUFU seeds, and any conversion with an F64 side (F2F.F64.F32, I2F.F64, F2I...F64).
DOUBLE_OP = re.compile(r"\b(?:DADD|DMUL|DFMA|DSETP|DMNMX|DMMA|MUFU\.(?:RCP|RSQ)64H)\b|\.F64\b")
LOCAL_OP = re.compile(r"\b(?:LDL|STL)\b")


@dataclass(frozen=True)
class Kernel:
    name: str       # as in the README table
    module: str     # kernels.<module>
    attr: str       # the cuda.jit object in it
    args: str       # the signature, one letter an argument: see _signature


KERNELS = (
    Kernel("im2col", "im2col", "im2col_kernel", "4iiiii2"),
    Kernel("col2im", "im2col", "col2im_kernel", "2iiiii4"),
    Kernel("leaky_relu forward", "leaky_relu", "forward_kernel", "1f1"),
    Kernel("leaky_relu backward", "leaky_relu", "backward_kernel", "11f1"),
    Kernel("maxpool forward", "maxpool", "forward_kernel", "4iiii4n"),
    Kernel("maxpool backward gather", "maxpool", "backward_gather_kernel", "4nii4"),
    Kernel("sgd", "sgd", "sgd_kernel", "111fffi"),
    Kernel("yolo_loss", "yolo_loss", "yolo_loss_kernel", "44iifff42"),
    Kernel("roi_pool forward", "roi_pool", "forward_kernel", "4bBBBB4L"),
    Kernel("roi_pool backward gather", "roi_pool", "backward_gather_kernel", "4LbBBBB4"),
)


def _signature(args: str, dtype: str):
    """Numba argument types: 1/2/4 a C-contiguous float array of that many dimensions,
    f a scalar of the dtype, i an int64, n the int32 4-D argmax of max-pool; RoI pooling's
    int64 arrays: b its batch indices (R,), B its bin bounds (R, oh or ow), L its argmax."""
    from numba import types

    ft = getattr(types, dtype)
    table = {"1": ft[::1], "2": ft[:, ::1], "4": ft[:, :, :, ::1], "f": ft, "i": types.int64,
             "n": types.int32[:, :, :, ::1], "b": types.int64[::1], "B": types.int64[:, ::1],
             "L": types.int64[:, :, :, ::1]}
    return tuple(table[a] for a in args)


def py_func(kernel: Kernel):
    import importlib

    return getattr(importlib.import_module(f"kernels.{kernel.module}"), kernel.attr).py_func


def compile_ptx(kernel: Kernel, dtype: str, cc) -> str:
    """The PTX Numba emits for `kernel` at `dtype` and compute capability cc (no driver needed)."""
    from numba import cuda

    ptx, _ = cuda.compile_ptx(py_func(kernel), _signature(kernel.args, dtype), cc=tuple(cc), device=False)
    return ptx


class ToolNotFound(RuntimeError):
    pass


@functools.lru_cache(maxsize=None)
def find_tool(name: str) -> Path:
    """ptxas, cuobjdump or nvdisasm: inside the installed `nvidia` wheels first, then PATH."""
    try:
        import nvidia  # namespace package of NVIDIA's CUDA wheels
        roots = [Path(p) for p in nvidia.__path__]
    except ImportError:
        roots = []
    for root in roots:
        for candidate in sorted(root.glob(f"*/bin/{name}")):
            if candidate.is_file():
                return candidate
    on_path = shutil.which(name)
    if on_path:
        return Path(on_path)
    raise ToolNotFound(f"{name} not found in the nvidia wheels ({', '.join(map(str, roots)) or 'none installed'}) "
                       f"nor on PATH; install the test extra: pip install -e \".[test]\"")


def tool_version(name: str) -> str:
    out = subprocess.run([str(find_tool(name)), "--version"], capture_output=True, text=True).stdout
    found = re.search(r"release [\d.]+, V[\d.]+", out)
    return found.group(0) if found else out.strip().splitlines()[-1]


@dataclass
class Compiled:
    kernel: Kernel
    dtype: str
    arch: str            # "sm_80"
    registers: int
    shared_bytes: int    # static shared memory
    stack_bytes: int     # local memory for the stack frame
    spill_stores: int
    spill_loads: int
    sass: str

    @property
    def double_ops(self) -> list[str]:
        return [line.strip() for line in self.sass.splitlines() if "/*" in line and DOUBLE_OP.search(line.split("/*")[1])]

    @property
    def local_ops(self) -> list[str]:
        return [line.strip() for line in self.sass.splitlines() if "/*" in line and LOCAL_OP.search(line.split("/*")[1])]


def _field(pattern: str, text: str) -> int:
    values = [int(m) for m in re.findall(pattern, text)]
    return max(values) if values else 0


def assemble(ptx: str, arch: str, kernel: Kernel, dtype: str) -> Compiled:
    """ptxas the PTX for `arch` ("sm_90"), read its resource report, disassemble the cubin."""
    with tempfile.TemporaryDirectory(prefix="minidet-sass-") as tmp:
        src, cubin = Path(tmp) / "k.ptx", Path(tmp) / "k.cubin"
        src.write_text(ptx)
        proc = subprocess.run([str(find_tool("ptxas")), f"-arch={arch}", "-v", "-o", str(cubin), str(src)],
                              capture_output=True, text=True)
        if proc.returncode != 0:
            raise RuntimeError(f"ptxas failed for {kernel.name} ({dtype}, {arch}):\n{proc.stderr}")
        report = proc.stderr + proc.stdout
        sass = subprocess.run([str(find_tool("cuobjdump")), "-sass", str(cubin)], capture_output=True, text=True,
                              check=True).stdout
    return Compiled(kernel, dtype, arch,
                    registers=_field(r"Used (\d+) registers", report),
                    shared_bytes=_field(r"(\d+) bytes smem", report),
                    stack_bytes=_field(r"(\d+) bytes stack frame", report),
                    spill_stores=_field(r"(\d+) bytes spill stores", report),
                    spill_loads=_field(r"(\d+) bytes spill loads", report),
                    sass=sass)


@functools.lru_cache(maxsize=1)
def compile_all() -> tuple:
    """Every (kernel, dtype, arch) compiled: a tuple of Compiled, or of the exception raised.

    PTX generation runs in this thread (Numba's compiler holds a lock); ptxas and
    cuobjdump run as subprocesses, a few at a time.
    """
    jobs = []
    for kernel in KERNELS:
        for dtype in DTYPES:
            for cc in ARCHS:
                try:
                    jobs.append((kernel, dtype, cc, compile_ptx(kernel, dtype, cc)))
                except Exception as e:  # noqa: BLE001  (reported by the caller, per kernel)
                    jobs.append((kernel, dtype, cc, e))

    def run(job):
        kernel, dtype, cc, ptx = job
        if isinstance(ptx, Exception):
            return (kernel, dtype, f"sm_{cc[0]}{cc[1]}", ptx)
        try:
            return assemble(ptx, f"sm_{cc[0]}{cc[1]}", kernel, dtype)
        except Exception as e:  # noqa: BLE001
            return (kernel, dtype, f"sm_{cc[0]}{cc[1]}", e)

    with ThreadPoolExecutor(max_workers=4) as pool:
        return tuple(pool.map(run, jobs))


def occupancy_sm90(registers: int, threads_per_block: int, shared_bytes: int = 0) -> dict:
    """Theoretical occupancy of a kernel on one sm_90 SM (the CUDA occupancy calculator's rules).

    Registers are allocated per warp in units of 256 (so per thread in steps of 8);
    shared memory per block in units of 128 bytes plus 1 KiB the system reserves.
    Returns blocks per SM, active warps, occupancy (active / 64 warps) and the limit hit.
    """
    L = SM90
    warps_per_block = -(-threads_per_block // 32)
    by = {"threads": L["max_threads_per_sm"] // threads_per_block, "blocks": L["max_blocks_per_sm"]}
    regs_per_warp = -(-max(registers, 1) * 32 // L["reg_alloc_unit_per_warp"]) * L["reg_alloc_unit_per_warp"]
    by["registers"] = (L["regs_per_sm"] // regs_per_warp) // warps_per_block
    smem = shared_bytes + L["smem_reserved_per_block"]
    smem = -(-smem // L["smem_alloc_unit"]) * L["smem_alloc_unit"]
    by["shared memory"] = L["smem_per_sm"] // smem
    limit = min(by, key=by.get)
    blocks = by[limit]
    warps = blocks * warps_per_block
    return {"blocks": blocks, "warps": warps, "occupancy": warps / L["max_warps_per_sm"], "limit": limit}
