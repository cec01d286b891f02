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

Each run is `minidet.train.train` with those settings (its files go to a temporary
directory). It prints the validation mAP@0.5 (all-point) after each epoch. A learning
study, not a test: it takes about 20 s per epoch per head on a 2-core CPU.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))
import minidet  # noqa: E402,F401  (first: passive BLAS/OpenMP waiting, before NumPy loads)

from minidet.train import TrainConfig, train  # noqa: E402


def run(head: str, epochs: int, lr: float, warmup_epochs: float, seed: int, log=print) -> list[float]:
    """`minidet train` on the built-in dataset with `head`, no pretraining and lambda_coord 1,
    its run directory thrown away; returns the validation mAP after each epoch. The trunk's
    layers are drawn first from the seed's generator: the same initial convolutions under
    either head."""
    with tempfile.TemporaryDirectory(prefix=f"head-study-{head}-") as out:
        config = TrainConfig(head=head, epochs=epochs, lr=lr, warmup_epochs=warmup_epochs, seed=seed,
                             pretrain_epochs=0.0, lambda_coord=1.0, device="cpu", out=out)
        train(config, log=lambda line: log(f"{head:>4} head, {line}") if line.startswith("epoch") else None,
              progress=False)
        history = json.loads((Path(out) / "metrics.json").read_text())["history"]
        return [record["val_mAP"] for record in history]


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
