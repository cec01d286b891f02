"""CPU timings of minidet against PyTorch on the same machine, in one run.

    python benchmarks/bench_cpu.py                  # conv stack, training step, loader: every config
    python benchmarks/bench_cpu.py --what stack     # forward+backward of Fast YOLO's conv/leaky/pool stack
    python benchmarks/bench_cpu.py --what step      # a whole training step (forward, loss, backward, SGD)
    python benchmarks/bench_cpu.py --what loader    # loader images/s against training-step images/s
    python benchmarks/bench_cpu.py --configs 112:0.25:32:conv   # the default model of minidet train

Configs are input:width:batch[:head] of `reduced_fast_yolo` (head fc, Fast YOLO's, unless
given; the stack timing skips configs with a head). PyTorch (optional, never a
dependency) runs the same layers with the same weights when it imports; the script
prints minidet's median time, PyTorch's, and their ratio. The two sides alternate in
blocks with a pause between them (OpenBLAS and OpenMP threads spin after a product and
slow whoever runs next on 2 cores), and medians of the blocks are reported.

With `--torch-subprocess` PyTorch runs instead in a process of its own, imported before
minidet, with its default thread settings (as its users run it); minidet's blocks run
first, then PyTorch's. In the same process PyTorch runs under minidet's passive-wait
settings, which slow it more than they slow minidet.
"""
from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import time

if __name__ == "__main__" and "--torch-worker" in sys.argv:
    # PyTorch as its users run it: imported first, so its OpenMP starts with its own
    # defaults, before minidet sets passive waiting (which only acts on libraries loaded later).
    import torch  # noqa: F401

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))
import minidet  # noqa: E402,F401  (first: minidet.THREAD_POLICY, passive BLAS/OpenMP waiting, before NumPy loads)
import numpy as np  # noqa: E402

from minidet.layers import Conv2d, LeakyReLU, MaxPool2d, Sequential  # noqa: E402
from minidet.loss import YoloLoss  # noqa: E402
from minidet.models import reduced_fast_yolo  # noqa: E402
from minidet.optim import SGD  # noqa: E402
from minidet.timing import time_call  # noqa: E402


def conv_stack(model):
    """The model's Conv/LeakyReLU/MaxPool prefix (everything before Flatten), as a Sequential."""
    layers = []
    for layer in model.layers:
        if not isinstance(layer, (Conv2d, LeakyReLU, MaxPool2d)):
            break
        layers.append(layer)
    return Sequential(*layers)


def torch_twin(layers, torch):
    """The same layers in PyTorch, sharing the weights (parameter layouts are the same)."""
    from minidet.layers import Dropout, Flatten, Linear, Permute, Reshape

    class TorchPermute(torch.nn.Module):
        def __init__(self, axes):
            super().__init__()
            self.axes = axes

        def forward(self, x):
            return x.permute(*self.axes).contiguous()

    mods = []
    for layer in layers:
        if isinstance(layer, Conv2d):
            m = torch.nn.Conv2d(layer.in_channels, layer.out_channels, layer.kernel_size, layer.stride, layer.padding)
        elif isinstance(layer, Linear):
            m = torch.nn.Linear(layer.in_features, layer.out_features)
        elif isinstance(layer, LeakyReLU):
            m = torch.nn.LeakyReLU(layer.negative_slope)
        elif isinstance(layer, MaxPool2d):
            m = torch.nn.MaxPool2d(layer.kernel_size, layer.stride)
        elif isinstance(layer, Flatten):
            m = torch.nn.Flatten()
        elif isinstance(layer, Dropout):
            m = torch.nn.Dropout(layer.p)
        elif isinstance(layer, Reshape):
            m = torch.nn.Unflatten(1, layer.shape)
        elif isinstance(layer, Permute):
            m = TorchPermute(layer.axes)
        else:
            raise TypeError(type(layer).__name__)
        if layer.params:
            with torch.no_grad():
                m.weight.copy_(torch.from_numpy(layer.params["W"]))
                m.bias.copy_(torch.from_numpy(layer.params["b"]))
        mods.append(m)
    return torch.nn.Sequential(*mods)


