"""Memory bandwidth of the memory-bound layers, measured against a plain copy.

Leaky ReLU and max-pooling do at most a few operations per element they read, so their
speed is set by how fast memory delivers the bytes, not by arithmetic. The yardstick is
a copy of an array of the same size on the same device (`np.copyto` on the CPU, a
device-to-device `cupy.copyto` on the GPU): it does no arithmetic at all, so its
bandwidth is what a memory-bound kernel can hope to reach.

Bytes moved are the least traffic an operation needs: every input read once, every
output written once (float32 activations and gradients, int32 argmax indices):

    copy               read n, write n                       2·n·s
    leaky_relu forward read x, write y                       2·n·s
    leaky_relu backward read y and dy, write dx              3·n·s
    max-pool forward   read x, write y and argmax            n·s + m·(s + 4)
    max-pool backward  read dy and argmax, write dx          m·(s + 4) + n·s

with n input elements, m = N·C·Ho·Wo output elements and s bytes per element (4 for
float32). Flops: leaky ReLU does one multiply an element (the comparison is not
counted); a k×k max-pool does k² − 1 comparisons an output, counted as flops here to
give it the benefit of the doubt; the max-pool backward does one add an output.
Arithmetic intensity = flops / bytes, in flop per byte.

The CPU measurements call the same Numba loops as `minidet.layers` (with the outputs
allocated once, as a GPU kernel's `out=` does: a fresh 50 MB array on every call would
time the kernel's page faults, not its memory traffic). The GPU ones call `kernels/`
through CuPy and time with CUDA events.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from kernels._device import output_size

from ..backend import check_device, gpu_available
from ..timing import time_call

INDEX_BYTES = 4  # argmax is int32
SLOPE = 0.1


def copy_bytes(n: int, itemsize: int) -> int:
    """Bytes a copy of n elements moves: read once, written once."""
    return 2 * n * itemsize


def leaky_relu_bytes(n: int, itemsize: int, backward: bool = False) -> int:
    """Forward: read x, write y (2·n·s). Backward: read y and dy, write dx (3·n·s)."""
    return (3 if backward else 2) * n * itemsize


def pooled_shape(x_shape, kernel_size: int = 2, stride: int | None = None):
    """(N, C, Ho, Wo) of a max-pool of x_shape (N, C, H, W), no padding."""
    stride = kernel_size if stride is None else stride
    N, C, H, W = x_shape
    return (N, C, output_size(H, kernel_size, stride), output_size(W, kernel_size, stride))


def maxpool_bytes(x_shape, itemsize: int, kernel_size: int = 2, stride: int | None = None,
                  backward: bool = False) -> int:
    """n·s + m·(s + 4), forward or backward alike (see the module docstring)."""
    n = int(np.prod(x_shape))
    m = int(np.prod(pooled_shape(x_shape, kernel_size, stride)))
    return n * itemsize + m * (itemsize + INDEX_BYTES)


def leaky_relu_flops(n: int, backward: bool = False) -> int:
    return n


def maxpool_flops(x_shape, kernel_size: int = 2, stride: int | None = None, backward: bool = False) -> int:
    m = int(np.prod(pooled_shape(x_shape, kernel_size, stride)))
    return m if backward else m * (kernel_size * kernel_size - 1)


@dataclass
class Measurement:
    """One timed operation: median seconds a call, and what a call moves and computes."""

    name: str
    seconds: float
    bytes_moved: int
    flops: int

    @property
    def gbps(self) -> float:
        """Achieved bandwidth, in GB/s (10⁹ bytes a second)."""
        return self.bytes_moved / self.seconds / 1e9

    @property
    def intensity(self) -> float:
        """Arithmetic intensity, flop per byte."""
        return self.flops / self.bytes_moved


def _operations(x, device: str, kernel_size: int, stride: int):
    """(name, fn, bytes, flops) for the copy and the four layer passes on x (N, C, H, W)."""
    n, s = x.size, x.itemsize
    pshape = pooled_shape(x.shape, kernel_size, stride)
    if device == "cpu":
        from kernels.leaky_relu import backward_cpu_loop as leaky_bwd
        from kernels.leaky_relu import forward_cpu_loop as leaky_fwd
        from kernels.maxpool import backward_cpu_loop as pool_bwd
        from kernels.maxpool import forward_cpu_loop as pool_fwd

        xp = np
        y, dx, dst = np.empty_like(x), np.empty_like(x), np.empty_like(x)
        dy = np.random.default_rng(1).standard_normal(x.shape).astype(x.dtype)
        flat = [a.reshape(-1) for a in (x, y, dy, dx)]
        py = np.empty(pshape, x.dtype)
        argmax = np.empty(pshape, np.int32)
        Ho, Wo = pshape[2:]
        copy = lambda: np.copyto(dst, x)  # noqa: E731
        slope = x.dtype.type(SLOPE)
        lf = lambda: leaky_fwd(flat[0], slope, flat[1])  # noqa: E731
        lb = lambda: leaky_bwd(flat[1], flat[2], slope, flat[3])  # noqa: E731
        pf = lambda: pool_fwd(x, kernel_size, stride, Ho, Wo, py, argmax)  # noqa: E731
        pdy = dy[:, :, :Ho, :Wo].copy()
        pb = lambda: pool_bwd(pdy, argmax, dx)  # noqa: E731
    else:
        import cupy as xp

        from kernels.leaky_relu import leaky_relu_backward_gpu, leaky_relu_forward_gpu
        from kernels.maxpool import maxpool2d_backward_gpu, maxpool2d_forward_gpu

        y, dx, dst = xp.empty_like(x), xp.empty_like(x), xp.empty_like(x)
        dy = xp.random.default_rng(1).standard_normal(x.shape, dtype=x.dtype)
        py, argmax = maxpool2d_forward_gpu(x, kernel_size, stride)
        pdy = xp.ascontiguousarray(dy[:, :, :pshape[2], :pshape[3]])
        copy = lambda: xp.copyto(dst, x)  # noqa: E731
        lf = lambda: leaky_relu_forward_gpu(x, SLOPE, out=y)  # noqa: E731
        lb = lambda: leaky_relu_backward_gpu(y, dy, SLOPE, out=dx)  # noqa: E731
        pf = lambda: maxpool2d_forward_gpu(x, kernel_size, stride, out=py, argmax_out=argmax)  # noqa: E731
        pb = lambda: maxpool2d_backward_gpu(pdy, argmax, x.shape, kernel_size=kernel_size,  # noqa: E731
                                            stride=stride, out=dx)
    lf()  # y for the leaky backward, argmax for the pool backward
    pf()
    pool = f"maxpool {kernel_size}×{kernel_size}/{stride}"
    return [
        ("copy", copy, copy_bytes(n, s), 0),
        ("leaky_relu forward", lf, leaky_relu_bytes(n, s), leaky_relu_flops(n)),
        ("leaky_relu backward", lb, leaky_relu_bytes(n, s, backward=True), leaky_relu_flops(n, backward=True)),
        (f"{pool} forward", pf, maxpool_bytes(x.shape, s, kernel_size, stride),
         maxpool_flops(x.shape, kernel_size, stride)),
        (f"{pool} backward", pb, maxpool_bytes(x.shape, s, kernel_size, stride, backward=True),
         maxpool_flops(x.shape, kernel_size, stride, backward=True)),
    ], xp


def measure(shape=(8, 16, 224, 224), device: str = "cpu", dtype=np.float32, kernel_size: int = 2,
            stride: int | None = None, repeats: int = 10, warmup: int = 2, seed: int = 0) -> list:
    """Time a copy, leaky ReLU forward/backward and max-pool forward/backward on one activation.

    shape: the activation (N, C, H, W) (the default, 8 × 16 × 224², is Fast YOLO's second
    layer input at batch 8: 25.7 MB in float32, larger than a CPU's last-level cache, so
    the bytes come from DRAM). device: "cpu" (the Numba loops of `minidet.layers`) or
    "cuda" (the kernels of `kernels/`, needs `gpu_available()`).
    Returns a list of `Measurement`, the copy first.
    """
    check_device(device)
    if device == "cuda" and not gpu_available():
        raise RuntimeError("bandwidth.measure(device='cuda'): no GPU is available")
    if len(shape) != 4:
        raise ValueError(f"bandwidth.measure: shape must be (N, C, H, W), got {shape}")
    stride = kernel_size if stride is None else stride
    x = np.random.default_rng(seed).standard_normal(shape).astype(dtype)
    if device == "cuda":
        from .backend import to_device

        x = to_device(x, "cuda")
    ops, _ = _operations(x, device, kernel_size, stride)
    return [Measurement(name, time_call(fn, device, repeats, warmup), nbytes, flops)
            for name, fn, nbytes, flops in ops]


def table(measurements) -> str:
    """The measurements as text: time, GB/s, fraction of the copy's bandwidth, flop/byte."""
    copy = next((m for m in measurements if m.name == "copy"), None)
    lines = [f"{'operation':<24} {'ms':>8} {'MB moved':>9} {'GB/s':>7} {'of copy':>8} {'flop/byte':>10}"]
    for m in measurements:
        frac = f"{m.gbps / copy.gbps:8.0%}" if copy else f"{'':>8}"
        lines.append(f"{m.name:<24} {m.seconds * 1e3:8.2f} {m.bytes_moved / 1e6:9.1f} {m.gbps:7.1f} "
                     f"{frac} {m.intensity:10.3f}")
    return "\n".join(lines)
