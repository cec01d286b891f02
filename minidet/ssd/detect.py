"""SSD detections: decode the offsets, softmax the scores, per-class NMS, keep the top k."""
from __future__ import annotations

import numpy as np

from ..backend import to_numpy
from ..boxes import centers_to_corners, nms
from .match import VARIANCES, decode_offsets

NMS_IOU_THRESHOLD = 0.45     # the paper's
CANDIDATES = 200             # the best (prior, class) pairs of an image that enter NMS
MAX_DETECTIONS = 100         # per image, after NMS (as YOLO's decode)


def softmax(conf):
    """Class probabilities over the last axis of conf (..., C + 1) (NumPy)."""
    e = np.exp(conf - conf.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


def detect(loc, conf, priors, score_threshold: float = 0.01, iou_threshold: float = NMS_IOU_THRESHOLD,
           max_detections: int = MAX_DETECTIONS, variances=VARIANCES):
    """Detections of an SSD output, one `(boxes (K, 4), scores (K,), labels (K,) int64)` per image.

    loc (N, A, 4) offsets and conf (N, A, C + 1) raw scores (class 0 background), NumPy or
    CuPy; priors (A, 4) centre boxes. Boxes are decoded, turned to corners and clipped to
    [0, 1]; the score of class c for a prior is softmax(conf)[c + 1]. Of an image's (prior,
    class) pairs scoring more than `score_threshold`, the best CANDIDATES go through NMS at
    `iou_threshold`, per class; the best `max_detections` are kept. NumPy out, boxes as
    normalized corners, by descending score; labels are object classes in [0, C).

    Per-class NMS runs as one NMS over boxes shifted by 2·class along x and y: boxes of
    different classes then never overlap, so it keeps exactly what NMS class by class keeps.
    """
    loc, conf = to_numpy(loc), to_numpy(conf)
    if loc.ndim != 3 or loc.shape[2] != 4 or conf.ndim != 3 or conf.shape[:2] != loc.shape[:2]:
        raise ValueError(f"detect: loc must be (N, A, 4) and conf (N, A, C + 1) with the same N and A, "
                         f"got {loc.shape} and {conf.shape}")
    if np.shape(priors) != (loc.shape[1], 4):
        raise ValueError(f"detect: priors must have shape ({loc.shape[1]}, 4), got {np.shape(priors)}")
    dtype = conf.dtype if conf.dtype.kind == "f" else np.float64
    boxes = np.clip(centers_to_corners(decode_offsets(loc.astype(np.float64), priors, variances)), 0.0, 1.0)
    probs = softmax(conf.astype(np.float64))[..., 1:]                       # (N, A, C)
    results = []
    for img in range(loc.shape[0]):
        prior, label = np.nonzero(probs[img] > score_threshold)
        scores = probs[img, prior, label]
        best = np.argsort(-scores, kind="stable")[:CANDIDATES]
        prior, label, scores = prior[best], label[best], scores[best]
        shifted = boxes[img, prior] + 2.0 * label[:, None]
        keep = nms(shifted, scores, iou_threshold)[:max_detections]
        results.append((boxes[img, prior[keep]].astype(dtype), scores[keep].astype(dtype),
                        label[keep].astype(np.int64)))
    return results
