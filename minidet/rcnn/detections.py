"""The second stage's output and the detections made from it (R-CNN, Fast and Faster R-CNN).

Layout of a second-stage output (R, (C + 1) + 4·(C + 1)), one row per RoI: the C + 1 class
logits (0 = background, c + 1 = class c), then the four deltas of each class in columns
4u … 4u + 3 of the box block (`deltas.py`'s encoding, `STDS`). `split_outputs` cuts it into
the two arrays `MultiTaskLoss` takes; `class_detections` turns one image's rows into boxes.
"""
from __future__ import annotations

from typing import NamedTuple

import numpy as np

from ..boxes import nms
from ..cross_entropy import softmax
from .deltas import decode_deltas


def split_outputs(out, num_classes: int):
    """(R, 5·(C + 1)) -> (logits (R, C + 1), deltas (R, 4·(C + 1))), views of `out`."""
    K = num_classes + 1
    if out.ndim != 2 or out.shape[1] != 5 * K:
        raise ValueError(f"split_outputs: expected output (N, {5 * K}) for {num_classes} classes, got {out.shape}")
    return out[:, :K], out[:, K:]


class Detections(NamedTuple):
    """boxes (K, 4) pixel corners, scores (K,), labels (K,) int64 class indices 0 … C − 1."""

    boxes: np.ndarray
    scores: np.ndarray
    labels: np.ndarray


def no_detections() -> Detections:
    return Detections(np.zeros((0, 4)), np.zeros(0), np.zeros(0, np.int64))


def class_detections(proposals, out, num_classes: int, width: float, height: float,
                     score_threshold: float = 0.05, iou_threshold: float = 0.3) -> Detections:
    """One image's detections from its P proposals (P, 4) pixel corners and their second-stage
    output (P, 5·(C + 1)): each class's score is its softmax probability, its box the proposal
    moved by that class's deltas and clipped to the width × height image; per class, the boxes
    scoring above `score_threshold` go through NMS at `iou_threshold`."""
    proposals = np.asarray(proposals, dtype=np.float64).reshape(-1, 4)
    if not len(proposals):
        return no_detections()
    logits, deltas = split_outputs(np.asarray(out, dtype=np.float64), num_classes)
    p = softmax(logits)
    boxes, scores, labels = [], [], []
    for c in range(num_classes):
        keep = np.flatnonzero(p[:, c + 1] > score_threshold)
        if not len(keep):
            continue
        b = decode_deltas(proposals[keep], deltas[keep, 4 * (c + 1):4 * (c + 2)])
        b = np.clip(b, 0, [width, height, width, height])
        kept = nms(b, p[keep, c + 1], iou_threshold)
        boxes.append(b[kept])
        scores.append(p[keep[kept], c + 1])
        labels.append(np.full(len(kept), c, dtype=np.int64))
    if not boxes:
        return no_detections()
    return Detections(np.concatenate(boxes), np.concatenate(scores), np.concatenate(labels))
