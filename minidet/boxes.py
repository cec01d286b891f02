"""Boxes: IoU, non-maximum suppression, YOLO target encoding and output decoding.

Frames. A box is `[x1, y1, x2, y2]` in continuous coordinates (no +1 on widths: a box from
0 to 1 has width 1), normalized to [0, 1] by the image width (x) and height (y) unless a
function says pixels. `[cx, cy, w, h]` is the same box by centre and size.

The YOLO grid. The image is cut into S × S cells; row i of the grid is y, column j is x.
A target or prediction stores x, y relative to its cell (centre = ((j + x) / S, (i + y) / S))
and w, h relative to the image. The network predicts sqrt(w) and sqrt(h) (see
`minidet.loss`); `decode` squares them.

`box_iou`, `elementwise_iou` and the conversions run on NumPy or CuPy arrays alike; `nms`,
`encode_targets`, `decode` and `greedy_merge` are host-side bookkeeping and return NumPy.
"""
from __future__ import annotations

import numpy as np

from .backend import get_array_module, to_numpy


def _check_boxes(boxes, func: str, arg: str):
    if boxes.ndim != 2 or boxes.shape[1] != 4:
        raise ValueError(f"{func}: {arg} must have shape (K, 4), got {tuple(boxes.shape)}")


def _float(a):
    """`a` as a floating array of its own precision (integers become float64)."""
    xp = get_array_module(a)
    a = xp.asarray(a)
    return a if a.dtype.kind == "f" else a.astype(xp.float64)


# -- conversions --------------------------------------------------------------------

def corners_to_centers(boxes):
    """(..., 4) `[x1, y1, x2, y2]` -> (..., 4) `[cx, cy, w, h]`, same frame."""
    xp = get_array_module(boxes)
    b = _float(boxes)
    return xp.stack([(b[..., 0] + b[..., 2]) / 2, (b[..., 1] + b[..., 3]) / 2,
                     b[..., 2] - b[..., 0], b[..., 3] - b[..., 1]], axis=-1)


def centers_to_corners(boxes):
    """(..., 4) `[cx, cy, w, h]` -> (..., 4) `[x1, y1, x2, y2]`, same frame."""
    xp = get_array_module(boxes)
    b = _float(boxes)
    return xp.stack([b[..., 0] - b[..., 2] / 2, b[..., 1] - b[..., 3] / 2,
                     b[..., 0] + b[..., 2] / 2, b[..., 1] + b[..., 3] / 2], axis=-1)


def grid_boxes(box, S):
    """The boxes YOLO predictors decode to: box (N, S, S, B, ≥ 4) holding cell-relative
    `[x, y, sqrt_w, sqrt_h, ...]` → corners (N, S, S, B, 4), image-relative: centre
    ((j + x) / S, (i + y) / S), size (sqrt_w², sqrt_h²); row i is y, column j is x."""
    xp = get_array_module(box)
    col = xp.arange(S, dtype=box.dtype).reshape(1, 1, S, 1)
    row = xp.arange(S, dtype=box.dtype).reshape(1, S, 1, 1)
    return centers_to_corners(xp.stack([(col + box[..., 0]) / S, (row + box[..., 1]) / S,
                                        box[..., 2] ** 2, box[..., 3] ** 2], axis=-1))


def to_pixels(boxes, width, height):
    """(..., 4) normalized corners -> pixel corners of an image `width` × `height` pixels."""
    xp = get_array_module(boxes)
    scale = xp.asarray([width, height, width, height], dtype=_float(boxes).dtype)
    return _float(boxes) * scale


def to_normalized(boxes, width, height):
    """(..., 4) pixel corners -> corners normalized by `width` (x) and `height` (y)."""
    if width <= 0 or height <= 0:
        raise ValueError(f"to_normalized: width and height must be positive, got {width} x {height}")
    xp = get_array_module(boxes)
    scale = xp.asarray([width, height, width, height], dtype=_float(boxes).dtype)
    return _float(boxes) / scale


# -- overlap --------------------------------------------------------------------------

