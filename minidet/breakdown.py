"""Where a detector loses mAP: by object size, by placement, by class.

Inputs are what `inference.evaluate_loader` returns: detections[i] = (boxes (K, 4),
scores (K,), labels (K,)) and truths[i] = (boxes (M, 4), labels (M,), difficult (M,)),
boxes as normalized corners (x1, y1, x2, y2) in [0, 1], one entry per image.

- `map_by_size`: mAP@0.5 counting only the objects of one size band at a time (the others
  are marked difficult, so detections on them are neither true nor false); an object's size
  is sqrt(w·h) of its true box as a fraction of the image side, in the bands SIZE_BANDS
  (< 15 %, 15–25 %, 25–40 %, ≥ 40 %);
- `breakdown`: that, the mAP, the class-agnostic AP@0.5 (every label set to one class: how
  well the model finds and places objects, whatever it calls them), and of the true objects
  some detection scoring above COVER_SCORE covers at IoU ≥ 0.5, the fraction whose
  best-covering detection has the right class.
"""
from __future__ import annotations

import numpy as np

from .boxes import box_iou
from .eval import evaluate

SIZE_BANDS = (0.0, 0.15, 0.25, 0.40, float("inf"))
COVER_SCORE = 0.05   # a detection counts as covering an object above this score


def map_by_size(detections, truths, num_classes: int, bands=SIZE_BANDS):
    """[(lo, hi, number of objects, mAP@0.5)] per size band [lo, hi)."""
    rows = []
    for lo, hi in zip(bands[:-1], bands[1:]):
        banded, count = [], 0
        for boxes, labels, difficult in truths:
            boxes = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
            side = np.sqrt(np.clip(boxes[:, 2] - boxes[:, 0], 0, None) * np.clip(boxes[:, 3] - boxes[:, 1], 0, None))
            ignored = np.asarray(difficult, bool) | (side < lo) | (side >= hi)
            banded.append((boxes, labels, ignored))
            count += int((~ignored).sum())
        rows.append((lo, hi, count, evaluate(detections, banded, num_classes=num_classes)["mAP"]))
    return rows


def breakdown(detections, truths, num_classes: int) -> dict:
    """{"mAP", "by_size" (map_by_size's rows), "class_agnostic_AP", "covered",
    "class_right_when_covered"}: the figures of the module docstring."""
    out = {"mAP": evaluate(detections, truths, num_classes=num_classes)["mAP"],
           "by_size": map_by_size(detections, truths, num_classes)}
    agnostic_d = [(b, s, np.zeros_like(lab)) for b, s, lab in detections]
    agnostic_t = [(b, np.zeros_like(lab), d) for b, lab, d in truths]
    out["class_agnostic_AP"] = evaluate(agnostic_d, agnostic_t, num_classes=1)["mAP"]
    covered = right = total = 0
    for (tb, tl, _), (db, ds, dl) in zip(truths, detections):
        keep = ds > COVER_SCORE
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


def describe_breakdown(r: dict, split: str) -> str:
    """`breakdown`'s figures as the lines benchmarks/map_breakdown.py prints."""
    lines = [f"{split} mAP@0.5: {r['mAP']:.3f}"]
    lines += [f"  objects of size [{lo:.2f}, {hi:.2f}) of the image side: {count:4d}, mAP@0.5 {m:.3f}"
              for lo, hi, count, m in r["by_size"]]
    lines.append(f"class-agnostic AP@0.5: {r['class_agnostic_AP']:.3f}")
    lines.append(f"objects covered at IoU >= 0.5 by a detection scoring > {COVER_SCORE}: {r['covered']:.2f}; "
                 f"its class right: {r['class_right_when_covered']:.2f}")
    return "\n".join(lines)
