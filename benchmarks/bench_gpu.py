"""GPU benchmark: minidet's CUDA kernels and a Fast YOLO training step against PyTorch (cuDNN).

    python benchmarks/bench_gpu.py [--batch 64] [--size 448] [--repeats 20] [--tf32 both|off|on]

What it measures, on one device, CUDA events after warm-up, medians:
- each kernel of kernels/ at the shapes of Fast YOLO at 448×448, batch 64, float32, against
  the PyTorch op doing the same work (F.unfold / F.fold for im2col / col2im, leaky_relu and
  its backward, max_pool2d_with_indices and its backward, torch.optim.SGD over the same
  parameter shapes);
- leaky ReLU and max-pool as achieved bandwidth against the measured device-to-device copy
  bandwidth (cupy.copyto of 1 GiB: bytes read + written);
- the YOLO loss (forward and backward) by YoloLoss's two CuPy paths, the fused kernel
  (gpu_path="fused") against the vectorised array code (gpu_path="vectorised"), and the
  fused one against copying the output to the host + the NumPy YoloLoss + copying dpred
  back (wall clock with a device synchronisation: the host is part of what is compared);
- SGD over Fast YOLO's parameters: minidet.optim.SGD (one launch) against one launch per
  parameter array and against torch.optim.SGD(foreach);
- a whole training step of minidet.models.fast_yolo() (forward, fused loss, backward, SGD)
  against the same network in PyTorch (the same fused loss kernel gives PyTorch its dpred,
  so only the network and the optimizer differ), with TF32 off on both sides, then on.
  TF32 is switched by CUPY_TF32 for CuPy (read when CuPy is imported, hence one child
  process per setting) and by torch.backends flags for PyTorch.

Beside each measurement it prints the time benchmarks/gpu_model.py PREDICTS for it on an
H100 SXM or H200 (a roofline from datasheet figures, labelled as a prediction).

Writes benchmarks/results/<device-name>.json and prints a table. With no GPU it says so
and exits with status 0 without measuring anything.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

RESULTS = ROOT / "benchmarks" / "results"
SLOPE = 0.1
# Fast YOLO's nine 3×3 convolutions at 448×448: (in_channels, out_channels, input size).
FAST_YOLO_CONVS = [(3, 16, 448), (16, 32, 224), (32, 64, 112), (64, 128, 56), (128, 256, 28),
                   (256, 512, 14), (512, 1024, 7), (1024, 1024, 7), (1024, 1024, 7)]


# -- timing ---------------------------------------------------------------------------------

def time_cupy(fn, warmup, repeats):
    """Median milliseconds of fn() on CuPy's current stream, by CUDA events."""
    from minidet.timing import time_call

    return 1e3 * time_call(fn, "cuda", repeats, warmup)


def time_torch(fn, warmup, repeats):
    import torch

    for _ in range(warmup):
        fn()
    torch.cuda.synchronize()
    start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
    times = []
    for _ in range(repeats):
        start.record()
        fn()
        end.record()
        end.synchronize()
        times.append(start.elapsed_time(end))
    return statistics.median(times)


def time_wall(fn, warmup, repeats):
    """Median milliseconds by the host clock, the device synchronised around each call."""
    import cupy as cp

    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeats):
        cp.cuda.Device().synchronize()
        t0 = time.perf_counter()
        fn()
        cp.cuda.Device().synchronize()
        times.append((time.perf_counter() - t0) * 1e3)
    return statistics.median(times)


def _torch():
    try:
        import torch
    except ImportError:
        return None
    return torch if torch.cuda.is_available() else None


def _free():
    import cupy as cp

    cp.get_default_memory_pool().free_all_blocks()
    torch = _torch()
    if torch is not None:
        torch.cuda.empty_cache()