def elementwise_iou(a, b):
    """IoU of corner boxes `a` (..., 4) and `b` (..., 4), broadcast against each other.

    Boxes of zero (or, after a bad prediction, negative) extent have zero area; a pair whose
    union is empty has IoU 0, never NaN. Touching edges give intersection 0.
    """
    xp = get_array_module(a, b)
    iw = xp.maximum(xp.minimum(a[..., 2], b[..., 2]) - xp.maximum(a[..., 0], b[..., 0]), 0)
    ih = xp.maximum(xp.minimum(a[..., 3], b[..., 3]) - xp.maximum(a[..., 1], b[..., 1]), 0)
    inter = iw * ih
    area_a = xp.maximum(a[..., 2] - a[..., 0], 0) * xp.maximum(a[..., 3] - a[..., 1], 0)
    area_b = xp.maximum(b[..., 2] - b[..., 0], 0) * xp.maximum(b[..., 3] - b[..., 1], 0)
    union = area_a + area_b - inter
    positive = union > 0
    return xp.where(positive, inter / xp.where(positive, union, 1), 0)


def box_iou(a, b):
    """Pairwise IoU: a (N, 4), b (M, 4) corner boxes -> (N, M); NumPy or CuPy."""
    a, b = _float(a), _float(b)
    _check_boxes(a, "box_iou", "a")
    _check_boxes(b, "box_iou", "b")
    return elementwise_iou(a[:, None, :], b[None, :, :])


# -- suppression and merging ------------------------------------------------------------

def nms(boxes, scores, iou_threshold):
    """Greedy non-maximum suppression.

    boxes: (K, 4) corners; scores: (K,). Boxes are visited by descending score (ties keep
    their input order: a stable sort); each is kept unless its IoU with an already kept box
    is greater than `iou_threshold`. Returns the kept indices (int64, NumPy), by descending
    score; an empty input gives an empty array.
    """
    boxes, scores = to_numpy(boxes), to_numpy(scores)
    _check_boxes(boxes, "nms", "boxes")
    if scores.shape != (boxes.shape[0],):
        raise ValueError(f"nms: scores must have shape ({boxes.shape[0]},), got {scores.shape}")
    order = np.argsort(-scores, kind="stable")
    iou = box_iou(boxes, boxes)
    suppressed = np.zeros(len(order), dtype=bool)
    keep = []
    for idx in order:
        if suppressed[idx]:
            continue
        keep.append(idx)
        suppressed |= iou[idx] > iou_threshold
    return np.asarray(keep, dtype=np.int64)


def greedy_merge(boxes, scores, iou_threshold):
    """Overfeat's greedy merging (Sermanet et al. 2014, section 4.3), with IoU as the match.

    Repeatedly take the two boxes with the highest IoU; while it is greater than
    `iou_threshold`, replace them by one box: their score-weighted average (the plain
    average when both scores are 0), whose score is the SUM of theirs, as Overfeat
    accumulates the class outputs of the windows it merges. Because the weight of a merged
    box is its total score, a box built from many merges is the score-weighted mean of all
    the boxes it absorbed, whatever the order of merging.

    boxes: (K, 4) corners; scores: (K,), non-negative. Returns (boxes (K', 4), scores (K',))
    as NumPy, by descending score.
    """
    boxes = np.array(to_numpy(boxes), dtype=np.float64)  # a copy: merged in place below
    scores = np.array(to_numpy(scores), dtype=np.float64)
    _check_boxes(boxes, "greedy_merge", "boxes")
    if scores.shape != (boxes.shape[0],):
        raise ValueError(f"greedy_merge: scores must have shape ({boxes.shape[0]},), got {scores.shape}")
    if (scores < 0).any():
        raise ValueError("greedy_merge: scores must be non-negative (they weight an average)")
    boxes, scores = list(boxes), list(scores)
    while len(boxes) > 1:
        iou = box_iou(np.asarray(boxes), np.asarray(boxes))
        np.fill_diagonal(iou, -1.0)
        i, j = np.unravel_index(int(np.argmax(iou)), iou.shape)  # first pair on ties
        if iou[i, j] <= iou_threshold:
            break
        i, j = min(i, j), max(i, j)
        total = scores[i] + scores[j]
        wi, wj = (scores[i] / total, scores[j] / total) if total > 0 else (0.5, 0.5)
        boxes[i] = wi * boxes[i] + wj * boxes[j]
        scores[i] = total
        del boxes[j], scores[j]
    boxes, scores = np.asarray(boxes).reshape(-1, 4), np.asarray(scores)
    order = np.argsort(-scores, kind="stable")
    return boxes[order], scores[order]


# -- the YOLO grid ------------------------------------------------------------------------

