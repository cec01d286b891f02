"""How fast the reduced Fast YOLO learns with its fully connected head, against a 1×1
convolutional head on the same convolutions, on the built-in dataset (CPU).

    python benchmarks/head_study.py                    # both heads, 8 epochs each
    python benchmarks/head_study.py --heads fc --epochs 4

Why this exists: `minidet train`'s default run (issue 3) stays far below its mAP target,
and the question is whether the convolutions or the head are what learns slowly. Both
runs below share everything but the head: `reduced_fast_yolo(112, 0.25)`'s convolutions
and initial weights, the data and its augmentations, `YoloLoss(lambda_coord=1)`, SGD
(momentum 0.9, decay 5e-4), the same warm-up + cosine schedule, and no pretraining.

- `fc`: the model as it is (Flatten → Linear 12544→256 → Linear 256→1024 + leaky →
  Dropout → Linear 1024→S·S·30): every cell's outputs have their own weights.
- `conv`: `reduced_fast_yolo(..., head="conv")`: the convolutions, then one 1×1
  convolution to 5B + C channels, read as the (N, S, S, 5B + C) grid: one set of weights
  shared by the 49 cells (YOLO v2's head, not v1's), so every object in every image
  teaches the same weights.

It prints the validation mAP@0.5 (all-point) after each epoch. A learning study, not a
test: it takes about 20 s per epoch per head on a 2-core CPU.
"""
from __future__ import annotations

import argparse
import math
import os
import sys
import time
from functools import partial

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))
import minidet  # noqa: E402,F401  (first: passive BLAS/OpenMP waiting, before NumPy loads)

from minidet.boxes import encode_targets  # noqa: E402
from minidet.data import BatchLoader, VOCDataset, builtin_dataset  # noqa: E402
from minidet.inference import evaluate_loader  # noqa: E402
from minidet.loss import YoloLoss  # noqa: E402
from minidet.models import reduced_fast_yolo  # noqa: E402
from minidet.optim import SGD, WarmupCosineLR  # noqa: E402


def run(head: str, epochs: int, lr: float, warmup_epochs: float, seed: int, log=print) -> list[float]:
    root = builtin_dataset()
    train_set = VOCDataset(root, "train", cache_images=True)
    val_set = VOCDataset(root, "val", classes=train_set.classes, cache_images=True)
    # The trunk's layers are drawn first from the seed's generator: the same initial
    # convolutions under either head.
    net = model = reduced_fast_yolo(112, 0.25, C=len(train_set.classes), seed=seed, head=head)
    target_fn = partial(encode_targets, S=model.S, C=model.C)
    loader = BatchLoader(train_set, 32, 112, augment=True, shuffle=True, drop_last=True, seed=seed,
                         target_fn=target_fn, workers=2)
    val_loader = BatchLoader(val_set, 50, 112, workers=2)
    steps = len(loader) * epochs
    schedule = WarmupCosineLR(lr, lr / 100, int(warmup_epochs * len(loader)), steps, final_lr=lr / 100)
    opt = SGD(net, lr=schedule(0))
    loss_fn = YoloLoss(S=model.S, B=model.B, C=model.C, lambda_coord=1.0)
    maps, step, t0 = [], 0, time.perf_counter()
    net.train()
    try:
        for epoch in range(epochs):
            total = cls = 0.0
            for batch in loader:
                opt.lr = schedule(step)
                value = loss_fn.forward(net.forward(batch.images), batch.targets)
                if not math.isfinite(value):
                    raise SystemExit(f"{head}: the loss became {value} at step {step}")
                net.backward(loss_fn.backward())
                opt.step()
                step += 1
                total, cls = total + value, cls + loss_fn.components["cls"]
            result, _, _ = evaluate_loader(net, val_loader)
            maps.append(result["mAP"])
            log(f"{head:>4} head, epoch {epoch + 1}/{epochs}: loss {total / len(loader):.3f} "
                f"(cls {cls / len(loader):.3f}), val mAP@0.5 {result['mAP']:.3f}, "
                f"{time.perf_counter() - t0:.0f} s")
    finally:
        loader.close()
        val_loader.close()
    return maps


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--heads", default="fc,conv", help="comma-separated: fc, conv")
    parser.add_argument("--epochs", type=int, default=8)
    parser.add_argument("--lr", type=float, default=1e-2)
    parser.add_argument("--warmup-epochs", type=float, default=2.0)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    results = {}
    for head in args.heads.split(","):
        if head not in ("fc", "conv"):
            parser.error(f"--heads: unknown head {head!r} (fc, conv)")
        results[head] = run(head, args.epochs, args.lr, args.warmup_epochs, args.seed)
    print("\nval mAP@0.5 per epoch")
    for head, maps in results.items():
        print(f"{head:>4}: " + " ".join(f"{m:.3f}" for m in maps))


if __name__ == "__main__":
    main()