def yolo_loss_torch(torch, pred, target, S=7, B=2, C=20, l_coord=5.0, l_noobj=0.5):
    """The contract's YOLO loss in PyTorch (for timing: same arithmetic volume as ours)."""
    N = pred.shape[0]
    boxes = pred[..., : 5 * B].reshape(N, S, S, B, 5)
    obj = target[..., 4:5]
    with torch.no_grad():
        j = torch.arange(S).view(1, 1, S, 1)
        i = torch.arange(S).view(1, S, 1, 1)
        px, py = (boxes[..., 0] + j) / S, (boxes[..., 1] + i) / S
        pw, ph = boxes[..., 2] ** 2, boxes[..., 3] ** 2
        tx, ty = (target[..., 0:1] + j[..., 0:1]) / S, (target[..., 1:2] + i[..., 0:1]) / S
        tw, th = target[..., 2:3], target[..., 3:4]
        iw = (torch.minimum(px + pw / 2, tx + tw / 2) - torch.maximum(px - pw / 2, tx - tw / 2)).clamp(min=0)
        ih = (torch.minimum(py + ph / 2, ty + th / 2) - torch.maximum(py - ph / 2, ty - th / 2)).clamp(min=0)
        inter = iw * ih
        iou = inter / (pw * ph + tw * th - inter + 1e-12)
        resp = torch.nn.functional.one_hot(iou.argmax(-1), B).to(pred.dtype) * obj
    t = torch.stack([target[..., 0], target[..., 1], target[..., 2].sqrt(), target[..., 3].sqrt()], -1)
    coord = (resp.unsqueeze(-1) * (boxes[..., :4] - t.unsqueeze(3)) ** 2).sum()
    conf = boxes[..., 4]
    obj_l = (resp * (conf - iou) ** 2).sum()
    noobj = ((1 - resp) * conf**2).sum()
    cls = (obj * (pred[..., 5 * B:] - target[..., 5:]) ** 2).sum()
    return (l_coord * coord + obj_l + l_noobj * noobj + cls) / N


def random_targets(N, S=7, C=20, seed=0):
    rng = np.random.default_rng(seed)
    t = np.zeros((N, S, S, 5 + C), np.float32)
    obj = rng.random((N, S, S)) < 0.1
    t[..., 0:2] = rng.random((N, S, S, 2))
    t[..., 2:4] = rng.uniform(0.05, 0.8, (N, S, S, 2))
    t[..., 4] = obj
    t[..., 5:] = rng.integers(0, C, (N, S, S))[..., None] == np.arange(C)  # one-hot
    t[~obj] = 0
    return t


def median_ms(fn, repeats):
    return 1e3 * time_call(fn, "cpu", repeats, warmup=0)


def run_config(input_size, width, batch, what, blocks, repeats, torch, head="fc", ours_too=True):
    model = reduced_fast_yolo(input_size, width, head=head)
    x = np.random.default_rng(0).random((batch, 3, input_size, input_size), dtype=np.float32)
    if what == "stack":
        net = conv_stack(model)
        dy = np.random.default_rng(1).standard_normal(net.output_shape(x.shape)).astype(np.float32)

        def ours():
            net.forward(x)
            net.backward(dy)
    else:
        net, loss, opt = model, YoloLoss(), SGD(model, lr=1e-4)
        target = random_targets(batch)

        def ours():
            loss.forward(net.forward(x), target)
            net.backward(loss.backward())
            opt.step()

    theirs = None
    if torch is not None:
        tnet = torch_twin(net.layers, torch)
        tx = torch.from_numpy(x)
        if what == "stack":
            tdy = torch.from_numpy(dy)

            def theirs():  # the input needs no gradient on either side
                out = tnet(tx)
                out.backward(tdy)
        else:
            topt = torch.optim.SGD(tnet.parameters(), lr=1e-4, momentum=0.9, weight_decay=5e-4)
            ttarget = torch.from_numpy(target)

            def theirs():
                topt.zero_grad(set_to_none=True)
                yolo_loss_torch(torch, tnet(tx), ttarget).backward()
                topt.step()

    if ours_too:
        ours(), ours()  # warm-up: Numba compilation, allocator
    if theirs:
        theirs(), theirs()
    ours_ms, theirs_ms = [], []
    for _ in range(blocks):
        if ours_too:
            ours_ms.append(median_ms(ours, repeats))
            time.sleep(0.3)
        if theirs:
            theirs_ms.append(median_ms(theirs, repeats))
            time.sleep(0.3)
    a = statistics.median(ours_ms) if ours_ms else None
    b = statistics.median(theirs_ms) if theirs_ms else None
    return a, b


