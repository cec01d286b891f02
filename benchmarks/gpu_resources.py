"""The resources of every CUDA kernel, compiled without a GPU, written into kernels/README.md.

    python benchmarks/gpu_resources.py            # rewrite the table between the markers
    python benchmarks/gpu_resources.py --check    # exit 1 if the table is out of date

For each kernel of kernels/ and each dtype it is launched with: the registers a thread,
static shared memory, spill and stack bytes that ptxas reports for sm_80 and sm_90 (the
CUDA 13 ptxas of the `test` extra, from Numba's PTX: kernels/machine_code.py), and the
theoretical occupancy on one sm_90 SM (H100, H200) at the kernel's launch shape: 1-D
blocks of kernels._launch.THREADS_PER_BLOCK threads, no dynamic shared memory. Occupancy
is a property of the binary and the launch, not a measurement: it is the fraction of the
SM's 64 warp slots the kernel can fill, and says nothing of the time. tests/test_kernels_sass.py
fails when the table in the README differs from what this script would write.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

README = ROOT / "kernels" / "README.md"
BEGIN = "<!-- gpu_resources:begin (written by benchmarks/gpu_resources.py; do not edit) -->"
END = "<!-- gpu_resources:end -->"


def section(compiled) -> str:
    """The table (markdown) for a tuple of machine_code.Compiled; raises on a failed compilation."""
    from kernels._launch import THREADS_PER_BLOCK
    from kernels.machine_code import SM90, occupancy_sm90, tool_version

    failed = [r for r in compiled if isinstance(r, tuple)]
    if failed:
        kernel, dtype, arch, err = failed[0]
        raise RuntimeError(f"{kernel.name} ({dtype}, {arch}) did not compile: {err}")
    by_key = {(r.kernel.name, r.dtype, r.arch): r for r in compiled}
    names = list(dict.fromkeys(r.kernel.name for r in compiled))
    dtypes = list(dict.fromkeys(r.dtype for r in compiled))
    lines = [
        f"ptxas {tool_version('ptxas')}, from the PTX Numba emits; launch shape {THREADS_PER_BLOCK} threads "
        f"a block, 1-D grid. Occupancy: theoretical, one sm_90 SM ({SM90['regs_per_sm']:,} registers, "
        f"{SM90['max_threads_per_sm']:,} threads, {SM90['max_blocks_per_sm']} blocks, "
        f"{SM90['smem_per_sm'] // 1024} KiB shared memory), and the limit that sets it.",
        "",
        "| kernel | dtype | registers sm_80 | registers sm_90 | shared memory (B) | spills / stack (B) "
        "| occupancy sm_90 | limited by |",
        "| --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for name in names:
        for dtype in dtypes:
            a, b = by_key[(name, dtype, "sm_80")], by_key[(name, dtype, "sm_90")]
            occ = occupancy_sm90(b.registers, THREADS_PER_BLOCK, b.shared_bytes)
            spills = max(a.spill_stores + a.spill_loads + a.stack_bytes, b.spill_stores + b.spill_loads + b.stack_bytes)
            lines.append(f"| {name} | {dtype} | {a.registers} | {b.registers} | {b.shared_bytes} | {spills} "
                         f"| {occ['occupancy'] * 100:g}% ({occ['warps']} warps) | {occ['limit']} |")
    return "\n".join([BEGIN, *lines, END])


def render(text: str, compiled) -> str:
    """`text` (the README) with the block between the markers replaced by the current table."""
    start, stop = text.find(BEGIN), text.find(END)
    if start < 0 or stop < start:
        raise ValueError(f"the README has no gpu_resources markers ({BEGIN!r} ... {END!r})")
    return text[:start] + section(compiled) + text[stop + len(END):]


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="exit 1 if the README's table is out of date")
    parser.add_argument("--readme", type=Path, default=README)
    args = parser.parse_args(argv)
    from kernels.machine_code import compile_all

    text = args.readme.read_text(encoding="utf-8")
    new = render(text, compile_all())
    if args.check:
        if new != text:
            print(f"{args.readme}: the resource table is out of date; run python benchmarks/gpu_resources.py")
            return 1
        print(f"{args.readme}: the resource table is current")
        return 0
    if new != text:
        tmp = args.readme.with_suffix(".md.tmp")
        tmp.write_text(new, encoding="utf-8")
        tmp.replace(args.readme)
    print(section(compile_all()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
