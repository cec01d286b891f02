"""Every CUDA kernel of kernels/ compiled to SASS for sm_80 and sm_90, with no GPU.

Numba emits PTX (numba.cuda.compile_ptx: NVVM, no driver), ptxas from NVIDIA's wheels
assembles it and cuobjdump disassembles it (kernels/machine_code.py). For every kernel and
every dtype it is launched with, the tests fail on a compile error, on a spill or any
local memory (a stack frame, or an LDL/STL instruction), and on a double-precision
instruction in a float32 kernel. The compilation runs once per session (about a minute
on two cores) and is shared with the check that kernels/README.md's resource table is
current.
"""
from __future__ import annotations

import sys
from pathlib import Path

import pytest

from minidet.backend import simulator_enabled

ROOT = Path(__file__).resolve().parent.parent

pytestmark = pytest.mark.skipif(simulator_enabled(), reason="NUMBA_ENABLE_CUDASIM is set: numba.cuda is the simulator")


@pytest.fixture(scope="module")
def compiled():
    from kernels import machine_code

    try:
        for tool in ("ptxas", "cuobjdump", "nvdisasm"):  # cuobjdump -sass runs nvdisasm
            machine_code.find_tool(tool)
    except machine_code.ToolNotFound as e:
        pytest.fail(str(e))
    return machine_code.compile_all()


def _label(r):
    return f"{r[0].name} ({r[1]}, {r[2]})" if isinstance(r, tuple) else f"{r.kernel.name} ({r.dtype}, {r.arch})"


def test_sass_every_kernel_compiles_for_sm80_and_sm90(compiled):
    from kernels.machine_code import ARCHS, DTYPES, KERNELS

    errors = [f"{_label(r)}: {type(r[3]).__name__}: {str(r[3])[:500]}" for r in compiled if isinstance(r, tuple)]
    assert not errors, "\n".join(errors)
    done = {(r.kernel.name, r.dtype, r.arch) for r in compiled}
    assert done == {(k.name, d, f"sm_{a}{b}") for k in KERNELS for d in DTYPES for a, b in ARCHS}
    for r in compiled:
        assert r.registers > 0 and "EXIT" in r.sass, f"{_label(r)}: no resource report or no SASS"


def test_sass_no_spill_and_no_local_memory(compiled):
    bad = [f"{_label(r)}: {r.spill_stores} B spill stores, {r.spill_loads} B spill loads, {r.stack_bytes} B stack, "
           f"local accesses {r.local_ops[:3]}"
           for r in compiled if not isinstance(r, tuple)
           and (r.spill_stores or r.spill_loads or r.stack_bytes or r.local_ops)]
    assert not bad, "\n".join(bad)


def test_sass_float32_kernels_have_no_double_precision_instruction(compiled):
    bad = [f"{_label(r)}: {r.double_ops[:3]}" for r in compiled
           if not isinstance(r, tuple) and r.dtype == "float32" and r.double_ops]
    assert not bad, "float32 kernels computing in float64:\n" + "\n".join(bad)
    # The detector itself: every float64 kernel that computes must show double-precision SASS.
    f64 = [r for r in compiled if not isinstance(r, tuple) and r.dtype == "float64" and r.kernel.name != "im2col"]
    assert f64 and all(r.double_ops for r in f64), [_label(r) for r in f64 if not r.double_ops]


def test_sass_double_detector_on_known_instructions():
    from kernels.machine_code import DOUBLE_OP

    for op in ("DFMA R2, R4, R6, R8", "DADD R2, R4, R6", "F2F.F64.F32 R2, R4", "DSETP.GT.AND P0, PT, R2, RZ, PT",
               "MUFU.RCP64H R3, R5", "I2F.F64.S64 R2, R4"):
        assert DOUBLE_OP.search(op), op
    for op in ("FFMA R2, R4, R6, R8", "LDG.E.64 R2, desc[UR4][R4.64]", "IMAD.WIDE R6, R0, UR4, RZ", "FSETP.GT.AND P0"):
        assert not DOUBLE_OP.search(op), op


def test_sass_occupancy_model():
    from kernels.machine_code import occupancy_sm90

    assert occupancy_sm90(30, 256) == {"blocks": 8, "warps": 64, "occupancy": 1.0, "limit": "threads"}
    # 68 registers round to 72 a thread: 72·32 = 2304 a warp, 65536 // 2304 = 28 warps, 3 blocks of 8.
    assert occupancy_sm90(68, 256) == {"blocks": 3, "warps": 24, "occupancy": 0.375, "limit": "registers"}
    assert occupancy_sm90(32, 1024)["blocks"] == 2
    assert occupancy_sm90(16, 256, shared_bytes=100 * 1024)["limit"] == "shared memory"


def _gpu_resources():
    sys.path.insert(0, str(ROOT / "benchmarks"))
    try:
        import gpu_resources
    finally:
        sys.path.pop(0)
    return gpu_resources


def test_sass_resource_table_in_kernels_readme_is_current(compiled):
    """kernels/README.md holds the table benchmarks/gpu_resources.py writes from these compilations."""
    gpu_resources = _gpu_resources()
    readme = (ROOT / "kernels" / "README.md").read_text(encoding="utf-8")
    assert gpu_resources.render(readme, compiled) == readme, (
        "kernels/README.md's resource table is out of date; run `python benchmarks/gpu_resources.py` and commit it")
    stale = readme.replace("| sgd | float32 |", "| sgd | float32 | 999 |", 1)
    assert stale != readme and gpu_resources.render(stale, compiled) == readme


def test_sass_resource_table_needs_its_markers(compiled):
    with pytest.raises(ValueError, match="markers"):
        _gpu_resources().render("# no table here\n", compiled)