def row(name, ours_ms, ref_ms=None, ref_name=None, bytes_moved=None, copy_gbps=None):
    r = {"name": name, "minidet_ms": ours_ms, "reference": ref_name, "reference_ms": ref_ms,
         "ratio_to_reference": (ours_ms / ref_ms) if ref_ms else None}
    if bytes_moved is not None:
        gbps = bytes_moved / (ours_ms * 1e-3) / 1e9
        r.update(bytes_moved=bytes_moved, achieved_GBps=gbps,
                 fraction_of_copy_bandwidth=(gbps / copy_gbps) if copy_gbps else None)
    return r


# -- the measurements ---------------------------------------------------------------------------

def copy_bandwidth(warmup, repeats):
    import cupy as cp

    src = cp.ones(1 << 28, dtype=cp.float32)  # 1 GiB
    dst = cp.empty_like(src)
    ms = time_cupy(lambda: cp.copyto(dst, src), warmup, repeats)
    return 2 * src.nbytes / (ms * 1e-3) / 1e9


def bench_kernels(batch, warmup, repeats, copy_gbps):
    import cupy as cp

    from kernels.im2col import col2im_gpu, im2col_gpu
    from kernels.leaky_relu import leaky_relu_backward_gpu, leaky_relu_forward_gpu
    from kernels.maxpool import maxpool2d_backward_gpu, maxpool2d_forward_gpu
    from kernels.sgd import sgd_update_gpu

    torch = _torch()
    F = torch.nn.functional if torch is not None else None
    rows = []
    rng = cp.random.default_rng(0)

    for c_in, _, size in FAST_YOLO_CONVS:
        x = rng.standard_normal((batch, c_in, size, size), dtype=cp.float32)
        cols = im2col_gpu(x, 3, 1, 1)
        ours = time_cupy(lambda: im2col_gpu(x, 3, 1, 1, out=cols), warmup, repeats)
        ref = None
        if torch is not None:
            xt = torch.from_dlpack(x)
            ref = time_torch(lambda: F.unfold(xt, 3, padding=1), warmup, repeats)
        rows.append(row(f"im2col {c_in}×{size}²", ours, ref, "F.unfold", x.nbytes + cols.nbytes, copy_gbps))
        dx = cp.empty_like(x)
        ours = time_cupy(lambda: col2im_gpu(cols, x.shape, 3, 1, 1, out=dx), warmup, repeats)
        ref = None
        if torch is not None:
            ct = torch.from_dlpack(cols).reshape(c_in * 9, batch, size * size).permute(1, 0, 2).contiguous()
            ref = time_torch(lambda: F.fold(ct, (size, size), 3, padding=1), warmup, repeats)
            del ct
        rows.append(row(f"col2im {c_in}×{size}²", ours, ref, "F.fold", x.nbytes + cols.nbytes, copy_gbps))
        del x, cols, dx
        _free()

    # The largest activation of the network: the first convolution's output.
    x = rng.standard_normal((batch, 16, 448, 448), dtype=cp.float32)
    y = leaky_relu_forward_gpu(x, SLOPE)
    dy = rng.standard_normal(x.shape, dtype=cp.float32)
    dx = cp.empty_like(x)
    xt = yt = dyt = None
    if torch is not None:
        xt, yt, dyt = torch.from_dlpack(x), torch.from_dlpack(y), torch.from_dlpack(dy)
    ours = time_cupy(lambda: leaky_relu_forward_gpu(x, SLOPE, out=y), warmup, repeats)
    ref = time_torch(lambda: F.leaky_relu(xt, SLOPE), warmup, repeats) if torch is not None else None
    rows.append(row("leaky_relu forward 16×448²", ours, ref, "F.leaky_relu", 2 * x.nbytes, copy_gbps))
    ours = time_cupy(lambda: leaky_relu_backward_gpu(y, dy, SLOPE, out=dx), warmup, repeats)
    ref = (time_torch(lambda: torch.ops.aten.leaky_relu_backward(dyt, yt, SLOPE, True), warmup, repeats)
           if torch is not None else None)
    rows.append(row("leaky_relu backward 16×448²", ours, ref, "aten.leaky_relu_backward", 3 * x.nbytes, copy_gbps))

    for k, s in ((2, 2), (3, 2)):
        yp, argmax = maxpool2d_forward_gpu(x, k, s)
        ours = time_cupy(lambda: maxpool2d_forward_gpu(x, k, s, out=yp, argmax_out=argmax), warmup, repeats)
        ref = None
        if torch is not None:
            ref = time_torch(lambda: F.max_pool2d(xt, k, s, return_indices=True), warmup, repeats)
        rows.append(row(f"maxpool k{k}s{s} forward 16×448²", ours, ref, "F.max_pool2d(return_indices)",
                        x.nbytes + yp.nbytes + argmax.nbytes, copy_gbps))
        dyp = rng.standard_normal(yp.shape, dtype=cp.float32)
        ours = time_cupy(lambda: maxpool2d_backward_gpu(dyp, argmax, x.shape, k, s, out=dx), warmup, repeats)
        ref = None
        if torch is not None:
            _, idx = F.max_pool2d(xt, k, s, return_indices=True)
            dypt = torch.from_dlpack(dyp)
            ref = time_torch(lambda: torch.ops.aten.max_pool2d_with_indices_backward(
                dypt, xt, [k, k], [s, s], [0, 0], [1, 1], False, idx), warmup, repeats)
        rows.append(row(f"maxpool k{k}s{s} backward (gather)", ours, ref, "aten.max_pool2d_with_indices_backward",
                        dx.nbytes + dyp.nbytes + argmax.nbytes, copy_gbps))
    del x, y, dy, dx, xt, yt, dyt
    _free()

    # SGD over Fast YOLO's parameter shapes: minidet.optim.SGD (one launch for all of them,
    # after one concatenation of the gradients) against one launch per array, and PyTorch.
    from minidet.optim import SGD

    shapes = [(o, i, 3, 3) for i, o, _ in FAST_YOLO_CONVS] + [(o,) for _, o, _ in FAST_YOLO_CONVS]
    shapes += [(256, 50176), (256,), (4096, 256), (4096,), (1470, 4096), (1470,)]
    ws = [rng.standard_normal(sh, dtype=cp.float32) for sh in shapes]
    gs = [rng.standard_normal(sh, dtype=cp.float32) for sh in shapes]
    vs = [cp.zeros(sh, dtype=cp.float32) for sh in shapes]

    class Params:  # the optimizer's view of a model: named (params, grads, key) entries
        def __init__(self):
            self.params = {f"p{i}": w.copy() for i, w in enumerate(ws)}
            self.grads = {f"p{i}": g for i, g in enumerate(gs)}

        def named_parameters(self):
            for key in self.params:
                yield key, self.params, self.grads, key

    opt = SGD(Params(), lr=1e-3, momentum=0.9, weight_decay=5e-4)

    def per_array():
        for w, g, v in zip(ws, gs, vs):
            sgd_update_gpu(w, g, v, 1e-3, 0.9, 5e-4 if w.ndim > 1 else 0.0)

    n = sum(int(w.size) for w in ws)
    ours = time_cupy(opt.step, warmup, repeats)
    rows.append(row(f"sgd {n / 1e6:.1f}M params (one launch)", ours, time_cupy(per_array, warmup, repeats),
                    f"sgd_update_gpu, {len(ws)} launches", 28 * n, copy_gbps))
    if torch is not None:
        params = [torch.nn.Parameter(torch.from_dlpack(w).clone()) for w in ws]
        for p, g in zip(params, gs):
            p.grad = torch.from_dlpack(g).clone()
        opt_t = torch.optim.SGD(params, lr=1e-3, momentum=0.9, weight_decay=5e-4, foreach=True)
        rows.append(row(f"sgd {n / 1e6:.1f}M params (one launch)", ours, time_torch(opt_t.step, warmup, repeats),
                        "torch.optim.SGD(foreach)", 28 * n, copy_gbps))
    del ws, gs, vs, opt
    _free()
    return rows


