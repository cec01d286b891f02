"""Running a trained model: detections for a batch of images, and mAP over a dataset."""
from __future__ import annotations

import numpy as np

from .backend import resolve_device, to_device
from .boxes import decode
from .data import BatchLoader, open_dataset
from .errors import MinidetError
from .eval import evaluate
from .models import load_checkpoint
from .validate import require_evaluable

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


def evaluate_checkpoint(weights, data, split: str = "test", batch_size: int = 32, device: str = "auto",
                        use_07_metric: bool = False):
    """mAP@0.5 of checkpoint `weights` (any detector family) on split `split` of dataset root
    `data` (VOC, COCO or YOLO layout), whose classes must be those it was trained on.

    Returns (result, detections, ground_truths, dataset) as `evaluate_loader`, and the dataset.
    """
    model, meta = load_checkpoint(weights)
    classes = meta.get("classes")
    dataset = open_dataset(data, split, cache_images=False)
    require_evaluable(dataset)
    if classes is not None and list(dataset.classes) != list(classes):
        raise MinidetError(f"{data}: its classes ({', '.join(dataset.classes[:4])}, ...) are not the "
                           f"classes {weights} was trained on ({', '.join(classes[:4])}, ...)")
    device = resolve_device(device)
    model.to(device)
    with BatchLoader(dataset, batch_size, model.input_size) as loader:
        result, detections, truths = evaluate_loader(model, loader, device, use_07_metric=use_07_metric)
    return result, detections, truths, dataset
