"""Which proposals a two-stage detector's second stage trains on, and their targets (R-CNN and
Fast R-CNN; Girshick 2015, section 2.3).

The ground-truth boxes join the proposals (so every object has at least one perfect
positive). Each candidate takes the ground truth it overlaps most:
- foreground: IoU ≥ `fg_iou` (0.5); label = the object's class + 1, regression target =
  `encode_deltas(candidate, object)`;
- background: `bg_iou[0]` ≤ IoU < `bg_iou[1]` ([0.1, 0.5)): label 0, no regression target;
  candidates overlapping nothing (IoU < 0.1) are left out, as in Fast R-CNN, since the
  hard negatives are the ones that touch an object;
- the rest are not used.
Up to `fg_fraction` of `num` are drawn from the foreground, the rest from the background,
each without replacement; when either runs short the sample is smaller (never duplicated).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..boxes import box_iou
from .deltas import STDS, encode_deltas


@dataclass
class RoiSample:
    """n sampled RoIs, foreground first: boxes (n, 4) pixel corners, labels (n,) int64 (0 =
    background, c + 1 = class c), targets (n, 4) deltas (zeros for background), gt_index (n,)
    int64 (the matched ground truth; −1 for background)."""

    boxes: np.ndarray
    labels: np.ndarray
    targets: np.ndarray
    gt_index: np.ndarray

    @property
    def num_foreground(self) -> int:
        return int((self.labels > 0).sum())


def sample_rois(proposals, gt_boxes, gt_labels, num: int, rng: np.random.Generator, fg_fraction: float = 0.25,
                fg_iou: float = 0.5, bg_iou=(0.1, 0.5), stds=STDS) -> RoiSample:
    """Draw the training RoIs of one image.

    proposals (P, 4), gt_boxes (G, 4): pixel corners; gt_labels (G,) class indices 0 … C − 1.
    Returns a RoiSample of at most `num` RoIs.
    """
    proposals = np.asarray(proposals, dtype=np.float64).reshape(-1, 4)
    gt_boxes = np.asarray(gt_boxes, dtype=np.float64).reshape(-1, 4)
    gt_labels = np.asarray(gt_labels, dtype=np.int64).reshape(-1)
    if len(gt_boxes) != len(gt_labels):
        raise ValueError(f"sample_rois: {len(gt_boxes)} ground-truth boxes for {len(gt_labels)} labels")
    if num < 1 or not 0 <= fg_fraction <= 1:
        raise ValueError(f"sample_rois: need num >= 1 and fg_fraction in [0, 1]; got {num}, {fg_fraction}")
    candidates = np.concatenate([gt_boxes, proposals])
    if len(gt_boxes):
        iou = np.asarray(box_iou(candidates, gt_boxes))
        best, match = iou.max(axis=1), iou.argmax(axis=1)
    else:
        best, match = np.zeros(len(candidates)), np.zeros(len(candidates), dtype=np.int64)
    fg = np.flatnonzero(best >= fg_iou)
    bg = np.flatnonzero((best >= bg_iou[0]) & (best < bg_iou[1]))
    fg = rng.permutation(fg)[:int(round(num * fg_fraction))]
    bg = rng.permutation(bg)[:num - len(fg)]
    keep = np.concatenate([fg, bg]).astype(np.int64)
    labels = np.zeros(len(keep), dtype=np.int64)
    labels[:len(fg)] = gt_labels[match[fg]] + 1
    targets = np.zeros((len(keep), 4))
    if len(fg):
        targets[:len(fg)] = encode_deltas(candidates[fg], gt_boxes[match[fg]], stds)
    gt_index = np.full(len(keep), -1, dtype=np.int64)
    gt_index[:len(fg)] = match[fg]
    return RoiSample(candidates[keep], labels, targets, gt_index)
