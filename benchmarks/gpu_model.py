"""PREDICTED GPU times of minidet's kernels and of a Fast YOLO training step, from bytes and FLOPs.

    python benchmarks/gpu_model.py [--batch 64] [--size 448] [--copy-fraction 0.9]

Nothing here is measured: every figure it prints is a prediction of a roofline model
from published peak figures, labelled so. benchmarks/bench_gpu.py prints its measurements
beside these predictions when it runs on a device.

The model (its assumptions, all of them):
1. A memory-bound operation moves its bytes at the device's copy bandwidth, taken as
   COPY_FRACTION (0.9 by default) of the datasheet HBM bandwidth: a device-to-device copy
   reaches less than the datasheet, and bench_gpu.py measures the real one.
2. Each array an operation reads or writes is moved once (perfect cache reuse inside a
   kernel: im2col reads x once although each element lands in up to 9 columns).
3. A matrix product (cuBLAS) runs at the peak of its precision, FP32 or TF32 (tensor
   cores, dense), and never faster than its operands' traffic at copy bandwidth:
   time = max(bytes / bandwidth, FLOPs / peak).
4. Operations run one after another (no overlap), with no launch overhead and no host
   time; the launches of a step are counted and reported beside the prediction, not in it.
5. float32 everywhere; Fast YOLO as minidet.models.fast_yolo() builds it (the operations
   of each layer as minidet/layers and kernels/ perform them: im2col, one product, a
   bias-and-transpose pass, and for the backward a transpose, a bias sum, two products
   and a col2im); Dropout and the views (Flatten, Reshape) are counted as free.

Published peak figures used (NVIDIA H100 and H200 datasheets and the H100 whitepaper;
TF32 dense, i.e. half the "with sparsity" figure the datasheets headline):
    H100 SXM5 80 GB : HBM3  3.35 TB/s, FP32 66.9 TFLOP/s, TF32 494.7 TFLOP/s, 132 SMs
    H200 SXM 141 GB : HBM3e 4.8 TB/s,  FP32 66.9 TFLOP/s, TF32 494.7 TFLOP/s, 132 SMs
"""
from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

COPY_FRACTION = 0.9
F32 = 4  # bytes

DEVICES = {
    "H100 SXM": {"hbm_GBps": 3350.0, "fp32_TFLOPs": 66.9, "tf32_TFLOPs": 494.7, "sms": 132},
    "H200": {"hbm_GBps": 4800.0, "fp32_TFLOPs": 66.9, "tf32_TFLOPs": 494.7, "sms": 132},
}


@dataclass
class Op:
    name: str
    bytes: int
    flops: int = 0          # only matrix products carry FLOPs in the model
    numba: bool = False     # a kernel of kernels/ (a Numba launch), else CuPy / cuBLAS

    def seconds(self, device: dict, tf32: bool, copy_fraction: float = COPY_FRACTION) -> float:
        memory = self.bytes / (device["hbm_GBps"] * 1e9 * copy_fraction)
        if not self.flops:
            return memory
        peak = device["tf32_TFLOPs" if tf32 else "fp32_TFLOPs"] * 1e12
        return max(memory, self.flops / peak)


def device_for(name: str):
    """The DEVICES key for a device name as CUDA reports it ("NVIDIA H200", "NVIDIA H100 80GB HBM3"), or None.
    H100 PCIe and NVL have other bandwidths and clocks and are not modelled."""
    upper = name.upper()
    if "H200" in upper:
        return "H200"
    if "H100" in upper and "PCIE" not in upper and "NVL" not in upper:
        return "H100 SXM"
    return None


def _conv_ops(i, layer, shape):
    N, C, H, W = shape
    F, k = layer.out_channels, layer.kernel_size
    Ho, Wo = layer.output_shape(shape)[2:]
    x, out, cols, w = N * C * H * W, N * F * Ho * Wo, C * k * k * N * Ho * Wo, F * C * k * k
    flops = 2 * F * C * k * k * N * Ho * Wo
    forward = [Op(f"{i} conv im2col", F32 * (x + cols), numba=True),
               Op(f"{i} conv product", F32 * (w + cols + out), flops),
               Op(f"{i} conv bias + NCHW", F32 * 2 * out)]
    backward = [Op(f"{i} conv dy transpose", F32 * 2 * out), Op(f"{i} conv db sum", F32 * out),
                Op(f"{i} conv dW product", F32 * (out + cols + w), flops)]
    if layer.need_input_grad:
        backward += [Op(f"{i} conv dcols product", F32 * (w + out + cols), flops),
                     Op(f"{i} conv col2im", F32 * (cols + x), numba=True)]
    return forward, backward, (N, F, Ho, Wo)


