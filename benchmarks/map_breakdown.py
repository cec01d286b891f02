"""Where a trained model loses mAP: by object size, by localisation, by class.

    python benchmarks/map_breakdown.py runs/<run>/best.npz [--data ROOT] [--split test]

Prints, on the split (default: the built-in dataset's test split), the figures of
`minidet.breakdown` (mAP per object size band, class-agnostic AP, the class of the
objects that a detection covers).
"""
from __future__ import annotations

import argparse
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))
import minidet  # noqa: E402,F401  (first: passive BLAS/OpenMP waiting, before NumPy loads)

from minidet.breakdown import breakdown, describe_breakdown  # noqa: E402
from minidet.data import BatchLoader, VOCDataset, builtin_dataset  # noqa: E402
from minidet.inference import evaluate_loader  # noqa: E402
from minidet.models import load_checkpoint  # noqa: E402


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("weights")
    parser.add_argument("--data", default=None, help="VOC-layout root (default: the built-in dataset)")
    parser.add_argument("--split", default="test")
    args = parser.parse_args(argv)
    model, meta = load_checkpoint(args.weights)
    root = args.data or builtin_dataset()
    dataset = VOCDataset(root, args.split, classes=meta.get("classes"))
    with BatchLoader(dataset, 50, model.input_size, workers=2) as loader:
        _, detections, truths = evaluate_loader(model, loader)
    print(describe_breakdown(breakdown(detections, truths, model.C), args.split))


if __name__ == "__main__":
    main()
