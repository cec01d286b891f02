"""How fast the reduced Fast YOLO learns with its fully connected head, against a 1×1
convolutional head on the same convolutions, on the built-in dataset (CPU).

    python benchmarks/head_study.py                    # both heads, 8 epochs each
    python benchmarks/head_study.py --heads fc --epochs 4

Why this exists: `minidet train`'s default run (issue 3) stayed far below its mAP target,
and the question was whether the convolutions or the head learn slowly. The study itself
(what the two runs share, what differs) is `minidet.course.head_study`.
"""
from __future__ import annotations

import argparse
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))
import minidet  # noqa: E402,F401  (first: passive BLAS/OpenMP waiting, before NumPy loads)

from minidet.course.head_study import HEADS, describe_head_study, head_run  # noqa: E402
from minidet.train import TrainConfig  # noqa: E402


def main(argv=None):
    d = TrainConfig()
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--heads", default=",".join(HEADS), help=f"comma-separated: {', '.join(HEADS)}")
    parser.add_argument("--epochs", type=int, default=8)
    parser.add_argument("--lr", type=float, default=d.lr)
    parser.add_argument("--warmup-epochs", type=float, default=d.warmup_epochs)
    parser.add_argument("--seed", type=int, default=d.seed)
    args = parser.parse_args(argv)
    heads = args.heads.split(",")
    for head in heads:
        if head not in HEADS:
            parser.error(f"--heads: unknown head {head!r} ({', '.join(HEADS)})")
    results = {head: head_run(head, args.epochs, args.lr, args.warmup_epochs, args.seed) for head in heads}
    print("\n" + describe_head_study(results))


if __name__ == "__main__":
    main()