def encode_targets(boxes, labels, S, C, dtype=np.float32):
    """The YOLO target of one image: (S, S, 5 + C) of `[x, y, w, h, obj]` + one-hot class.

    boxes: (K, 4) normalized corners; labels: (K,) ints in [0, C).
    The object goes to the cell holding its centre: column j = min(int(cx · S), S − 1),
    row i likewise from cy, so a centre on the right or bottom edge (1.0) lands in cell S − 1
    (and then has x or y = 1.0). x, y are cell-relative, w, h image-relative. A cell holds one
    object: when several centres fall in one cell the one of larger area is kept (the first
    listed on a tie). Empty cells are all zeros.
    """
    boxes, labels = np.asarray(to_numpy(boxes), dtype=np.float64), np.asarray(to_numpy(labels))
    if boxes.size == 0:
        boxes = boxes.reshape(0, 4)
    _check_boxes(boxes, "encode_targets", "boxes")
    if labels.shape != (boxes.shape[0],):
        raise ValueError(f"encode_targets: labels must have shape ({boxes.shape[0]},), got {labels.shape}")
    if labels.size and (labels.min() < 0 or labels.max() >= C):
        raise ValueError(f"encode_targets: labels must lie in [0, {C}), got {labels.tolist()}")
    centers = corners_to_centers(boxes)
    if ((centers[:, :2] < 0) | (centers[:, :2] > 1)).any() or (centers[:, 2:] < 0).any():
        raise ValueError("encode_targets: boxes must be normalized corners with x1 <= x2, y1 <= y2 "
                         "and centres in [0, 1]")
    target = np.zeros((S, S, 5 + C), dtype=dtype)
    area = centers[:, 2] * centers[:, 3]
    for k in np.argsort(-area, kind="stable"):  # larger first; an occupied cell is not overwritten
        cx, cy, w, h = centers[k]
        j, i = min(int(cx * S), S - 1), min(int(cy * S), S - 1)
        if target[i, j, 4] != 0:
            continue
        target[i, j, :5] = (cx * S - j, cy * S - i, w, h, 1.0)
        target[i, j, 5 + int(labels[k])] = 1.0
    return target


def decode(pred, S=7, B=2, C=20, score_threshold=0.2, iou_threshold=0.4, max_detections=100):
    """Detections from a YOLO output (N, S, S, 5B + C), NumPy or CuPy.

    Every predictor b of every cell gives a box: centre ((j + x) / S, (i + y) / S), size
    (sqrt_w², sqrt_h²), clipped to [0, 1]; and C class-specific scores
    Pr(class | object) · conf (the paper's equation 1). Negative outputs of the regression
    head are read as probability 0, so two negatives never multiply into a positive score.
    Scores greater than `score_threshold` survive, then NMS runs per class at
    `iou_threshold`, and the best `max_detections` are kept.

    Returns a list with one `(boxes (K, 4), scores (K,), labels (K,) int64)` per image,
    NumPy, boxes as normalized corners, sorted by descending score.
    """
    pred = to_numpy(pred)
    if pred.ndim != 4 or pred.shape[1:] != (S, S, 5 * B + C):
        raise ValueError(f"decode: pred must have shape (N, {S}, {S}, {5 * B + C}), got {pred.shape}")
    dtype = pred.dtype if pred.dtype.kind == "f" else np.float64
    n = pred.shape[0]
    box = pred[..., :5 * B].reshape(n, S, S, B, 5).astype(np.float64)
    cls = np.clip(pred[..., 5 * B:].astype(np.float64), 0, None)        # (N, S, S, C)
    conf = np.clip(box[..., 4], 0, None)                                 # (N, S, S, B)
    corners = np.clip(grid_boxes(box, S), 0.0, 1.0).reshape(n, S * S * B, 4)
    scores = (conf[..., None] * cls[..., None, :]).reshape(n, S * S * B, C)
    results = []
    for img in range(n):
        cand, label = np.nonzero(scores[img] > score_threshold)
        kept = []
        for c in np.unique(label):
            idx = cand[label == c]
            keep = nms(corners[img, idx], scores[img, idx, c], iou_threshold)
            kept.append((idx[keep], np.full(len(keep), c)))
        idx = np.concatenate([k[0] for k in kept]) if kept else np.zeros(0, np.int64)
        lab = np.concatenate([k[1] for k in kept]).astype(np.int64) if kept else np.zeros(0, np.int64)
        sc = scores[img, idx, lab]
        order = np.argsort(-sc, kind="stable")[:max_detections]
        results.append((corners[img, idx[order]].astype(dtype), sc[order].astype(dtype), lab[order]))
    return results
