"""SSD detections: decode the offsets, softmax the scores, per-class NMS, keep the top k."""
from __future__ import annotations

import numpy as np

from ..backend import to_numpy
from ..boxes import centers_to_corners, nms
from .match import VARIANCES, decode_offsets

NMS_IOU_THRESHOLD = 0.45     # the paper's
CANDIDATES_PER_CLASS = 200   # the best boxes of a class that enter NMS
MAX_DETECTIONS = 200         # per image, after NMS (the paper's top-k)


def softmax(conf):
    """Class probabilities over the last axis of conf (..., C + 1) (NumPy)."""
    e = np.exp(conf - conf.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


def detect(loc, conf, priors, score_threshold: float = 0.01, iou_threshold: float = NMS_IOU_THRESHOLD,
           max_detections: int = MAX_DETECTIONS, variances=VARIANCES):
    """Detections of an SSD output, one `(boxes (K, 4), scores (K,), labels (K,) int64)` per image.

    loc (N, A, 4) offsets and conf (N, A, C + 1) raw scores (class 0 background), NumPy or
    CuPy; priors (A, 4) centre boxes. Boxes are decoded, turned to corners and clipped to
    [0, 1]; the score of class c is softmax(conf)[c + 1]. Per class, the scores greater than
    `score_threshold` (at most the best CANDIDATES_PER_CLASS) go through NMS at
    `iou_threshold`; the best `max_detections` of the image are kept. NumPy out, boxes as
    normalized corners, by descending score; labels are object classes in [0, C).
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
        kept_idx, kept_lab = [], []
        for c in range(probs.shape[2]):
            scores = probs[img, :, c]
            cand = np.nonzero(scores > score_threshold)[0]
            if cand.size == 0:
                continue
            cand = cand[np.argsort(-scores[cand], kind="stable")[:CANDIDATES_PER_CLASS]]
            keep = nms(boxes[img, cand], scores[cand], iou_threshold)
            kept_idx.append(cand[keep])
            kept_lab.append(np.full(len(keep), c, dtype=np.int64))
        idx = np.concatenate(kept_idx) if kept_idx else np.zeros(0, np.int64)
        lab = np.concatenate(kept_lab) if kept_lab else np.zeros(0, np.int64)
        sc = probs[img, idx, lab]
        order = np.argsort(-sc, kind="stable")[:max_detections]
        results.append((boxes[img, idx[order]].astype(dtype), sc[order].astype(dtype), lab[order]))
    return results
