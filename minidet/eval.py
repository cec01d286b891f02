"""PASCAL VOC mean average precision, following the devkit's `VOCevaldet`.

Inputs, one entry per image (NumPy or CuPy arrays, never modified):
    detections[i]    = (boxes (K, 4), scores (K,), labels (K,) int)
    ground_truths[i] = (boxes (G, 4), labels (G,) int, difficult (G,) bool)
Boxes are corners `[x1, y1, x2, y2]` in any one frame shared by both (normalized or
pixels); IoU is continuous (no +1 on widths, unlike the devkit's pixel boxes).

Matching, per class: the detections of the class, over all images, are taken by descending
score (a stable sort: ties keep image order, then detection order). Each is compared with
the truth of its class in its image with which it has the highest IoU, claimed or not. If
that IoU is ≥ `iou_threshold`: a difficult truth makes the detection ignored (neither true
nor false positive), an unclaimed truth makes it a true positive and claims the truth, a
claimed one makes it a false positive (a duplicate). Otherwise it is a false positive.
Difficult truths do not count in the number of positives.

AP, per class with at least one non-difficult truth (classes with none are absent; a class
with truths and no detections has AP 0):
    use_07_metric=True : VOC2007's 11-point AP, the mean over t in ELEVEN_POINT_THRESHOLDS of
                         the highest precision at recall ≥ t (0 when recall never reaches t).
                         The thresholds are `numpy.arange(0.0, 1.1, 0.1)`, as the widely used
                         Python ports of the devkit compute them (0.30000000000000004, not
                         0.3): a recall of exactly 3/10, 6/10 or 7/10 does not reach its tenth
                         there, and minidet gives the same AP as those ports to the last bit;
    use_07_metric=False: VOC2010+, the area under the monotone precision envelope.
"mAP" is the mean of the APs, defined as 0.0 when no class has a non-difficult truth.
Ignored detections are left out of the precision/recall curve; the devkit keeps them as
rows where neither count moves, which repeats a point and changes neither AP.
"""
from __future__ import annotations

import numpy as np

from .backend import to_numpy
from .boxes import box_iou

# The recall thresholds of the VOC2007 11-point AP, computed as the Python ports of the
# devkit compute them (py-faster-rcnn's voc_eval and its descendants): tools people compare
# against report these, so exact tenths would differ from them on small classes.
ELEVEN_POINT_THRESHOLDS = np.arange(0.0, 1.1, 0.1)


def _as_arrays(detections, ground_truths, num_classes, func):
    """Host copies of the inputs with shapes checked: the caller's arrays are never touched."""
    if len(detections) != len(ground_truths):
        raise ValueError(f"{func}: detections and ground_truths must hold one entry per image; got "
                         f"{len(detections)} detection entries and {len(ground_truths)} ground-truth entries")
    dets, gts = [], []
    for i, (det, gt) in enumerate(zip(detections, ground_truths)):
        boxes, scores, labels = (np.array(to_numpy(a)) for a in det)
        boxes = boxes.reshape(-1, 4) if boxes.size == 0 else boxes
        k = boxes.shape[0]
        if boxes.ndim != 2 or boxes.shape[1] != 4 or scores.shape != (k,) or labels.shape != (k,):
            raise ValueError(f"{func}: detections[{i}] must be boxes (K, 4), scores (K,), labels (K,); "
                             f"got {boxes.shape}, {scores.shape}, {labels.shape}")
        gboxes, glabels, difficult = gt
        gboxes, glabels = np.array(to_numpy(gboxes)), np.array(to_numpy(glabels))
        gboxes = gboxes.reshape(-1, 4) if gboxes.size == 0 else gboxes
        g = gboxes.shape[0]
        difficult = np.zeros(g, bool) if difficult is None else np.array(to_numpy(difficult)).astype(bool)
        if gboxes.ndim != 2 or gboxes.shape[1] != 4 or glabels.shape != (g,) or difficult.shape != (g,):
            raise ValueError(f"{func}: ground_truths[{i}] must be boxes (G, 4), labels (G,), difficult (G,); "
                             f"got {gboxes.shape}, {glabels.shape}, {difficult.shape}")
        for name, lab in (("detections", labels), ("ground_truths", glabels)):
            if lab.size and (lab.min() < 0 or (num_classes is not None and lab.max() >= num_classes)):
                raise ValueError(f"{func}: {name}[{i}] has labels {sorted(set(lab.tolist()))} outside "
                                 f"[0, {num_classes if num_classes is not None else 'inf'})")
        dets.append((boxes, scores, labels.astype(np.int64)))
        gts.append((gboxes, glabels.astype(np.int64), difficult))
    return dets, gts


