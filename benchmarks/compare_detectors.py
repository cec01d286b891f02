"""YOLO against SSD (and the two-stage detectors) on one machine, in one run: test mAP@0.5
overall and by object size, inference images/s, training step ms, parameters and FLOPs
(logic: `minidet.compare`).

    python benchmarks/compare_detectors.py --yolo runs/A/best.npz --ssd runs/B/best.npz [--data ROOT]
        [--faster runs/C/best.npz] [--fast-rcnn runs/D/best.npz] [--rcnn runs/E/best.npz]

The two-stage rows appear when their checkpoints are given (they are not trained here); their
times include selective search for Fast R-CNN and R-CNN (computed again for each timed
batch), and they have no FLOPs figure (their cost grows with the proposals).

Each detector is loaded from a checkpoint of `minidet train` (--model reduced, --model ssd);
without one, it is trained first with `minidet train`'s defaults (about 10 minutes each on a
2-core CPU). Prints a Markdown table. Times are medians of --repeats runs of a batch of 32
on this machine, the two detectors measured one after the other in the same run.
"""
from __future__ import annotations

import argparse
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))
import minidet  # noqa: E402,F401  (first: passive BLAS/OpenMP waiting, before NumPy loads)

from minidet.compare import compare, format_table  # noqa: E402
from minidet.data import BatchLoader, VOCDataset  # noqa: E402
from minidet.models import load_checkpoint  # noqa: E402
from minidet.train import TrainConfig, dataset_root, loss_and_targets, train  # noqa: E402


def detector(weights, model_kind, data):
    """(model, loss_fn, target_fn) from a checkpoint, or from a fresh default run."""
    if weights is None:
        result = train(TrainConfig(data=data, model=model_kind), progress=False)
        weights = os.path.join(result["run_dir"], "best.npz")
    model, meta = load_checkpoint(weights)
    config = TrainConfig(**{k: v for k, v in meta.get("config", {}).items() if k in TrainConfig.__dataclass_fields__})
    loss_fn, target_fn = loss_and_targets(config, model)
    return model, loss_fn, target_fn


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--yolo", help="checkpoint of minidet train --model reduced (default: train one)")
    parser.add_argument("--ssd", help="checkpoint of minidet train --model ssd (default: train one)")
    for name, kind in (("--faster", "faster"), ("--fast-rcnn", "fast-rcnn"), ("--rcnn", "rcnn")):
        parser.add_argument(name, help=f"checkpoint of minidet train --model {kind} (optional: a row when given)")
    parser.add_argument("--data", default=None, help="VOC-layout root (default: the built-in dataset)")
    parser.add_argument("--split", default="test")
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args(argv)
    models = {"YOLO (reduced Fast YOLO, conv head)": detector(args.yolo, "reduced", args.data),
              "SSD (ssd_lite)": detector(args.ssd, "ssd", args.data)}
    for label, kind, weights in (("Faster R-CNN", "faster", args.faster), ("Fast R-CNN (selective search)", "fast-rcnn",
                                 args.fast_rcnn), ("R-CNN (selective search)", "rcnn", args.rcnn)):
        if weights:
            models[label] = detector(weights, kind, args.data)
    sizes = {m.input_size for m, _, _ in models.values()}
    if len(sizes) != 1:
        sys.exit(f"compare_detectors: the detectors take different input sizes {sorted(sizes)}")
    root = dataset_root(TrainConfig(data=args.data))
    test_set = VOCDataset(root, args.split, cache_images=True)
    train_set = VOCDataset(root, "train")
    with BatchLoader(test_set, 32, sizes.pop(), workers=2) as loader, \
            BatchLoader(train_set, 32, loader.input_size, augment=True, workers=1) as train_loader:
        rows = compare(models, loader, next(iter(train_loader)), repeats=args.repeats)
    print(f"{args.split} split of {root} ({len(test_set)} images); times on this machine, batch 32")
    print(format_table(rows))


if __name__ == "__main__":
    main()
