"""Running a trained model: detections for a batch of images, and mAP over a dataset."""
from __future__ import annotations

import numpy as np

from .backend import to_device
from .boxes import decode
from .eval import evaluate

# Scores kept for mAP: low, as VOC evaluation ranks every detection (a higher threshold
# only cuts the precision–recall curve short). Drawing uses a higher one.
EVAL_SCORE_THRESHOLD = 0.005
DRAW_SCORE_THRESHOLD = 0.2
NMS_IOU_THRESHOLD = 0.4


def predict(model, images, device: str = "cpu", score_threshold: float = DRAW_SCORE_THRESHOLD,
            iou_threshold: float | None = None):
    """Detections for images (N, 3, H, W) float32 in [0, 1]: a list of (boxes, scores, labels).

    Runs the model in eval mode (no dropout) and restores its previous mode. A model with
    its own `decode` (SSD) decodes its output; NMS at `iou_threshold`, by default the
    model's (YOLO: NMS_IOU_THRESHOLD).
    """
    was_training = model.training
    model.eval()
    try:
        pred = model.forward(to_device(np.ascontiguousarray(images, dtype=np.float32), device))
    finally:
        if was_training:
            model.train()
    if hasattr(model, "decode"):
        return model.decode(pred, score_threshold=score_threshold, iou_threshold=iou_threshold)
    iou_threshold = NMS_IOU_THRESHOLD if iou_threshold is None else iou_threshold
    return decode(pred, S=model.S, B=model.B, C=model.C, score_threshold=score_threshold,
                  iou_threshold=iou_threshold)


def evaluate_loader(model, loader, device: str = "cpu", use_07_metric: bool = False):
    """mAP@0.5 of `model` over every batch of `loader` (a BatchLoader without augmentation).

    Returns (result, detections, ground_truths): result = {"mAP": ..., "AP": {class: ...}}.
    """
    detections, truths = [], []
    for batch in loader:
        detections += predict(model, batch.images, device, score_threshold=EVAL_SCORE_THRESHOLD)
        truths += list(zip(batch.boxes, batch.labels, batch.difficult))
    return evaluate(detections, truths, use_07_metric=use_07_metric, num_classes=model.C), detections, truths
