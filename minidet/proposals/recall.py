"""Proposal recall: the fraction of ground-truth boxes that some proposal among an image's
first n covers with IoU ≥ t (Hosang et al., "What makes for effective detection proposals?").
The curve of recall against n, at t = 0.5 and 0.7, is the standard measure of proposal quality.
"""
from __future__ import annotations

import numpy as np

from ..boxes import box_iou, to_pixels


def best_iou_at(proposals, gt, counts):
    """For each ground-truth box, the best IoU among the first n proposals, for each n in counts.

    proposals (P, 4) and gt (G, 4): corners in one frame (pixels, say). Returns (G, len(counts))
    float64; n beyond P counts all P; with no proposals the best IoU is 0.
    """
    gt = np.asarray(gt, dtype=np.float64).reshape(-1, 4)
    proposals = np.asarray(proposals, dtype=np.float64).reshape(-1, 4)
    counts = np.asarray(counts, dtype=np.int64)
    if len(proposals) == 0 or len(gt) == 0:
        return np.zeros((len(gt), len(counts)))
    running = np.maximum.accumulate(np.asarray(box_iou(gt, proposals)), axis=1)
    out = np.zeros((len(gt), len(counts)))
    have = counts > 0
    out[:, have] = running[:, np.minimum(counts[have], len(proposals)) - 1]
    return out


def proposal_recall(proposals_per_image, gt_per_image, counts, thresholds=(0.5, 0.7)):
    """Recall over a set of images: {t: (len(counts),) float64 recall at each n}.

    proposals_per_image: a list of (P_i, 4) ranked proposals; gt_per_image: a list of (G_i, 4)
    ground-truth boxes in the same frame. An image without objects adds nothing.
    """
    if len(proposals_per_image) != len(gt_per_image):
        raise ValueError(f"proposal_recall: {len(proposals_per_image)} proposal lists for {len(gt_per_image)} images")
    best = [best_iou_at(p, g, counts) for p, g in zip(proposals_per_image, gt_per_image)]
    best = np.concatenate(best) if best else np.zeros((0, len(counts)))
    if len(best) == 0:
        raise ValueError("proposal_recall: no ground-truth boxes")
    return {t: (best >= t).mean(axis=0) for t in thresholds}


def recall_study(propose, samples, counts, thresholds=(0.5, 0.7), clock=None):
    """Run `propose` on every sample and measure it: the figures of benchmarks/proposal_recall.py.

    propose: image (H, W, 3) uint8 -> (P, 4) ranked pixel-corner proposals. samples: an
    iterable of objects with `.image` (H, W, 3) and `.boxes` (K, 4) normalized corners (the
    dataset's `Sample`). clock: a zero-argument seconds counter (time.perf_counter by default).
    Returns {"recall": {t: (len(counts),) array}, "images": n, "objects": total boxes,
    "mean_proposals": the mean P, "seconds_per_image": the mean time of `propose`}.
    """
    import time

    clock = clock or time.perf_counter
    proposals, truths, seconds = [], [], 0.0
    for sample in samples:
        H, W = sample.image.shape[:2]
        start = clock()
        proposals.append(np.asarray(propose(sample.image), dtype=np.float64).reshape(-1, 4))
        seconds += clock() - start
        truths.append(to_pixels(np.asarray(sample.boxes, dtype=np.float64).reshape(-1, 4), W, H))
    n = len(proposals)
    if n == 0:
        raise ValueError("recall_study: no images")
    return {"recall": proposal_recall(proposals, truths, counts, thresholds), "images": n,
            "objects": int(sum(len(t) for t in truths)), "mean_proposals": float(np.mean([len(p) for p in proposals])),
            "seconds_per_image": seconds / n}