def random_targets(batch, S=7, C=20, seed=0):
    import numpy as np

    rng = np.random.default_rng(seed)
    t = np.zeros((batch, S, S, 5 + C), dtype=np.float32)
    obj = rng.random((batch, S, S)) < 0.1
    t[..., :2] = rng.random((batch, S, S, 2))
    t[..., 2:4] = rng.uniform(0.05, 0.8, size=(batch, S, S, 2))
    t[..., 4] = obj
    t[..., 5:] = np.eye(C, dtype=np.float32)[rng.integers(0, C, size=(batch, S, S))]
    t[~obj] = 0
    return t


def bench_loss(batch, warmup, repeats, copy_gbps=None):
    """YoloLoss on CuPy by its two paths (gpu_path="fused" / "vectorised"), forward and
    backward, and the fused path against a round trip through the NumPy loss on the host."""
    import cupy as cp

    from minidet.loss import YoloLoss

    pred = cp.random.default_rng(1).standard_normal((batch, 7, 7, 30), dtype=cp.float32) * 0.5
    target_h = random_targets(batch)
    target = cp.asarray(target_h)
    fused_loss, vectorised_loss = YoloLoss(7, 2, 20, gpu_path="fused"), YoloLoss(7, 2, 20, gpu_path="vectorised")

    def fused():
        fused_loss.forward(pred, target)
        fused_loss.backward()

    def vectorised():
        vectorised_loss.forward(pred, target)
        vectorised_loss.backward()

    def via_host():
        loss = YoloLoss(7, 2, 20)
        loss.forward(cp.asnumpy(pred), target_h)
        cp.asarray(loss.backward())

    # pred, target and dpred, and the (N·S·S, 4) per-cell parts: what the fused kernel moves.
    nbytes = 2 * pred.nbytes + target.nbytes + batch * 49 * 4 * 4
    ours = time_wall(fused, warmup, repeats)
    rows = [row("yolo loss fwd+bwd (fused kernel)", ours, time_wall(vectorised, warmup, repeats),
                "YoloLoss(gpu_path='vectorised') on CuPy", nbytes, copy_gbps)]
    rows.append(row("yolo loss fwd+bwd (fused kernel)", ours, time_wall(via_host, warmup, repeats),
                    "copy to host + NumPy YoloLoss + copy back", nbytes, copy_gbps))
    return rows


