"""R-CNN's second half: a small CNN that classifies each warped proposal (C classes +
background) and regresses its box (class-specific deltas, see deltas.py).

The network's output (N, 5·(C + 1)) has the second stage's layout (`detections.py`:
C + 1 logits, then class-specific deltas). Crops are (N, 3, size, size) float32 in [0, 1]
(NCHW), as `warp_crops` makes them.

Training (`training_batch`, `train_step`): per image, `sample_rois` draws the RoIs from the
proposals and the ground truth, `warp_crops` cuts them, and one SGD step on the multi-task
loss follows. Detection (`detect_image`): every proposal is classified, then
`class_detections`.

This module is imported by its path (`minidet.rcnn.classifier`), not by the package: it
builds on `minidet.models`, which builds its two-stage detectors on this package.
"""
from __future__ import annotations

from typing import NamedTuple

import numpy as np

from ..boxes import to_pixels
from ..layers import Sequential
from ..models.crop_cnn import crop_cnn
from .crops import warp_crops
from .detections import Detections, class_detections, no_detections, split_outputs
from .sampling import sample_rois


def crop_classifier(num_classes: int, size: int = 32, width: int = 16, rng=None) -> Sequential:
    """Three (3×3 conv, leaky ReLU 0.1, 2×2 max-pool) blocks of width, 2·width, 4·width filters,
    then one Linear to (C + 1) logits and 4·(C + 1) deltas. Input (N, 3, size, size), size
    divisible by 8."""
    return crop_cnn(5 * (num_classes + 1), size, width, rng, where="crop_classifier")


class CropBatch(NamedTuple):
    """crops (n, 3, size, size) float32; labels (n,) int64 (0 = background); targets (n, 4)."""

    crops: np.ndarray
    labels: np.ndarray
    targets: np.ndarray


def training_batch(samples, proposals, rng, rois_per_image: int = 32, size: int = 32, context: int = 2,
                   fg_fraction: float = 0.25) -> CropBatch:
    """The crops of one step: `sample_rois` on each image, then `warp_crops`.

    samples: objects with `.image` (H, W, 3) uint8 and `.boxes` (K, 4) normalized, `.labels` (K,);
    proposals: one (P, 4) pixel-corner array per sample.
    """
    crops, labels, targets = [], [], []
    for sample, props in zip(samples, proposals):
        H, W = sample.image.shape[:2]
        gt = to_pixels(np.asarray(sample.boxes, dtype=np.float64).reshape(-1, 4), W, H)
        s = sample_rois(props, gt, sample.labels, rois_per_image, rng, fg_fraction=fg_fraction)
        if len(s.labels):
            crops.append(warp_crops(sample.image, s.boxes, size, context))
            labels.append(s.labels)
            targets.append(s.targets)
    if not crops:
        return CropBatch(np.zeros((0, 3, size, size), np.float32), np.zeros(0, np.int64), np.zeros((0, 4)))
    return CropBatch(np.concatenate(crops), np.concatenate(labels), np.concatenate(targets))


def train_step(model, loss, optimizer, batch: CropBatch, num_classes: int) -> float:
    """Forward, multi-task loss, backward and one optimizer step on a CropBatch; the loss value."""
    model.train()
    out = model.forward(batch.crops)
    logits, deltas = split_outputs(out, num_classes)
    value = loss.forward(logits.astype(np.float64), deltas.astype(np.float64), batch.labels, batch.targets)
    dlogits, ddeltas = loss.backward()
    model.backward(np.concatenate([dlogits, ddeltas], axis=1).astype(out.dtype))
    optimizer.step()
    return value


def detect_image(model, image, proposals, num_classes: int, size: int = 32, context: int = 2,
                 score_threshold: float = 0.05, iou_threshold: float = 0.3, batch_size: int = 256) -> Detections:
    """Classify every proposal (P, 4) pixel corners of one (H, W, 3) uint8 image; per class,
    the boxes scoring above `score_threshold`, moved by that class's deltas and clipped to the
    image, then NMS at `iou_threshold`."""
    model.eval()
    H, W = image.shape[:2]
    proposals = np.asarray(proposals, dtype=np.float64).reshape(-1, 4)
    outs = [model.forward(warp_crops(image, proposals[i:i + batch_size], size, context))
            for i in range(0, len(proposals), batch_size)]
    if not outs:
        return no_detections()
    return class_detections(proposals, np.concatenate(outs), num_classes, W, H, score_threshold, iou_threshold)
