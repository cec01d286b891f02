"""The head study: how fast the reduced Fast YOLO learns with its fully connected head,
against a 1×1 convolutional head on the same convolutions, on the built-in dataset (CPU).

Both runs share everything but the head: `reduced_fast_yolo(112, 0.25)`'s convolutions and
initial weights, the data and its augmentations, `YoloLoss(lambda_coord=1)`, SGD
(momentum 0.9, decay 5e-4), the same warm-up + cosine schedule, and no pretraining.

- `fc`: Flatten → Linear 12544→256 → Linear 256→1024 + leaky → Dropout → Linear
  1024→S·S·30: every cell's outputs have their own weights.
- `conv`: `reduced_fast_yolo(..., head="conv")`: the convolutions, then one 1×1
  convolution to 5B + C channels, read as the (N, S, S, 5B + C) grid: one set of weights
  shared by the 49 cells (YOLO v2's head, not v1's), so every object in every image
  teaches the same weights.

Each run is `minidet.train.train` with those settings, its files in a temporary directory.
`benchmarks/head_study.py` is its command line. A learning study, not a test: about 20 s
per epoch per head on a 2-core CPU.
"""
from __future__ import annotations

import json
import tempfile
from pathlib import Path

from ..train import TrainConfig, train

HEADS = ("fc", "conv")


def head_run(head: str, epochs: int, lr: float, warmup_epochs: float, seed: int, log=print) -> list[float]:
    """`minidet train` on the built-in dataset with `head`, no pretraining and lambda_coord 1,
    its run directory thrown away; returns the validation mAP@0.5 after each epoch. The
    trunk's layers are drawn first from the seed's generator: the same initial convolutions
    under either head. `log` gets each epoch's line, prefixed with the head."""
    if head not in HEADS:
        raise ValueError(f"head_run: unknown head {head!r} (one of {', '.join(HEADS)})")
    with tempfile.TemporaryDirectory(prefix=f"head-study-{head}-") as out:
        config = TrainConfig(head=head, epochs=epochs, lr=lr, warmup_epochs=warmup_epochs, seed=seed,
                             pretrain_epochs=0.0, lambda_coord=1.0, device="cpu", out=out)
        train(config, log=lambda line: log(f"{head:>4} head, {line}") if line.startswith("epoch") else None,
              progress=False)
        history = json.loads((Path(out) / "metrics.json").read_text())["history"]
        return [record["val_mAP"] for record in history]


def describe_head_study(results: dict) -> str:
    """{head: [val mAP per epoch]} as the table the script prints."""
    return "\n".join(["val mAP@0.5 per epoch"] +
                     [f"{head:>4}: " + " ".join(f"{m:.3f}" for m in maps) for head, maps in results.items()])