def torch_fast_yolo(torch):
    nn = torch.nn
    layers, c_in = [], 3
    for i, (_, c_out, _) in enumerate(FAST_YOLO_CONVS):
        layers += [nn.Conv2d(c_in, c_out, 3, padding=1), nn.LeakyReLU(SLOPE)]
        if i < 6:
            layers.append(nn.MaxPool2d(2))
        c_in = c_out
    layers += [nn.Flatten(), nn.Linear(50176, 256), nn.Linear(256, 4096), nn.LeakyReLU(SLOPE),
               nn.Dropout(0.5), nn.Linear(4096, 7 * 7 * 30)]
    return nn.Sequential(*layers)


def bench_step(batch, size, warmup, repeats):
    """One training step of Fast YOLO: forward, fused loss, backward, SGD."""
    import cupy as cp

    from kernels.yolo_loss import yolo_loss_gpu
    from minidet.models import fast_yolo
    from minidet.optim import SGD

    images = cp.random.default_rng(2).standard_normal((batch, 3, size, size), dtype=cp.float32)
    target = cp.asarray(random_targets(batch))
    model = fast_yolo().to("cuda")
    model.train()
    opt = SGD(model, lr=1e-4, momentum=0.9, weight_decay=5e-4)

    def step():
        pred = model.forward(images)
        _, _, dpred = yolo_loss_gpu(pred, target, 7, 2, 20, 5.0, 0.5)
        model.backward(dpred)
        opt.step()

    ours = time_cupy(step, warmup, repeats)
    ours_fwd = time_cupy(lambda: model.forward(images), warmup, repeats)
    del model, opt
    _free()
    torch = _torch()
    ref = ref_fwd = None
    if torch is not None:
        net = torch_fast_yolo(torch).cuda().train()
        opt_t = torch.optim.SGD(net.parameters(), lr=1e-4, momentum=0.9, weight_decay=5e-4)
        images_t = torch.from_dlpack(images)

        def step_t():
            opt_t.zero_grad(set_to_none=False)
            out = net(images_t)
            pred = cp.from_dlpack(out.detach().reshape(batch, 7, 7, 30))
            _, _, dpred = yolo_loss_gpu(pred, target, 7, 2, 20, 5.0, 0.5)
            out.backward(torch.from_dlpack(dpred).reshape(out.shape))
            opt_t.step()

        ref = time_torch(step_t, warmup, repeats)
        with torch.no_grad():
            ref_fwd = time_torch(lambda: net(images_t), warmup, repeats)
        del net, opt_t
        _free()
    return [row(f"fast_yolo forward {size}² batch {batch}", ours_fwd, ref_fwd, "PyTorch (cuDNN)"),
            row(f"fast_yolo train step {size}² batch {batch}", ours, ref, "PyTorch (cuDNN)")]


