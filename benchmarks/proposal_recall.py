"""Proposal quality: recall at IoU 0.5 and 0.7 against the number of proposals per image,
and the time per image, for selective search and for sliding windows.

    python benchmarks/proposal_recall.py [--data ROOT] [--split test] [--images 50]

Recall at n: the fraction of true boxes that one of an image's first n proposals covers at
IoU ≥ t (`minidet.proposals.recall_study`). The time is the proposal method alone, one image
at a time on one process; the first image of each method is run once before timing (Numba
compiles or loads its cache then).
"""
from __future__ import annotations

import argparse
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))
import minidet  # noqa: E402,F401  (first: passive BLAS/OpenMP waiting, before NumPy loads)

from minidet.data import VOCDataset, builtin_dataset  # noqa: E402
from minidet.proposals import recall_study, selective_search, sliding_windows  # noqa: E402

COUNTS = (10, 25, 50, 100, 200, 500, 1000, 2000)
METHODS = {
    "selective search": selective_search,
    "sliding windows": lambda image: sliding_windows(image.shape[1], image.shape[0]),
}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", help="a VOC-layout dataset (default: the built-in one)")
    parser.add_argument("--split", default="test")
    parser.add_argument("--images", type=int, default=50, help="the first N images of the split (0: all)")
    args = parser.parse_args(argv)
    dataset = VOCDataset(args.data or builtin_dataset(), args.split)
    n = len(dataset) if args.images <= 0 else min(args.images, len(dataset))
    samples = [dataset[i] for i in range(n)]
    print(f"{dataset.root} ({args.split}): {n} images")
    print(f"{'method':<18} {'IoU':>4} " + " ".join(f"{c:>6}" for c in COUNTS) + f" {'mean P':>7} {'ms/image':>9}")
    for name, propose in METHODS.items():
        propose(samples[0].image)
        r = recall_study(propose, samples, COUNTS)
        for t, recall in r["recall"].items():
            print(f"{name:<18} {t:>4} " + " ".join(f"{v:>6.3f}" for v in recall)
                  + f" {r['mean_proposals']:>7.0f} {1000 * r['seconds_per_image']:>9.1f}")
    print(f"{r['objects']} objects; recall at n counts each image's first n proposals (all when it has fewer)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
