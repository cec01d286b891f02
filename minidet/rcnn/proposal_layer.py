"""Faster R-CNN's proposal layer: from the RPN's outputs on one image to its proposals
(Ren et al. 2015, 3.3).

In order: keep the `pre_nms_top_n` anchors of highest objectness; move each by its predicted
deltas (`decode_deltas`, unit stds); clip to the image; drop boxes narrower or shorter than
`min_size` pixels; NMS at `nms_iou` (0.7); keep the first `post_nms_top_n` by score.
The proposals are constants of a training step (approximate joint training): no gradient
flows back through this layer.
"""
from __future__ import annotations

from typing import NamedTuple

import numpy as np

from ..boxes import nms
from .deltas import decode_deltas


class Proposals(NamedTuple):
    """boxes (P, 4) pixel corners, scores (P,) objectness, best first."""

    boxes: np.ndarray
    scores: np.ndarray


def propose(anchors, objectness, deltas, width: int, height: int, pre_nms_top_n: int = 2000,
            post_nms_top_n: int = 300, nms_iou: float = 0.7, min_size: float = 1.0) -> Proposals:
    """anchors (K, 4) pixel corners, objectness (K,) scores (logits or probabilities: only the
    order matters), deltas (K, 4) -> Proposals of one width × height image."""
    anchors = np.asarray(anchors, dtype=np.float64).reshape(-1, 4)
    objectness = np.asarray(objectness, dtype=np.float64).reshape(-1)
    deltas = np.asarray(deltas, dtype=np.float64).reshape(-1, 4)
    if not len(anchors) == len(objectness) == len(deltas):
        raise ValueError(f"propose: {len(anchors)} anchors, {len(objectness)} scores and {len(deltas)} deltas "
                         f"must agree")
    order = np.argsort(-objectness, kind="stable")[:pre_nms_top_n]
    boxes = decode_deltas(anchors[order], deltas[order], stds=(1, 1, 1, 1))
    boxes = np.clip(boxes, 0, [width, height, width, height])
    scores = objectness[order]
    big = ((boxes[:, 2] - boxes[:, 0]) >= min_size) & ((boxes[:, 3] - boxes[:, 1]) >= min_size)
    boxes, scores = boxes[big], scores[big]
    keep = nms(boxes, scores, nms_iou)[:post_nms_top_n]
    return Proposals(boxes[keep], scores[keep])