def step_ops(batch: int = 64, size: int = 448, model=None):
    """(forward ops, backward ops, loss and update ops) of one training step of `model`
    (default minidet.models.fast_yolo()) on (batch, 3, size, size) float32 images."""
    from minidet.layers import Conv2d, LeakyReLU, Linear, MaxPool2d

    if model is None:
        from minidet.models import fast_yolo

        model = fast_yolo()
    shape, forward, backward = (batch, 3, size, size), [], []
    for i, layer in enumerate(model.layers):
        n = 1
        for d in shape:
            n *= d
        if isinstance(layer, Conv2d):
            f, b, shape = _conv_ops(i, layer, shape)
        elif isinstance(layer, LeakyReLU):
            f, b = [Op(f"{i} leaky_relu forward", F32 * 2 * n, numba=True)], \
                   [Op(f"{i} leaky_relu backward", F32 * 3 * n, numba=True)]
        elif isinstance(layer, MaxPool2d):
            shape = layer.output_shape(shape)
            m = shape[0] * shape[1] * shape[2] * shape[3]
            f = [Op(f"{i} maxpool forward", F32 * n + 2 * F32 * m, numba=True)]   # y and the int32 argmax
            b = [Op(f"{i} maxpool backward", 2 * F32 * m + F32 * n, numba=True)]
        elif isinstance(layer, Linear):
            N, fin, fout = shape[0], layer.in_features, layer.out_features
            w, flops = fin * fout, 2 * shape[0] * fin * fout
            f = [Op(f"{i} linear product + bias", F32 * (N * fin + w + 2 * N * fout), flops)]
            b = [Op(f"{i} linear dW product", F32 * (N * fout + N * fin + w), flops),
                 Op(f"{i} linear dx product", F32 * (N * fout + w + N * fin), flops),
                 Op(f"{i} linear db sum", F32 * N * fout)]
            shape = (N, fout)
        else:  # Flatten, Reshape, Dropout: views, or negligible next to the rest
            f, b = [], []
            if type(layer).__name__ == "Flatten":
                shape = (shape[0], n // shape[0])
        forward += f
        backward = b + backward
    cells, depth = 7 * 7, 30
    sizes = [int(p[k].size) for _, p, _, k in model.named_parameters()]
    params = sum(sizes)
    # The gradients' gather is xp.concatenate: one CuPy kernel for more than 8 arrays averaging
    # under 2 MiB, else one copy per array (CuPy's rule, cupy/_core/_routines_manipulation.pyx).
    if len(sizes) > 8 and F32 * params < 2 * 2**20 * len(sizes):
        gather = [Op("sgd gradient concatenation", F32 * 2 * params)]
    else:
        gather = [Op(f"sgd gradient copy {j}", F32 * 2 * n) for j, n in enumerate(sizes)]
    update = [Op("yolo_loss (fused)", F32 * batch * cells * (depth + 25 + depth + 4), numba=True), *gather,
              Op("sgd (one launch)", F32 * 5 * params, numba=True)]
    return forward, backward, update


def kernel_bytes(batch: int = 64):
    """Bytes moved by each kernel at the shapes bench_gpu.py times, keyed by its row names."""
    from bench_gpu import FAST_YOLO_CONVS

    rows = {}
    for c, _, s in FAST_YOLO_CONVS:
        x, cols = batch * c * s * s, c * 9 * batch * s * s
        rows[f"im2col {c}×{s}²"] = rows[f"col2im {c}×{s}²"] = F32 * (x + cols)
    n = batch * 16 * 448 * 448
    rows["leaky_relu forward 16×448²"], rows["leaky_relu backward 16×448²"] = F32 * 2 * n, F32 * 3 * n
    for k, s in ((2, 2), (3, 2)):
        m = batch * 16 * ((448 - k) // s + 1) ** 2
        rows[f"maxpool k{k}s{s} forward 16×448²"] = F32 * n + 2 * F32 * m
        rows[f"maxpool k{k}s{s} backward (gather)"] = F32 * n + 2 * F32 * m
    return rows


def predict_step(device: str, tf32: bool, batch: int = 64, size: int = 448, copy_fraction: float = COPY_FRACTION,
                 model=None) -> dict:
    forward, backward, update = step_ops(batch, size, model)
    dev = DEVICES[device]

    def total(ops):
        return 1e3 * sum(op.seconds(dev, tf32, copy_fraction) for op in ops)

    ops = forward + backward + update
    return {"forward_ms": total(forward), "step_ms": total(ops), "launches": len(ops),
            "numba_launches": sum(op.numba for op in ops),
            "bytes": sum(op.bytes for op in ops), "flops": sum(op.flops for op in ops),
            "memory_bound_ms": total([op for op in ops if not op.flops]),
            "products_ms": total([op for op in ops if op.flops])}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--size", type=int, default=448)
    parser.add_argument("--copy-fraction", type=float, default=COPY_FRACTION)
    args = parser.parse_args(argv)
    from minidet.models import fast_yolo

    model = fast_yolo()
    print("PREDICTIONS (roofline model, no measurement; assumptions in benchmarks/gpu_model.py):")
    print(f"copy bandwidth = {args.copy_fraction:g} × datasheet HBM bandwidth\n")
    print(f"{'kernel (float32, bench_gpu.py shapes)':44s} {'MB moved':>9s}" + "".join(f" {d + ' µs':>12s}" for d in DEVICES))
    for name, nbytes in kernel_bytes(args.batch).items():
        times = [Op(name, nbytes).seconds(dev, False, args.copy_fraction) * 1e6 for dev in DEVICES.values()]
        print(f"{name:44s} {nbytes / 1e6:9.1f}" + "".join(f" {t:12.1f}" for t in times))
    print(f"\nFast YOLO training step, {args.size}², batch {args.batch}, float32:")
    for device in DEVICES:
        for tf32 in (False, True):
            p = predict_step(device, tf32, args.batch, args.size, args.copy_fraction, model)
            print(f"  {device:9s} {'TF32' if tf32 else 'FP32':4s}: step {p['step_ms']:7.2f} ms predicted "
                  f"(forward {p['forward_ms']:6.2f}; products {p['products_ms']:6.2f}, memory-bound "
                  f"{p['memory_bound_ms']:6.2f}); {p['flops'] / 1e12:.2f} TFLOP, {p['bytes'] / 1e9:.1f} GB, "
                  f"{p['launches']} launches ({p['numba_launches']} Numba) not counted")
    return 0


if __name__ == "__main__":
    sys.exit(main())