# -- driver ---------------------------------------------------------------------------------------

def run_child(args):
    """Measure with TF32 as CUPY_TF32 says (set before CuPy was imported); write JSON."""
    import cupy as cp

    tf32 = os.environ.get("CUPY_TF32", "0") == "1"
    torch = _torch()
    if torch is not None:
        torch.backends.cuda.matmul.allow_tf32 = tf32
        torch.backends.cudnn.allow_tf32 = tf32
        torch.backends.cudnn.benchmark = True
    out = {"tf32": tf32}
    if not tf32:  # the kernels do no matrix products: TF32 changes nothing for them
        out["copy_bandwidth_GBps"] = copy_bandwidth(args.warmup, args.repeats)
        out["kernels"] = bench_kernels(args.batch, args.warmup, args.repeats, out["copy_bandwidth_GBps"])
        out["loss"] = bench_loss(args.batch, args.warmup, args.repeats, out["copy_bandwidth_GBps"])
    out["step"] = bench_step(args.batch, args.size, args.warmup, args.repeats)
    out["device"] = cp.cuda.runtime.getDeviceProperties(cp.cuda.Device().id)["name"].decode()
    Path(args.json_out).write_text(json.dumps(out))


def versions():
    v = {"python": platform.python_version()}
    for name in ("numpy", "numba", "cupy", "torch"):
        try:
            v[name] = __import__(name).__version__
        except Exception:  # noqa: BLE001
            v[name] = None
    return v


def add_predictions(results, model=None):
    """Each row's PREDICTED time from benchmarks/gpu_model.py (datasheet figures, no measurement)
    as `predicted_ms`, beside the measured `minidet_ms`; rows of unmodelled devices get none."""
    import gpu_model

    device = gpu_model.device_for(results["device"])
    results["model_device"] = device
    if device is None:
        return
    spec, config = gpu_model.DEVICES[device], results["config"]
    for section, rows in results["sections"].items():
        tf32 = section.endswith("TF32 on")
        step = None
        for r in rows:
            if r.get("bytes_moved"):
                r["predicted_ms"] = 1e3 * gpu_model.Op(r["name"], r["bytes_moved"]).seconds(spec, tf32)
            elif r["name"].startswith("fast_yolo"):
                step = step or gpu_model.predict_step(device, tf32, config["batch"], config["size"], model=model)
                r["predicted_ms"] = step["forward_ms" if "forward" in r["name"] else "step_ms"]