def torch_in_subprocess(cfg: str, what: str, blocks: int, repeats: int):
    """PyTorch's median ms for `cfg` from a process of its own (see the module docstring)."""
    import json
    import subprocess

    out = subprocess.run([sys.executable, __file__, "--torch-worker", "--what", what, "--configs", cfg,
                          "--blocks", str(blocks), "--repeats", str(repeats)],
                         capture_output=True, text=True, check=True).stdout
    result = json.loads(out.strip().splitlines()[-1])
    return result["ms"], result["threads"]


def loader_rate(input_size, batch, batches=20, workers=2):
    """Images per second the augmenting loader delivers on its own (the model not running)."""
    from functools import partial

    from minidet.boxes import encode_targets
    from minidet.data import BatchLoader, VOCDataset, builtin_dataset

    dataset = VOCDataset(builtin_dataset(), "train", cache_images=True)
    with BatchLoader(dataset, batch, input_size, augment=True, shuffle=True, drop_last=True,
                     target_fn=partial(encode_targets, S=7, C=len(dataset.classes)), workers=workers) as loader:
        it = iter(loader)
        for _ in range(3):  # warm-up: decode (and cache) the first images
            next(it)
        t0 = time.perf_counter()
        for _ in range(batches):
            next(it)
        return batches * batch / (time.perf_counter() - t0)


def parse_config(cfg: str):
    """"input:width:batch[:head]" → (input, width, batch, head, head given); head fc unless given."""
    size, width, batch, *head = cfg.split(":")
    return int(size), float(width), int(batch), (head[0] if head else "fc"), bool(head)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--what", choices=["stack", "step", "loader", "all"], default="all")
    parser.add_argument("--configs", nargs="+", default=["112:0.25:32:conv", "112:0.25:32", "224:0.5:16"],
                        help="input:width:batch[:head], head fc (the default) or conv")
    parser.add_argument("--blocks", type=int, default=5)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--no-torch", action="store_true")
    parser.add_argument("--torch-subprocess", action="store_true",
                        help="time PyTorch in its own process with its default thread settings")
    parser.add_argument("--torch-worker", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.torch_worker:  # one config, PyTorch only, its median ms as the last line
        import json

        import torch

        size, width, batch, head, _ = parse_config(args.configs[0])
        _, b = run_config(size, width, batch, args.what, args.blocks, args.repeats, torch, head=head, ours_too=False)
        print(json.dumps({"ms": b, "threads": torch.get_num_threads()}))
        return
    torch = None
    if not args.no_torch and not args.torch_subprocess:
        try:
            import torch

            torch.set_num_threads(os.cpu_count() or 1)
        except ImportError:
            print("PyTorch is not installed: timing minidet alone (pip install torch==2.13.0 for the reference)")
    print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores; numpy {np.__version__}; "
          f"torch {torch.__version__ if torch else ('own process' if args.torch_subprocess else '-')}; "
          f"MALLOC_ARENA_MAX={os.environ.get('MALLOC_ARENA_MAX', '-')}, "
          f"OPENBLAS_THREAD_TIMEOUT={os.environ.get('OPENBLAS_THREAD_TIMEOUT')}")
    whats = ["stack", "step", "loader"] if args.what == "all" else [args.what]
    print(f"{'what':<6} {'input:width:batch':<18} {'minidet ms':>11} {'torch ms':>9} {'ratio':>6}")
    for what in whats:
        if what == "loader":
            for cfg in args.configs:
                size, width, batch, head, _ = parse_config(cfg)
                step_ms, _ = run_config(size, width, batch, "step", 2, args.repeats, None, head=head)
                rate = loader_rate(size, batch)
                print(f"loader {cfg:<18} loader {rate:.0f} images/s alone; the training step consumes "
                      f"{batch / step_ms * 1e3:.0f} images/s (loader/step = {rate * step_ms / 1e3 / batch:.1f}×)",
                      flush=True)
            continue
        for cfg in args.configs:
            size, width, batch, head, head_given = parse_config(cfg)
            if what == "stack" and head_given:  # the convolutions alone: the head does not matter
                continue
            a, b = run_config(size, width, batch, what, args.blocks, args.repeats, torch, head=head)
            if args.torch_subprocess:
                b, threads = torch_in_subprocess(cfg, what, args.blocks, args.repeats)
                cfg = f"{cfg} (torch: {threads} thr)"
            ratio = f"{a / b:.2f}" if b else "-"
            print(f"{what:<6} {cfg:<18} {a:>11.1f} {b if b is None else round(b, 1)!s:>9} {ratio:>6}", flush=True)


if __name__ == "__main__":
    main()
