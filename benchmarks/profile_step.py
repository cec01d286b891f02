"""Where a CPU training step of the reduced Fast YOLO spends its time, layer by layer.

    python benchmarks/profile_step.py                      # 112:0.25:32, fc head
    python benchmarks/profile_step.py 224:0.5:16 --repeats 10
    python benchmarks/profile_step.py 112:0.25:32:conv --torch   # and PyTorch's own time per layer

Config input:width:batch[:head] as in bench_cpu.py. Each layer's forward and backward are
timed on their own (host clock, mean of `repeats` steps after 3 warm-up steps), then the
loss and the SGD step; the sum is the step. Per convolution it prints the FLOPs of its
products and the rate they ran at: the rate to compare with the machine's matrix-product
ceiling. With --torch the same convolutions run in PyTorch (same shapes, its own threads):
its rate above the product ceiling means it uses a faster algorithm than one product.
"""
from __future__ import annotations

import argparse
import os
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))
import minidet  # noqa: E402,F401  (first: minidet.THREAD_POLICY)
import numpy as np  # noqa: E402

from minidet.layers import Conv2d  # noqa: E402
from minidet.loss import YoloLoss  # noqa: E402
from minidet.models import reduced_fast_yolo  # noqa: E402
from minidet.optim import SGD  # noqa: E402

sys.path.insert(0, os.path.dirname(__file__))
from bench_cpu import parse_config, random_targets  # noqa: E402


def conv_flops(layer: Conv2d, out_shape) -> float:
    """Multiply-adds ×2 of the forward product (the backward does twice as many)."""
    N, F, Ho, Wo = out_shape
    return 2.0 * F * layer.in_channels * layer.kernel_size**2 * N * Ho * Wo


def profile(model, x, target, repeats: int):
    """Per layer (forward s, backward s, output shape), then (loss s, SGD s): means over `repeats`."""
    loss, opt = YoloLoss(S=model.S, B=model.B, C=model.C), SGD(model, lr=1e-4)
    for _ in range(3):
        loss.forward(model.forward(x), target)
        model.backward(loss.backward())
        opt.step()
    fw, bw = np.zeros(len(model.layers)), np.zeros(len(model.layers))
    shapes, t_loss, t_sgd = [None] * len(model.layers), 0.0, 0.0
    for _ in range(repeats):
        h = x
        for i, layer in enumerate(model.layers):
            t0 = time.perf_counter()
            h = layer.forward(h)
            fw[i] += time.perf_counter() - t0
            shapes[i] = h.shape
        t0 = time.perf_counter()
        loss.forward(h, target)
        g = loss.backward()
        t_loss += time.perf_counter() - t0
        for i in reversed(range(len(model.layers))):
            t0 = time.perf_counter()
            g = model.layers[i].backward(g)
            bw[i] += time.perf_counter() - t0
        t0 = time.perf_counter()
        opt.step()
        t_sgd += time.perf_counter() - t0
    return [(f / repeats, b / repeats, s) for f, b, s in zip(fw, bw, shapes)], t_loss / repeats, t_sgd / repeats


def torch_conv_seconds(torch, layer: Conv2d, in_shape, repeats: int):
    """(forward s, backward s) of the same convolution in PyTorch, best of `repeats`."""
    conv = torch.nn.Conv2d(layer.in_channels, layer.out_channels, layer.kernel_size, layer.stride, layer.padding)
    x = torch.randn(*in_shape, requires_grad=layer.need_input_grad)
    y = conv(x)
    g = torch.ones_like(y)
    fw, bw = [], []
    for _ in range(repeats + 2):
        t0 = time.perf_counter()
        y = conv(x)
        fw.append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        y.backward(g)
        bw.append(time.perf_counter() - t0)
    return min(fw[2:]), min(bw[2:])


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("config", nargs="?", default="112:0.25:32")
    parser.add_argument("--repeats", type=int, default=15)
    parser.add_argument("--torch", action="store_true", help="time each convolution in PyTorch too")
    args = parser.parse_args(argv)
    torch = None
    if args.torch:
        import torch
    size, width, batch, head, _ = parse_config(args.config)
    model = reduced_fast_yolo(size, width, head=head)
    x = np.random.default_rng(0).random((batch, 3, size, size), dtype=np.float32)
    rows, t_loss, t_sgd = profile(model, x, random_targets(batch, model.S, model.C), args.repeats)
    print(f"{args.config}: {os.cpu_count()} cores, load {os.getloadavg()[0]:.2f}; ms per step, mean of {args.repeats}")
    print(f"{'#':>2} {'layer':<52} {'fwd ms':>7} {'bwd ms':>7} {'GFLOP/s':>8}" + (f" {'torch fwd+bwd ms':>17}" if torch else ""))
    in_shape = x.shape
    for i, (layer, (f, b, shape)) in enumerate(zip(model.layers, rows)):
        line = f"{i:>2} {repr(layer)[:52]:<52} {f * 1e3:>7.2f} {b * 1e3:>7.2f}"
        if isinstance(layer, Conv2d):
            flops = conv_flops(layer, shape) * (3 if layer.need_input_grad else 2)
            line += f" {flops / (f + b) / 1e9:>8.0f}"
            if torch:
                tf, tb = torch_conv_seconds(torch, layer, in_shape, args.repeats)
                line += f" {(tf + tb) * 1e3:>8.2f} ({flops / (tf + tb) / 1e9:.0f} GFLOP/s)"
        print(line)
        in_shape = shape
    total = sum(f + b for f, b, _ in rows) + t_loss + t_sgd
    print(f"loss {t_loss * 1e3:.2f} ms, SGD {t_sgd * 1e3:.2f} ms; step {total * 1e3:.1f} ms")


if __name__ == "__main__":
    main()
