"""What a dataset holds, before training on it: `minidet data stats` and `minidet data show`.

`dataset_stats(dataset, S=7)` counts images, objects per class, object sizes, objects per
image, and how many objects share a YOLO v1 grid cell with another: `encode_targets`
keeps one object per cell (the larger), so with S = 7 the others are never trained on —
the limit of v1 that crowded datasets hit first.
"""
from __future__ import annotations

import os
import tempfile
from pathlib import Path

import numpy as np


def dataset_stats(dataset, S: int = 7) -> dict:
    """Counts of one split (any reader with `annotations` and `classes`).

    Returns {"images", "objects", "difficult", "per_class": {name: count}, "empty_images",
    "objects_per_image": (mean, max), "size_quantiles": {q: relative side}, "shared_cells",
    "hidden_objects"}: object size is sqrt(w·h) of the normalized box (1 = the whole image);
    shared_cells counts cells holding the centres of two or more non-difficult objects,
    hidden_objects the objects those cells lose (all but one each).
    """
    counts = np.zeros(len(dataset.classes), dtype=np.int64)
    sides, per_image, shared, hidden, difficult = [], [], 0, 0, 0
    for a in dataset.annotations:
        keep = ~a.difficult
        difficult += int(a.difficult.sum())
        np.add.at(counts, a.labels[keep], 1)
        boxes = a.boxes[keep].astype(np.float64)
        per_image.append(len(boxes))
        sides += np.sqrt((boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])).tolist()
        cx = np.minimum(((boxes[:, 0] + boxes[:, 2]) / 2 * S).astype(int), S - 1)
        cy = np.minimum(((boxes[:, 1] + boxes[:, 3]) / 2 * S).astype(int), S - 1)
        _, occupancy = np.unique(cy * S + cx, return_counts=True)
        shared += int((occupancy > 1).sum())
        hidden += int((occupancy - 1).sum())
    per_image = np.array(per_image, dtype=np.int64)
    sides = np.array(sides)
    quantiles = {q: float(np.quantile(sides, q)) for q in (0.0, 0.25, 0.5, 0.75, 1.0)} if sides.size else {}
    return {"images": len(dataset), "objects": int(counts.sum()), "difficult": difficult,
            "per_class": {c: int(n) for c, n in zip(dataset.classes, counts)},
            "empty_images": int((per_image == 0).sum()),
            "objects_per_image": (float(per_image.mean()) if per_image.size else 0.0,
                                  int(per_image.max()) if per_image.size else 0),
            "size_quantiles": quantiles, "shared_cells": shared, "hidden_objects": hidden, "S": S}


def describe_stats(stats: dict, title: str) -> str:
    """The stats as the lines `minidet data stats` prints."""
    lines = [f"{title}: {stats['images']} images, {stats['objects']} objects"
             + (f" (+ {stats['difficult']} difficult, not counted below)" if stats["difficult"] else "")]
    mean, most = stats["objects_per_image"]
    lines.append(f"  objects per image: mean {mean:.2f}, max {most}; {stats['empty_images']} images without objects")
    if stats["size_quantiles"]:
        q = stats["size_quantiles"]
        lines.append("  object size sqrt(w*h) / image side: min {:.3f}, 25% {:.3f}, median {:.3f}, 75% {:.3f}, "
                     "max {:.3f}".format(*(q[k] for k in (0.0, 0.25, 0.5, 0.75, 1.0))))
    share = stats["hidden_objects"] / stats["objects"] if stats["objects"] else 0.0
    lines.append(f"  YOLO grid S = {stats['S']}: {stats['shared_cells']} cells hold two or more object centres; "
                 f"{stats['hidden_objects']} objects ({100 * share:.1f} %) lose their cell to a larger one and are "
                 f"never trained on")
    width = max((len(c) for c in stats["per_class"]), default=5)
    lines.append("  objects per class:")
    lines += [f"    {c:<{width}} {n}" for c, n in stats["per_class"].items()]
    return "\n".join(lines)


def sample_sheet(dataset, out, count: int = 16, augment: bool = False, input_size: int = 224, seed: int = 0):
    """A PNG sheet of `count` samples of `dataset` with their boxes and class names, made by
    the training loader (so `augment=True` shows exactly what training sees); written
    atomically to `out`. Returns the path."""
    from ..visualize import detection_sheet
    from .loader import BatchLoader

    count = min(count, len(dataset))
    with BatchLoader(dataset, count, input_size, augment=augment, shuffle=True, seed=seed, workers=1) as loader:
        batch = next(iter(loader))
    sheet = detection_sheet(batch.images, [(b, None, lab) for b, lab in zip(batch.boxes, batch.labels)],
                            dataset.classes, scale=1)
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{out.name}.", suffix=".tmp", dir=out.parent)
    os.close(fd)
    try:
        sheet.save(tmp, format="PNG")
        os.replace(tmp, out)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return out


__all__ = ["dataset_stats", "describe_stats", "sample_sheet"]