def match_class(dets, gts, cls, iou_threshold):
    """The VOC matching of one class (the one implementation `evaluate` and `pr_curves` share).

    dets, gts: checked host lists as built by `_as_arrays`. Returns (scores, tp, fp, npos):
    the class's detections' scores by descending score, boolean true/false-positive flags
    (both False for an ignored detection), and the number of non-difficult truths.
    """
    records, npos = [], 0
    best_truth, best_iou = [], []  # per image: for each detection of the class, its closest truth
    for img, ((boxes, scores, labels), (gboxes, glabels, difficult)) in enumerate(zip(dets, gts)):
        mine, theirs = np.nonzero(labels == cls)[0], np.nonzero(glabels == cls)[0]
        npos += int((~difficult[theirs]).sum())
        if theirs.size and mine.size:
            iou = box_iou(boxes[mine], gboxes[theirs])                  # (K_c, G_c)
            nearest = np.argmax(iou, axis=1)  # the first of equal IoUs, as the devkit's strict `ov > ovmax`
            best_truth.append(dict(zip(mine.tolist(), theirs[nearest].tolist())))
            best_iou.append(dict(zip(mine.tolist(), iou[np.arange(mine.size), nearest].tolist())))
        else:
            best_truth.append({})
            best_iou.append({})
        records.extend((float(scores[k]), img, k) for k in mine.tolist())
    order = sorted(range(len(records)), key=lambda r: -records[r][0])  # Python's sort is stable
    tp, fp = np.zeros(len(order), bool), np.zeros(len(order), bool)
    claimed = set()
    for row, r in enumerate(order):
        _, img, k = records[r]
        if k not in best_truth[img] or best_iou[img][k] < iou_threshold:
            fp[row] = True  # no truth of the class in the image, or too little overlap
            continue
        g = best_truth[img][k]
        if gts[img][2][g]:
            pass  # a difficult truth: the detection is ignored, neither true nor false positive
        elif (img, g) not in claimed:
            tp[row] = True
            claimed.add((img, g))
        else:
            fp[row] = True  # a duplicate of an already detected object
    scores = np.array([records[r][0] for r in order], dtype=np.float64)
    return scores, tp, fp, npos


def _curve(tp, fp, npos):
    """(recall, precision) over the counted detections (ignored ones dropped)."""
    counted = tp | fp
    tp, fp = np.cumsum(tp[counted]), np.cumsum(fp[counted])
    return tp / npos, tp / np.maximum(tp + fp, 1)


def average_precision(recall, precision, use_07_metric=False) -> float:
    """AP from a precision/recall curve (detections by descending score)."""
    recall, precision = np.asarray(recall, np.float64), np.asarray(precision, np.float64)
    if use_07_metric:
        ap = 0.0
        for t in ELEVEN_POINT_THRESHOLDS:  # summed in this order, p / 11 at a time, as the ports do
            reached = recall >= t
            ap += (precision[reached].max() if reached.any() else 0.0) / 11.0
        return float(ap)
    mrec = np.concatenate([[0.0], recall, [1.0]])
    mpre = np.concatenate([[0.0], precision, [0.0]])
    mpre = np.maximum.accumulate(mpre[::-1])[::-1]  # the monotone envelope, from the right
    steps = np.nonzero(mrec[1:] != mrec[:-1])[0]
    return float(np.sum((mrec[steps + 1] - mrec[steps]) * mpre[steps + 1]))


def _classes(gts, num_classes):
    """Classes with at least one non-difficult truth, ascending."""
    present = set()
    for _, labels, difficult in gts:
        present.update(labels[~difficult].tolist())
    return sorted(c for c in present if num_classes is None or c < num_classes)


def pr_curves(detections, ground_truths, iou_threshold=0.5, num_classes=None) -> dict:
    """Per class with a non-difficult truth: (recall (D,), precision (D,)) for plotting.

    D counts the class's true and false positives by descending score; a class with no
    detections gets two empty arrays. Same inputs and matching as `evaluate`.
    """
    dets, gts = _as_arrays(detections, ground_truths, num_classes, "pr_curves")
    return _pr_curves(dets, gts, iou_threshold, num_classes)


def _pr_curves(dets, gts, iou_threshold, num_classes):
    """{class: (recall, precision)} for every class with a non-difficult truth."""
    curves = {}
    for c in _classes(gts, num_classes):
        _, tp, fp, npos = match_class(dets, gts, c, iou_threshold)
        curves[int(c)] = _curve(tp, fp, npos)
    return curves


def evaluate(detections, ground_truths, iou_threshold=0.5, use_07_metric=False, num_classes=None) -> dict:
    """PASCAL VOC AP per class and their mean; see the module docstring for the rules.

    detections[i] = (boxes (K, 4), scores (K,), labels (K,)); ground_truths[i] =
    (boxes (G, 4), labels (G,), difficult (G,) or None), one pair per image, same box frame.
    num_classes: when given, labels must lie in [0, num_classes) (checked).
    Returns {"mAP": float, "AP": {class index: float}}.
    """
    dets, gts = _as_arrays(detections, ground_truths, num_classes, "evaluate")
    curves = _pr_curves(dets, gts, iou_threshold, num_classes)
    ap = {c: average_precision(rec, prec, use_07_metric) for c, (rec, prec) in curves.items()}
    return {"mAP": float(np.mean(list(ap.values()))) if ap else 0.0, "AP": ap}
