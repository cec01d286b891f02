"""Where a trained model loses mAP: by object size, by localisation, by class.

    python benchmarks/map_breakdown.py runs/<run>/best.npz [--data ROOT] [--split test]

Prints, on the split (default: the built-in dataset's test split):
- mAP@0.5 (all-point), and mAP@0.5 counting only the objects of one size band at a
  time (the others are marked "difficult": detections on them are neither true nor false);
  size = sqrt(w·h) of the true box, as a fraction of the image side;
- the class-agnostic AP@0.5 (every label set to one class): how well the model finds
  and places objects, whatever it calls them;
- of the true objects that some detection (score > 0.05) covers at IoU ≥ 0.5, the
  fraction whose best-covering detection has the right class.
"""
from __future__ import annotations

import argparse
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))
import minidet  # noqa: E402,F401  (first: passive BLAS/OpenMP waiting, before NumPy loads)
import numpy as np  # noqa: E402

from minidet.boxes import box_iou  # noqa: E402
from minidet.compare import map_by_size  # noqa: E402
from minidet.data import BatchLoader, VOCDataset, builtin_dataset  # noqa: E402
from minidet.eval import evaluate  # noqa: E402
from minidet.inference import evaluate_loader  # noqa: E402
from minidet.models import load_checkpoint  # noqa: E402

SIZE_BANDS = (0.0, 0.15, 0.25, 0.40, 1.01)


def breakdown(detections, truths, num_classes: int) -> dict:
    """Figures of the module docstring from `evaluate_loader`'s detections and truths."""
    out = {"mAP": evaluate(detections, truths, num_classes=num_classes)["mAP"],
           "by_size": map_by_size(detections, truths, num_classes, SIZE_BANDS)}
    agnostic_d = [(b, s, np.zeros_like(lab)) for b, s, lab in detections]
    agnostic_t = [(b, np.zeros_like(lab), d) for b, lab, d in truths]
    out["class_agnostic_AP"] = evaluate(agnostic_d, agnostic_t, num_classes=1)["mAP"]
    covered = right = total = 0
    for (tb, tl, _), (db, ds, dl) in zip(truths, detections):
        keep = ds > 0.05
        db, dl = db[keep], dl[keep]
        total += len(tb)
        if len(db) == 0:
            continue
        iou = box_iou(tb, db)
        for k in range(len(tb)):
            j = int(iou[k].argmax())
            if iou[k, j] >= 0.5:
                covered += 1
                right += int(dl[j] == tl[k])
    out["covered"] = covered / max(total, 1)
    out["class_right_when_covered"] = right / max(covered, 1)
    return out


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
    r = breakdown(detections, truths, model.C)
    print(f"{args.split} mAP@0.5: {r['mAP']:.3f}")
    for lo, hi, count, m in r["by_size"]:
        print(f"  objects of size [{lo:.2f}, {hi:.2f}) of the image side: {count:4d}, mAP@0.5 {m:.3f}")
    print(f"class-agnostic AP@0.5: {r['class_agnostic_AP']:.3f}")
    print(f"objects covered at IoU >= 0.5 by a detection scoring > 0.05: {r['covered']:.2f}; "
          f"its class right: {r['class_right_when_covered']:.2f}")


if __name__ == "__main__":
    main()
