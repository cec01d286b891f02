"""The two-stage story in numbers: test mAP@0.5, inference milliseconds per image and the error
analysis (`minidet.analysis`) of trained checkpoints of any families, measured one after the
other in one run.

    python benchmarks/two_stage_speed.py A/best.npz B/best.npz ... [--data ROOT] [--split test]

Each checkpoint is loaded fresh and predicts the whole split once, in batches of 32, timed
from the images to the detections (the loader's work excluded): a Fast R-CNN loaded fresh
has no proposal cached, so its time includes selective search on every image, as it would
on images it has never seen. One pass, no repeats: compare rows of one run only.
"""
from __future__ import annotations

import argparse
import os
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))
import minidet  # noqa: E402,F401  (first: passive BLAS/OpenMP waiting, before NumPy loads)

from minidet.analysis import CATEGORIES, analyze, class_groups  # noqa: E402
from minidet.data import BatchLoader, open_dataset  # noqa: E402
from minidet.data.synth import builtin_dataset  # noqa: E402
from minidet.eval import evaluate  # noqa: E402
from minidet.inference import EVAL_SCORE_THRESHOLD, predict  # noqa: E402
from minidet.models import load  # noqa: E402


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("weights", nargs="+", help="checkpoints (.npz) of minidet train, any --model")
    p.add_argument("--data", help="dataset root (default: the built-in dataset)")
    p.add_argument("--split", default="test")
    args = p.parse_args(argv)
    root = args.data or builtin_dataset()
    dataset = open_dataset(root, args.split)
    groups = class_groups(dataset.classes, root)
    print(f"{args.split} split of {root} ({len(dataset)} images), batch 32, one pass each")
    print("| checkpoint | architecture | test mAP@0.5 | ms/image | " + " | ".join(CATEGORIES) + " |")
    print("|---" * (4 + len(CATEGORIES)) + "|")
    for path in args.weights:
        model = load(path)
        with BatchLoader(dataset, 32, model.input_size, workers=1) as loader:
            batches = list(loader)
        t0 = time.perf_counter()
        detections = [d for b in batches for d in predict(model, b.images, score_threshold=EVAL_SCORE_THRESHOLD)]
        seconds = time.perf_counter() - t0
        truths = [t for b in batches for t in zip(b.boxes, b.labels, b.difficult)]
        mAP = evaluate(detections, truths, num_classes=model.C)["mAP"]
        errors = analyze(detections, truths, groups)
        print(f"| {path} | {model.arch['name']} | {mAP:.3f} | {1000 * seconds / len(dataset):.1f} | "
              + " | ".join(f"{errors['percent'][k]:.1f} %" for k in CATEGORIES) + " |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