def print_table(results):
    print(f"\n{results['device']}: batch {results['config']['batch']}, {results['config']['size']}², float32, "
          f"copy bandwidth {results.get('copy_bandwidth_GBps', float('nan')):.0f} GB/s")
    if results.get("model_device"):
        print(f"'pred ms': PREDICTED by benchmarks/gpu_model.py for {results['model_device']} from datasheet "
              f"figures (not measured); 'minidet ms' is the measurement")
    print(f"{'':44s} {'minidet ms':>10s} {'pred ms':>8s} {'ref ms':>9s} {'ratio':>6s} {'GB/s':>7s} {'%copy':>6s}  "
          f"reference")
    for section, rows in results["sections"].items():
        print(f"-- {section}")
        for r in rows:
            ref = f"{r['reference_ms']:9.3f}" if r.get("reference_ms") else f"{'-':>9s}"
            ratio = f"{r['ratio_to_reference']:6.2f}" if r.get("ratio_to_reference") else f"{'-':>6s}"
            gbps = f"{r['achieved_GBps']:7.0f}" if r.get("achieved_GBps") else f"{'':>7s}"
            frac = (f"{100 * r['fraction_of_copy_bandwidth']:5.0f}%" if r.get("fraction_of_copy_bandwidth")
                    else f"{'':>6s}")
            pred = f"{r['predicted_ms']:8.3f}" if r.get("predicted_ms") else f"{'-':>8s}"
            print(f"{r['name']:44s} {r['minidet_ms']:10.3f} {pred} {ref} {ratio} {gbps} {frac}  "
                  f"{r.get('reference') or ''}")


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--batch", type=int, default=64)
    p.add_argument("--size", type=int, default=448)
    p.add_argument("--warmup", type=int, default=3)
    p.add_argument("--repeats", type=int, default=20)
    p.add_argument("--tf32", choices=("both", "off", "on"), default="both")
    p.add_argument("--json-out", help=argparse.SUPPRESS)  # child mode
    args = p.parse_args(argv)
    if args.json_out:
        run_child(args)
        return 0

    from minidet.backend import gpu_available, gpu_unavailable_reason

    if not gpu_available():
        print(f"bench_gpu: no CUDA device ({gpu_unavailable_reason()}); nothing measured. "
              f"`minidet doctor` says what to install.")
        return 0
    if _torch() is None:
        print("bench_gpu: PyTorch with CUDA is not available; measuring minidet only (no reference column).")

    settings = {"both": ("off", "on"), "off": ("off",), "on": ("on",)}[args.tf32]
    results = {"config": {"batch": args.batch, "size": args.size, "warmup": args.warmup, "repeats": args.repeats,
                          "dtype": "float32"}, "versions": versions(), "sections": {}}
    for setting in settings:
        with tempfile.NamedTemporaryFile(suffix=".json", delete=False) as f:
            path = f.name
        env = dict(os.environ, CUPY_TF32="1" if setting == "on" else "0")
        env.pop("NVIDIA_TF32_OVERRIDE", None)
        cmd = [sys.executable, __file__, "--json-out", path, "--batch", str(args.batch), "--size", str(args.size),
               "--warmup", str(args.warmup), "--repeats", str(args.repeats)]
        proc = subprocess.run(cmd, env=env, cwd=ROOT)
        if proc.returncode != 0:
            print(f"bench_gpu: the TF32-{setting} run failed (exit status {proc.returncode})", file=sys.stderr)
            return 1
        child = json.loads(Path(path).read_text())
        os.unlink(path)
        results["device"] = child.pop("device")
        if "copy_bandwidth_GBps" in child:
            results["copy_bandwidth_GBps"] = child.pop("copy_bandwidth_GBps")
        for key in ("kernels", "loss"):
            if key in child:
                results["sections"][key] = child[key]
        results["sections"][f"training step, TF32 {setting}"] = child["step"]

    add_predictions(results)
    RESULTS.mkdir(parents=True, exist_ok=True)
    name = re.sub(r"[^A-Za-z0-9._-]+", "-", results["device"]).strip("-") or "gpu"
    out = RESULTS / f"{name}.json"
    tmp = out.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(results, indent=2))
    os.replace(tmp, out)
    print_table(results)
    print(f"\nwritten to {out.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
